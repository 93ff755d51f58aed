// Package verify checks the #commit and #sync events a relay receives from
// PDS hosts, as the sync specification's "Message Validation Checklist"
// asks, before the relay re-sequences and passes them on.
//
// Checking is in two steps. ParseCommit and ParseSync decode an event body
// once and check everything that needs no outside knowledge: the size
// limits (a 5 MB frame; for #commit a 2,000,000-byte blocks field, blocks
// of at most 1,000,000 bytes and at most 200 ops), the fields, the CAR
// slice (every block hashed against its CID), the signed commit and its
// agreement with the event. VerifyCommit and VerifySync then check the
// parsed event against the account's resolved identity and the state the
// relay keeps for it (AccountState): the event came from the account's
// PDS, the account is active, the rev is neither in the future nor at or
// below the last accepted one, the signature verifies with the DID's
// #atproto key, and, for #commit, the sync 1.1 inversion: the ops undone on
// the slice's partial tree give back prevData (repo.InvertOps). The parsed
// blocks are shared by the signature check and the inversion, and the
// bytes the signature covers are cut from the commit block, not
// re-encoded.
//
// Every rejection carries a Reason, a short stable name usable as a metric
// label (Reasons lists them all), and an error saying exactly what was
// wrong. Reason.RefreshIdentity tells which rejections may change with a
// fresh identity (the specification asks for one refresh and retry before
// a signature failure is final), and Reason.Ignorable marks replays.
//
// A #commit whose since or prevData does not continue the last accepted
// commit is still accepted when everything else checks out, with
// Verdict.Resync set: the chain is broken and the repository should be
// re-synchronized. Options.Lenient lets through commits that fail the
// inversion (for hosts that predate sync 1.1), reporting the failure in the
// Verdict; it is off by default.
//
// Nothing here does I/O or keeps state: callers resolve identities, store
// AccountState (Verdict.NewState is the state to keep), and run events of
// one DID in order, different DIDs in parallel. Bad input never panics.
package verify
