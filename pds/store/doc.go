// Package store is the PDS's service database: everything about the hosted
// accounts that is not repository data (which lives in one SQLite file per
// account, see pds/actorstore). It holds the accounts themselves (DID,
// handle, email, password hash, repo signing key, hosting status), app
// passwords, invite codes and their uses, single-use email tokens, and the
// refresh tokens of login sessions.
//
// # Backends
//
// Store is one concrete type over internal/sqldb: SQLite by default (a file
// in the data directory, created with mode 0600 as it holds password hashes
// and signing keys) or PostgreSQL, chosen by the URL given to Open. The
// schema is versioned (component "pds" in schema_migrations) and migrated on
// Open. Tables are prefixed pds_ so that the database can be shared. Times
// are stored as UTC Unix microseconds on both backends and come back in UTC.
//
// # Uniqueness
//
// DIDs, handles (stored in lower case) and email addresses (compared through
// a lower-cased copy; accounts without email are exempt) are unique by
// database indexes, never by check-then-insert: concurrent creations that
// collide have exactly one winner, and the losers' unique violations are
// mapped to ErrDIDTaken, ErrHandleTaken or ErrEmailTaken. All sentinels are
// matched with errors.Is.
//
// # Invite codes
//
// A code's use counter is updated by a conditional UPDATE in the same
// transaction that creates the account, so a code is never used more often
// than it allows, and a failed creation consumes nothing. Deleting an
// account disables the codes made for it but keeps them and every use
// record, so the history of who invited whom stays intact.
//
// # Passwords
//
// HashPassword uses scrypt with the reference PDS's cost (N=16384, r=8,
// p=1, 16-byte salt) and writes a self-describing string,
// "$scrypt$ln=14,r=8,p=1$<salt>$<key>", so the cost can be raised later
// without invalidating stored hashes. VerifyPassword bounds the parameters
// it accepts from a hash and compares in constant time.
//
// # Tokens
//
// Email tokens (confirm email, update email, reset password, delete account,
// sign a PLC operation) are one per account and purpose, expire, and are
// deleted when used, atomically, so each works once. RefreshStore gives the
// persistent auth.RefreshStore that auth.SessionIssuer records refresh tokens
// in; its MarkRotated is a conditional UPDATE, so concurrent rotations of one
// token agree on a single successor.
package store
