package repo

import (
	"context"
	"fmt"
	"sync"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// BlockStore holds the blocks of one or more repositories, addressed by
// CID. Implementations must be safe for concurrent use.
type BlockStore interface {
	// GetBlock returns the bytes of a block, or a *MissingBlockError
	// when the store does not hold it.
	GetBlock(ctx context.Context, c data.CID) ([]byte, error)
	// PutBlock stores a block. The caller vouches that c is the CID of b.
	PutBlock(ctx context.Context, c data.CID, b []byte) error
}

// MissingBlockError reports a block that a tree, commit or proof needs and
// the store or CAR file does not hold.
type MissingBlockError struct {
	CID data.CID
	// What needed it, for example "MST node" or "record app.bsky.feed.post/3k2a".
	Context string
}

func (e *MissingBlockError) Error() string {
	if e.Context == "" {
		return fmt.Sprintf("repo: missing block %s", e.CID)
	}
	return fmt.Sprintf("repo: missing block %s (%s)", e.CID, e.Context)
}

// MemBlockStore is a BlockStore in memory.
type MemBlockStore struct {
	mu     sync.RWMutex
	blocks map[data.CID][]byte
}

// NewMemBlockStore returns an empty in-memory block store.
func NewMemBlockStore() *MemBlockStore {
	return &MemBlockStore{blocks: make(map[data.CID][]byte)}
}

// GetBlock implements BlockStore.
func (s *MemBlockStore) GetBlock(_ context.Context, c data.CID) ([]byte, error) {
	s.mu.RLock()
	b, ok := s.blocks[c]
	s.mu.RUnlock()
	if !ok {
		return nil, &MissingBlockError{CID: c}
	}
	return b, nil
}

// PutBlock implements BlockStore. The store keeps b; the caller must not
// change it afterwards.
func (s *MemBlockStore) PutBlock(_ context.Context, c data.CID, b []byte) error {
	s.mu.Lock()
	s.blocks[c] = b
	s.mu.Unlock()
	return nil
}

// getBlocks looks up several blocks under one lock, setting out[i] to the
// block of cids[i] or nil when the store lacks it. One tight loop lets the
// processor overlap the cache misses of the lookups.
func (s *MemBlockStore) getBlocks(cids []data.CID, out [][]byte) {
	s.mu.RLock()
	for i, c := range cids {
		out[i] = s.blocks[c]
	}
	s.mu.RUnlock()
}

// putStaged stores the blocks of an import marked as needed, under one
// lock, sizing the map once when the store is empty.
func (s *MemBlockStore) putStaged(blocks []stagedBlock, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.blocks) == 0 && n > 0 {
		s.blocks = make(map[data.CID][]byte, n)
	}
	for i := range blocks {
		if sb := &blocks[i]; sb.needed {
			s.blocks[sb.cid] = sb.data
		}
	}
}

// Len returns the number of blocks held.
func (s *MemBlockStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.blocks)
}

// Blocks returns a copy of the map of blocks held.
func (s *MemBlockStore) Blocks() map[data.CID][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[data.CID][]byte, len(s.blocks))
	for c, b := range s.blocks {
		out[c] = b
	}
	return out
}
