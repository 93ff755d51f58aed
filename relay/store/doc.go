// Package store keeps a relay's state about the hosts it follows and the
// accounts they host, in SQLite or PostgreSQL through internal/sqldb.
//
// A Host is an upstream PDS: its hostname, its status (active, blocked,
// throttled), the last upstream seq whose event is durable in the relay's
// own log (the cursor a restart resumes from), counts of accepted and
// rejected events, when its first event was accepted, and the limits the
// operator set for it (accounts, event rate; zero when the relay's host
// policy decides). An Account is one repository the relay has seen: its
// DID, the host it came from, its hosting status, the rev, data root and
// commit CID of its last accepted commit, whether the chain of its
// commits was seen to break (desynchronized), and whether the relay's
// operator took it down, which is kept apart from the status its host
// gives.
//
// ApplyEvents stores the account states a batch of the relay's own log
// brought together with the batch's last seq, in one transaction;
// AppliedSeq tells a restarted relay from which seq of its log the
// states need replaying.
//
// Hostnames are stored as the relay normalized them ("pds.example.com",
// or "localhost:2583" for development hosts); the store does not check
// them.
package store
