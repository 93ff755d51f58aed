// Package store keeps the operation log of a PLC directory.
//
// Store is the interface the directory server uses; SQL implements it on
// both sqldb backends (SQLite, the embedded default, and PostgreSQL).
//
// Every accepted operation is one row holding the DID, the operation's JSON,
// its CID, the time the directory accepted it (createdAt), whether a later
// recovery nullified it, and a global sequence number (seq). Sequence numbers
// are handed out from a counter row that each writing transaction updates, so
// they increase in commit order on both backends: a reader that has seen seq
// n will never later find a newly committed row below n. That makes seq a
// safe cursor for /export and /export/stream.
//
// Append is the only write. It inserts the new operation and marks the
// operations it nullifies in one transaction, and it refuses with
// ErrConflict when the DID's log grew since the caller read it, so two
// submissions for one DID can never both be accepted, even from two
// processes sharing a PostgreSQL database.
package store
