// Package car reads and writes CARv1 files (Content Addressable aRchives),
// the form in which atproto repositories travel: full exports from
// com.atproto.sync.getRepo, and the "blocks" slices of #commit and #sync
// events on the firehose.
//
// A CARv1 file is a length-prefixed DAG-CBOR header {"roots": [CID...],
// "version": 1} followed by sections, each an unsigned varint length and
// then a binary CID and the bytes of the block it names. atproto puts the
// CID of the commit first among the roots.
//
// # Reading
//
// A Reader streams the blocks of a file one at a time and checks each
// against its CID: sha-256 is the only hash function accepted, as it is
// the only one atproto uses. Every length prefix is checked against the
// Limits before anything is allocated for it, and sections larger than
// 64 KiB are read into a buffer that grows as bytes arrive, so a short
// input cannot make the Reader allocate much more than its own length.
// DefaultLimits suit full repository exports; CommitLimits apply the
// sizes the sync specification sets for #commit events. Every error but
// io.EOF at the end is an *Error giving the offset of the section at
// fault, its index and, once read, its CID; errors.Is tells the causes
// apart (ErrTruncated, ErrLimit, ErrHashMismatch, ErrUnsupportedHash,
// ErrMalformed).
//
// As the repository specification asks, readers are tolerant of what the
// format leaves open: blocks may come in any order, be repeated, or be
// unrelated to the roots, and roots need not be present among the blocks.
// ReadAll keeps one copy of a repeated block (the copies are identical,
// having been checked against the same CID). An empty roots list is
// accepted; CARv2 files and unknown versions are refused.
//
// # Writing
//
// A Writer streams sections through a fixed-size buffer, so writing a
// repository of any size takes constant memory. It trusts the caller's
// CIDs (it does not hash the blocks). WriteAll writes a map of blocks in a
// deterministic order: the roots' blocks first, then the rest by binary
// CID.
package car
