// Package sequencer is the PDS's firehose log: it gives every event of the
// PDS's accounts a global seq and keeps the encoded frames in one durable
// log, which the subscribeRepos stream replays from (Sequencer implements
// stream.Log) and publishes to live consumers.
//
// # Where events come from
//
// A repository write stores its commit and the commit's #commit event (an
// outbox row, encoded with seq 0) in the account's own database, in one
// transaction (see package actorstore). The writer then hands the row over
// with Submit and waits until it is durable in the log: the log's fsync is
// what makes the write durable. The sequencer sets the event's seq,
// encodes its frame once and appends it to the log; a row handed over out
// of order, or an account marked with Notify, is read back from the
// account's outbox above the account's cursor instead. Events not tied to
// a commit (#identity, #account and #sync) are given to Append, which
// returns once they are durable.
//
// SetDurableMark records up to which seq the account databases hold every
// commit durably (the PDS moves it after syncing them), so that after a
// power loss only the events above it need to be checked against, and
// replayed into, those databases.
//
// # Group commit
//
// One goroutine writes the log. It takes the accounts notified since its
// last batch (up to bounded numbers of accounts, events and bytes, and a
// bounded number of rows per account so that no account starves the
// others), reads their new rows, adds the pending Append events, and writes
// everything in one transaction: one fsync for many accounts' writes. While
// it writes, new notifications gather for the next batch, so batches grow
// with the load; when the last batch held more than one event, the loop
// also waits half a millisecond before the next, for more writers to join
// it. After the commit it calls Options.Publish for each event in seq
// order, then wakes the callers of Submit, Flush and Append.
//
// # Exactly once
//
// Each account's cursor, the highest outbox ID sequenced, is stored in the
// log database in the same transaction as the events it produced, so a
// crash either keeps both or neither: after a restart, Recover reads every
// account's outbox above its stored cursor and no row is sequenced twice or
// lost. Deleting sequenced rows from the outboxes (AckOutbox) is therefore
// only housekeeping; it runs in the background after each batch, one
// account at a time, so that it never adds an fsync to a write. (The PDS's
// account stores only note the acknowledgement: their next write deletes
// the rows, and does not write those of commits it has yet to store.) Seqs are handed out without gaps and only for
// events that are written: a failed transaction is redone from the stored
// state, and a transaction built on a stale state is refused. Only one
// Sequencer may write a log at a time.
//
// Per account, events keep the order of the account's outbox, and an Append
// comes after the outbox rows the account had when Append was called. An
// outbox row that does not decode as the subscribeRepos message of its kind
// for its account, or whose frame would be too large, is logged, counted in
// Stats.Skipped and passed over, so that it cannot block the account.
//
// # Retention
//
// Events older than Options.Retention are pruned in the background, oldest
// first and a bounded number per transaction. Event creation times never
// decrease along seq, so the retained events are always one run of seqs.
// The latest seq is stored apart from the events: LatestSeq stays right
// when the log is empty, and seqs continue after it.
//
// # Storage
//
// The log is an SQLite file by default (WAL, synchronous=FULL) and may be a
// PostgreSQL database; see Options.Path.
package sequencer
