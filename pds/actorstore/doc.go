// Package actorstore is the per-account storage of the PDS: one SQLite file
// per account holding the repository's blocks, an index of its records, the
// current commit (the repo root) and an outbox of events not yet sequenced.
//
// # One write, one transaction; durability through the firehose log
//
// ApplyCommit stores everything a commit produced in a single write
// transaction: its blocks, the record index changes, the new root and an
// outbox row carrying the commit's encoded event. A crash can therefore
// leave only outbox rows that the sequencer has not yet picked up, never a
// commit without its event or an event without its commit. The sequencer
// reads them with Outbox (or takes them straight from the writer) and
// acknowledges them with AckOutbox once they are in the firehose log; the
// store's next write transaction deletes them.
//
// The database runs in WAL mode with synchronous=NORMAL: a commit's
// transaction is not fsynced. The PDS acknowledges a write once its event
// is durable in the sequencer's log, whose one fsync covers the writes of
// many accounts, and after a power loss restores from the log any commit
// the account's database lost (ReplayCommit). Sync makes everything
// committed so far durable and checkpoints the WAL; the PDS calls it about
// every second for the accounts written since, and Close calls it. Writes
// that no event carries (blob metadata, ReplaceRepo) use durable
// transactions and are fsynced before they return.
//
// ApplyCommitLater queues the commit for a transaction run in the
// background, so that a writer can hand the event to the sequencer at once:
// the outbox row's ID is reserved up front. The queue is stored in batches,
// one transaction for the commits an account queued in up to 250 ms, or
// at once when Lock, Head, Sync, Close or WaitApplied wait for it. The
// account's next writer need not wait: it takes LockForCommit and builds
// on CommitHead, reading the queued commits' blocks from the queue (see
// later.go). A batch stores only the MST nodes its last commit's tree
// keeps (see replacedNodes), and no outbox row the sequencer has already
// acknowledged: that event is in the log, and the row would only be
// deleted.
//
// ApplyCommit checks that the stored root is the one the commit was built on
// (its rev equals CommitResult.Since); otherwise it returns an error matching
// ErrConcurrentWrite and writes nothing.
//
// # The record index beyond the MST
//
// Besides each record's CID, ApplyCommit keeps in the same transaction what
// the PDS needs to know about record contents without reading them: the
// blobs each record references (record_blobs) and the backlinks of follows,
// blocks, likes and reposts (the subject they point to, so that duplicates
// can be found with BacklinkConflicts). Record blocks are decoded only when
// they can hold either: a record whose bytes lack the DAG-CBOR key
// "mimeType", which every blob reference carries, and that is not of a
// backlink collection is not decoded at all.
//
// # Blobs
//
// Blob bytes live in the PDS's blob store; this store keeps their metadata
// (MIME type, size, and the blob store's temporary key while no record
// references them). PutTempBlob records an upload. When a commit stores a
// record referencing a blob, the blob is marked permanent in the same
// transaction; the caller has made its bytes permanent before. A blob whose
// last reference goes (record deleted or updated) is queued in the same
// transaction in a durable deletion queue, which BlobGarbage and
// DeleteBlobs drain under the account's write lock: a crash never leaves a
// referenced blob deleted, at worst an unreferenced one kept until the next
// pass. ListMissingBlobs lists referenced blobs never uploaded, as after an
// import.
//
// # Imports
//
// ReplaceRepo swaps the whole repository for another (blocks, records,
// index) in one transaction, with a #sync event (outbox kind KindSync).
//
// # Building commits on the store
//
// Store implements repo.BlockStore. Repo.Commit writes its blocks through the
// store it was given; a repo.Repo meant to be committed with ApplyCommit is
// built on CommitStore, whose PutBlock keeps nothing, so that the blocks reach
// the database only inside ApplyCommit (from CommitResult.Blocks).
//
// # Concurrency
//
// A Store is safe for concurrent use. Reads go through the read-only
// connection pool and never wait for a transaction, except for the commits
// queued by ApplyCommitLater: every read of the records, their index, the
// blobs and the blocks, like Head and WaitApplied, first waits until the
// commits handed over before it are stored, cutting their batch's wait
// short, so that it sees every acknowledged write. Outbox, which the
// sequencer reads, does not wait; nor do CommitHead and CommitStore, which
// give the holder of LockForCommit the queued commits themselves. Writers
// of one account are serialized by the account's lock (Lock or
// LockForCommit, and Unlock), which a caller holds from opening the
// repository at its head to ApplyCommit or ApplyCommitLater; different
// accounts have different files and locks and are written in parallel.
package actorstore
