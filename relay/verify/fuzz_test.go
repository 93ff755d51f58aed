package verify

import (
	"bytes"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

// fuzzAccount makes a short chain of real commits for seeds.
func fuzzAccount(f *testing.F) (*account, []*repo.CommitResult) {
	a := newAccount(f, crypto.KeyTypeK256)
	first := a.commit(f, creates(f, "a", 4)...)
	second := a.commit(f, write(f, repo.ActionUpdate, "a0001", "x"), write(f, repo.ActionDelete, "a0002", ""),
		write(f, repo.ActionCreate, "b", "y"))
	return a, []*repo.CommitResult{first, second}
}

// FuzzParseCommit: any body either parses into a consistent Commit or is
// rejected with a Reason and an error, without panicking; a parsed commit
// then verifies without panicking whatever the state.
func FuzzParseCommit(f *testing.F) {
	a, results := fuzzAccount(f)
	for _, res := range results {
		body := encode(f, commitEvent(res))
		f.Add(body)
		f.Add(body[:len(body)-1])
	}
	f.Add([]byte{0xa0})
	f.Add([]byte{})
	st := stateAfter(results[0])
	f.Fuzz(func(t *testing.T, body []byte) {
		c, r, err := ParseCommit(body, nil)
		if r != ReasonNone {
			if c != nil || err == nil {
				t.Fatalf("reason %s with commit %v and error %v", r, c != nil, err)
			}
			return
		}
		if c == nil || err != nil {
			t.Fatalf("no reason, commit %v, error %v", c != nil, err)
		}
		if string(c.DID()) != c.Event.Repo || c.Commit.DID != c.DID() || c.Commit.Rev != c.Rev() ||
			len(c.Ops()) != len(c.Event.Ops) || len(c.Event.Ops) > DefaultMaxOps {
			t.Fatal("parsed commit disagrees with its event")
		}
		for _, st := range []AccountState{{}, st} {
			v := VerifyCommit(c, testHost, a.id, st, nil)
			if (v.Reason == ReasonNone) != (v.Err == nil) {
				t.Fatalf("verdict %+v", v)
			}
		}
	})
}

// FuzzParseSync is FuzzParseCommit for #sync bodies.
func FuzzParseSync(f *testing.F) {
	a, results := fuzzAccount(f)
	for _, res := range results {
		body := encode(f, syncEvent(f, res))
		f.Add(body)
		f.Add(body[:len(body)-2])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, r, err := ParseSync(body, nil)
		if r != ReasonNone {
			if s != nil || err == nil {
				t.Fatalf("reason %s with sync %v and error %v", r, s != nil, err)
			}
			return
		}
		if s.Commit.DID != s.DID() || s.Commit.Rev != s.Rev() || len(s.Event.Blocks) > DefaultMaxSyncBlocksSize {
			t.Fatal("parsed sync disagrees with its event")
		}
		v := VerifySync(s, testHost, a.id, AccountState{}, nil)
		if (v.Reason == ReasonNone) != (v.Err == nil) {
			t.Fatalf("verdict %+v", v)
		}
	})
}

// FuzzReadCAR checks the event CAR reader against the general one in
// atproto/car: whatever it accepts, that reader accepts too, with the same
// first root and the same blocks.
func FuzzReadCAR(f *testing.F) {
	_, results := fuzzAccount(f)
	for _, res := range results {
		f.Add(res.CAR)
		f.Add(res.CAR[:len(res.CAR)/2])
	}
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		root, blocks, err := readCAR(b, DefaultMaxRecordSize)
		if err != nil {
			return
		}
		roots, want, err := car.ReadAll(bytes.NewReader(b), car.DefaultLimits())
		if err != nil {
			t.Fatalf("readCAR accepted what car.ReadAll refuses: %v", err)
		}
		if len(roots) == 0 || roots[0] != root || len(blocks) != len(want) {
			t.Fatalf("root %s, %d blocks; car.ReadAll: roots %v, %d blocks", root, len(blocks), roots, len(want))
		}
		for c, blk := range blocks {
			if !bytes.Equal(want[c], blk) {
				t.Fatalf("block %s differs", c)
			}
		}
	})
}

// FuzzUnsignedCommit: for every block repo.ParseCommit accepts, the bytes
// cut out for the signature are the canonical unsigned commit.
func FuzzUnsignedCommit(f *testing.F) {
	_, results := fuzzAccount(f)
	for _, res := range results {
		f.Add(res.Blocks[res.CID])
	}
	f.Fuzz(func(t *testing.T, block []byte) {
		c, err := repo.ParseCommit(block)
		if err != nil {
			return
		}
		want, err := c.UnsignedBytes()
		if err != nil {
			t.Fatal(err)
		}
		got, err := unsignedCommit(block, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("unsignedCommit = %x, %v; want %x", got, err, want)
		}
	})
}
