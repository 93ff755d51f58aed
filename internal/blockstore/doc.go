// Package blockstore keeps repository blocks in an SQL database, SQLite or
// PostgreSQL through internal/sqldb, as an implementation of
// repo.BlockStore.
//
// The schema is one table, repo_blocks (cid, data): the binary CID as
// primary key and the block bytes. Blocks are content-addressed, so
// writes are idempotent (a block already present is left alone) and a
// batch is written in one transaction, in CID order so that concurrent
// batches on PostgreSQL take their row locks in the same order.
//
// There is no repository (DID) column. The PDS keeps one SQLite file per
// account, where it would be constant. A service holding many
// repositories in one database (an appview or an archive) may share
// identical blocks between them, but must then know which repository
// still uses a block before deleting it; that is a separate (repo, cid)
// reference table, added when such a service needs it, not a column of
// this one, whose key would otherwise stop deduplicating.
//
// The atproto/* libraries hold no database code; this package is where
// the repository layer meets storage.
package blockstore
