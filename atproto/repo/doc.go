// Package repo implements atproto repositories: the Merkle Search Tree of
// records, signed commits, the Repo that writes them, CAR import and export,
// diffs between commits, record proofs and the inversion of #commit events.
//
// # MST
//
// Tree is the Merkle Search Tree that maps repo paths
// ("<collection>/<record key>") to record CIDs (repository specification,
// "MST Structure"). Nodes are decoded once and kept; a change touches only
// the nodes on the path to its key, and only changed nodes are re-encoded
// and hashed. LoadTree opens a stored tree lazily. ValidateTree checks an
// untrusted tree in full. CommitSlice returns the nodes a sync 1.1 #commit
// event must carry, and InvertOps undoes a commit's ops on those nodes alone
// to recover prevData, as relays check.
//
// # Commits
//
// Commit is the signed version 3 commit object. NewCommit, Sign and Bytes
// write one; ParseCommit and Verify read and check one. RevClock issues
// increasing revs.
//
// # Repo
//
// Repo is one account's repository over a BlockStore. Apply stages a batch
// of RecordWrites, atomically and with every check of the repository layer
// (path syntax, DAG-CBOR records with a $type, create only when absent,
// update and delete only when present, MaxCommitOps paths per commit);
// Commit signs a new commit, writes the new record, node and commit blocks
// to the store and returns the #commit event's data: ops with prev CIDs,
// since, prevData and the CAR slice, within the sync specification's limits.
//
// # CAR import and export
//
// ExportCAR streams a full repository (commit, then nodes and records in
// depth-first order) in memory bounded by the tree's height. ImportCAR reads
// an export tolerantly (any order, repeated or unrelated blocks), checks the
// commit's DID and signature and the whole tree, refuses missing records
// naming each one, and stores only the blocks the commit references.
//
// # Diffs and proofs
//
// Diff lists the record operations between two commits, walking both trees
// in key order and skipping subtrees whose CIDs match, with the blocks a
// holder of the old commit lacks. RecordProof builds the CAR of
// com.atproto.sync.getRecord (commit, nodes on the key's path, record), and
// VerifyRecordProof checks one, for presence or absence.
package repo
