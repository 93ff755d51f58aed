package repo

import (
	"errors"
	"fmt"
	"sync"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// maxTID is the largest TID integer: the top bit is always zero.
const maxTID = 1<<63 - 1

// RevClock issues commit revisions. The sync specification asks for the
// current time as a TID, and for every rev of a repository to be greater
// than the last, even across clock drift and migrations between hosts.
// RevClock takes revs from a syntax.TIDClock and, when that clock is not
// ahead of the repository's last rev, returns the smallest TID after it
// instead. It is safe for concurrent use.
type RevClock struct {
	clock *syntax.TIDClock
	mu    sync.Mutex
	last  uint64 // the largest rev issued, as an integer
}

// NewRevClock returns a RevClock whose TIDs carry clockID (0..1023).
func NewRevClock(clockID uint) *RevClock {
	return &RevClock{clock: syntax.NewTIDClock(clockID)}
}

// Next returns a rev greater than last (the repository's current rev, or
// "" for a new repository) and than every rev this clock returned before.
func (rc *RevClock) Next(last syntax.TID) (syntax.TID, error) {
	var floor uint64
	if last != "" {
		if _, err := syntax.ParseTID(string(last)); err != nil {
			return "", fmt.Errorf("repo: last rev: %w", err)
		}
		floor = last.Integer()
	}
	t := rc.clock.Next()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	floor = max(floor, rc.last)
	v := t.Integer()
	if v <= floor {
		if floor >= maxTID {
			return "", errors.New("repo: last rev is the largest possible TID")
		}
		v = floor + 1
		t = syntax.NewTID(int64(v>>10), uint(v&0x3ff))
	}
	rc.last = v
	return t, nil
}
