package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ErrRefreshNotFound is returned by RefreshStore methods for an unknown
// (or revoked) refresh token id.
var ErrRefreshNotFound = errors.New("auth: refresh token not found")

// RefreshRecord is the server-side state of one refresh token.
type RefreshRecord struct {
	JTI string
	DID syntax.DID
	// Scope is the access scope of tokens minted from this refresh token.
	Scope Scope
	// ExpiresAt is the token's expiry, shortened to the end of the grace
	// period once it has been rotated.
	ExpiresAt time.Time
	// Next is the pair the token was rotated into, nil before rotation.
	Next *TokenPair
}

// RefreshStore persists refresh tokens by jti. Implementations must be safe
// for concurrent use and make MarkRotated atomic.
type RefreshStore interface {
	// Put inserts rec. An existing record with the same JTI is kept.
	Put(ctx context.Context, rec RefreshRecord) error
	// Get returns the record of jti or ErrRefreshNotFound. It may return
	// records past ExpiresAt; callers check.
	Get(ctx context.Context, jti string) (*RefreshRecord, error)
	// MarkRotated records next as the successor of jti and sets its
	// ExpiresAt to expiresAt, unless a successor is already recorded, in
	// which case nothing changes and the recorded successor is returned.
	// It returns the successor in effect, or ErrRefreshNotFound.
	MarkRotated(ctx context.Context, jti string, next TokenPair, expiresAt time.Time) (TokenPair, error)
	// Revoke deletes jti. Deleting an unknown jti is not an error.
	Revoke(ctx context.Context, jti string) error
	// RevokeDID deletes every refresh token of did (password change,
	// takedown).
	RevokeDID(ctx context.Context, did syntax.DID) error
}

// MemoryRefreshStore is an in-memory RefreshStore, for tests and single-
// process servers. Expired records are removed by DeleteExpired.
type MemoryRefreshStore struct {
	mu   sync.Mutex
	recs map[string]RefreshRecord
}

// NewMemoryRefreshStore returns an empty store.
func NewMemoryRefreshStore() *MemoryRefreshStore {
	return &MemoryRefreshStore{recs: make(map[string]RefreshRecord)}
}

func copyRecord(r RefreshRecord) *RefreshRecord {
	if r.Next != nil {
		n := *r.Next
		r.Next = &n
	}
	return &r
}

// Put implements RefreshStore.
func (m *MemoryRefreshStore) Put(_ context.Context, rec RefreshRecord) error {
	if rec.JTI == "" {
		return errors.New("auth: refresh record without jti")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[rec.JTI]; !ok {
		m.recs[rec.JTI] = *copyRecord(rec)
	}
	return nil
}

// Get implements RefreshStore.
func (m *MemoryRefreshStore) Get(_ context.Context, jti string) (*RefreshRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[jti]
	if !ok {
		return nil, ErrRefreshNotFound
	}
	return copyRecord(r), nil
}

// MarkRotated implements RefreshStore.
func (m *MemoryRefreshStore) MarkRotated(_ context.Context, jti string, next TokenPair, expiresAt time.Time) (TokenPair, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[jti]
	if !ok {
		return TokenPair{}, ErrRefreshNotFound
	}
	if r.Next != nil {
		return *r.Next, nil
	}
	r.Next = &next
	r.ExpiresAt = expiresAt
	m.recs[jti] = r
	return next, nil
}

// Revoke implements RefreshStore.
func (m *MemoryRefreshStore) Revoke(_ context.Context, jti string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, jti)
	return nil
}

// RevokeDID implements RefreshStore.
func (m *MemoryRefreshStore) RevokeDID(_ context.Context, did syntax.DID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range m.recs {
		if r.DID == did {
			delete(m.recs, k)
		}
	}
	return nil
}

// DeleteExpired removes records whose ExpiresAt is not after now.
func (m *MemoryRefreshStore) DeleteExpired(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, r := range m.recs {
		if !r.ExpiresAt.After(now) {
			delete(m.recs, k)
		}
	}
}

// Len returns the number of records held.
func (m *MemoryRefreshStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}
