// Package eventlog is the relay's durable event log: the re-sequenced
// frames of its subscribeRepos stream, kept on local disk for the backfill
// window, from which the stream server replays (it implements stream.Log).
//
// # Writing
//
// AppendBatch gives a batch of events consecutive seqs, continuing from
// the last seq ever written (or Options.FirstSeq for a new log), and
// appends their frames, each with its time and DID, to the active segment
// in one write. Writers are serialized; their fsyncs are shared (group
// commit): with Options.SyncInterval zero, AppendBatch returns once its
// events are durable, and concurrent callers wait for one fsync between
// them; above zero, it returns at once and Wait reports durability. Readers
// never see an event before it is durable, so a consumer can never be sent
// an event that a crash then takes back.
//
// Event times come from Options.Now and never decrease. With Options.Span
// set, each event also holds its time for as many microseconds as Span
// gives it, and the next event is timed after that: a reader that splits
// an event into parts (a JSON stream emits one message per op of a
// commit) can time each part distinctly, and search by those times.
//
// # Files
//
// The log is a directory of segment files, each named after the seq of its
// first event, zero-padded to 20 digits ("00000000000000000001.seg"), and
// holding records of consecutive seqs. Each record carries a CRC-32C over
// its lengths and contents. When the active segment grows past
// Options.SegmentSize, the next batch seals it (fsync, then a sidecar
// index, NAME.idx) and starts a new one. A LOCK file keeps a second
// process out.
//
// Open reads sealed segments through their sidecars (rebuilding a missing
// or damaged one by scanning), scans the active segment, and cuts off any
// torn or unsynced tail there: the log then ends at its last whole record
// and the next seq follows it, with no gap and no reuse of a durable seq.
// Damage anywhere else (a sealed segment that does not check out, a gap
// between segments) is not repaired; Open fails with an error wrapping
// ErrCorrupt that names the file.
//
// # Reading
//
// Since (for stream.Server), Read (records with their time and DID), Get
// and SeekTime (the position of a time) find their starting point through
// an index of every record of the active segment and every 64th record of
// sealed ones, then read the files without holding any lock, so readers
// and the writer do not wait on each other. Wait blocks until the log
// moves past a seq, for tailing readers.
//
// # Retention
//
// Prune deletes whole sealed segments whose newest event is older than
// Options.Retention (72 hours by default), oldest first; a background
// goroutine calls it every minute. The active segment is never deleted,
// so LatestSeq survives pruning, as stream.Log requires. Options.Now
// supplies the clock for event times and retention.
package eventlog
