package car

import "fmt"

// Limits bound what a Reader accepts. A zero field takes its value from
// DefaultLimits; there is no "unlimited" setting, but any field may be
// raised as far as the caller can afford.
type Limits struct {
	// MaxHeaderSize bounds the DAG-CBOR header, in bytes (not counting its
	// length prefix).
	MaxHeaderSize int
	// MaxBlockSize bounds the bytes of one block, not counting its CID.
	MaxBlockSize int
	// MaxTotalSize bounds the whole CAR file, header and length prefixes
	// included.
	MaxTotalSize int64
	// MaxBlocks bounds the number of block sections.
	MaxBlocks int
}

// Default limits, for full repository exports (com.atproto.sync.getRepo).
const (
	// DefaultMaxHeaderSize allows well over a thousand roots; atproto
	// writes one (the commit).
	DefaultMaxHeaderSize = 64 << 10
	// DefaultMaxBlockSize is the size of the whole "blocks" field of a
	// #commit event (sync specification, "Commit events have the following
	// size limits": 2 million bytes). No block of a repository that has
	// gone through the firehose can be larger; record blocks are held to
	// half of it (RecordMaxBlockSize).
	DefaultMaxBlockSize = 2_000_000
	// DefaultMaxTotalSize bounds a whole repository export. The largest
	// repositories on the network hold a few million records, well under
	// this.
	DefaultMaxTotalSize = 8 << 30
	// DefaultMaxBlocks bounds the sections of a repository export: a few
	// million records and their MST nodes fit with room to spare.
	DefaultMaxBlocks = 1 << 24
)

// Limits of the CAR slice carried in the "blocks" field of a #commit
// event, from the sync specification.
const (
	// CommitMaxTotalSize: "the blocks bytes field has a hard size limit of
	// 2 million bytes".
	CommitMaxTotalSize = 2_000_000
	// RecordMaxBlockSize: "individual record blocks within the blocks field
	// have a hard limit of one million bytes". Commit and MST node blocks
	// are far smaller, so it bounds every block of a slice.
	RecordMaxBlockSize = 1_000_000
	// CommitMaxBlocks is as many sections as fit in CommitMaxTotalSize:
	// the smallest section of a sha-256 block is 37 bytes (a one-byte
	// length, a 36-byte CID, an empty block). The spec bounds operations
	// (200), not blocks, so no tighter bound is safe.
	CommitMaxBlocks = CommitMaxTotalSize / 37
)

// DefaultLimits returns the limits for full repository exports.
func DefaultLimits() Limits {
	return Limits{
		MaxHeaderSize: DefaultMaxHeaderSize,
		MaxBlockSize:  DefaultMaxBlockSize,
		MaxTotalSize:  DefaultMaxTotalSize,
		MaxBlocks:     DefaultMaxBlocks,
	}
}

// CommitLimits returns the limits for the CAR slice of a #commit or #sync
// event.
func CommitLimits() Limits {
	return Limits{
		MaxHeaderSize: DefaultMaxHeaderSize,
		MaxBlockSize:  RecordMaxBlockSize,
		MaxTotalSize:  CommitMaxTotalSize,
		MaxBlocks:     CommitMaxBlocks,
	}
}

// withDefaults fills zero fields from DefaultLimits and refuses negative
// ones.
func (l Limits) withDefaults() (Limits, error) {
	if l.MaxHeaderSize < 0 || l.MaxBlockSize < 0 || l.MaxTotalSize < 0 || l.MaxBlocks < 0 {
		return l, fmt.Errorf("car: negative limit in %+v", l)
	}
	d := DefaultLimits()
	if l.MaxHeaderSize == 0 {
		l.MaxHeaderSize = d.MaxHeaderSize
	}
	if l.MaxBlockSize == 0 {
		l.MaxBlockSize = d.MaxBlockSize
	}
	if l.MaxTotalSize == 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	if l.MaxBlocks == 0 {
		l.MaxBlocks = d.MaxBlocks
	}
	return l, nil
}
