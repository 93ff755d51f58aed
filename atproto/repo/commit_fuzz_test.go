package repo

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// FuzzParseCommit checks that ParseCommit and ParseLegacyCommit never
// panic, agree with each other (ParseCommit accepts exactly the version 3
// commits ParseLegacyCommit accepts, and refuses version 2 ones with
// ErrLegacyCommit), and that whatever they accept is canonical: it passes
// Validate, re-encodes to the very same bytes (so its CID and the signed
// bytes are determined by the parsed fields, and no second encoding of a
// commit can carry the same signature), and re-parses to the same commit.
func FuzzParseCommit(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add(fx.commit)
	f.Add(fx.highSCommit(f))
	c, err := ParseCommit(fx.commit)
	if err != nil {
		f.Fatal(err)
	}
	if u, err := c.UnsignedBytes(); err == nil {
		f.Add(u)
	}
	root := c.Data
	sig := data.Bytes(c.Sig)
	for _, m := range []map[string]any{
		{"did": string(testDID), "rev": string(fzRev), "sig": sig, "data": root, "prev": root, "version": int64(3)},
		{"did": string(testDID), "rev": string(fzRev), "sig": sig, "data": root, "prev": root, "version": int64(2)},
		{"did": string(testDID), "sig": sig, "data": root, "prev": nil, "version": int64(2)},
		{"did": string(testDID), "sig": sig, "data": root, "version": int64(2)},
	} {
		b, err := data.MarshalCBOR(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > fzMaxInput {
			return
		}
		c3, err3 := ParseCommit(b)
		c, err := ParseLegacyCommit(b)
		switch {
		case err3 == nil && err != nil:
			t.Fatalf("ParseCommit accepts, ParseLegacyCommit refuses: %v", err)
		case err3 == nil && !reflect.DeepEqual(c3, c):
			t.Fatalf("ParseCommit gives %+v, ParseLegacyCommit %+v", c3, c)
		case err == nil && c.Version == CommitVersion && err3 != nil:
			t.Fatalf("version 3 commit refused by ParseCommit: %v", err3)
		case err == nil && c.Version != CommitVersion && !errors.Is(err3, ErrLegacyCommit):
			t.Fatalf("version %d commit: ParseCommit error %v, want ErrLegacyCommit", c.Version, err3)
		}
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a commit", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed commit does not validate: %v", err)
		}
		if c.Version == CommitVersion && c.Legacy() || c.Version == LegacyCommitVersion && !c.Legacy() {
			t.Fatalf("version %d, Legacy %v", c.Version, c.Legacy())
		}
		again, err := c.Bytes()
		if err != nil {
			t.Fatalf("parsed commit does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		if cid, err := c.CID(); err != nil || cid != data.CIDForCBOR(b) {
			t.Fatalf("CID %s, %v; want %s", cid, err, data.CIDForCBOR(b))
		}
		if _, err := c.UnsignedBytes(); err != nil {
			t.Fatalf("parsed commit has no unsigned form: %v", err)
		}
		c2, err := ParseLegacyCommit(again)
		if err != nil || !reflect.DeepEqual(c2, c) {
			t.Fatalf("re-parsed to %+v, %v; want %+v", c2, err, c)
		}
		// Only a commit carrying the fixture's r could verify; checking
		// just those keeps executions fast.
		if c.Version == CommitVersion && len(c.Sig) == 64 && bytes.Equal(c.Sig[:32], fx.sig[:32]) {
			if err := c.Verify(fx.pub); err == nil && !bytes.Equal(b, fx.commit) {
				t.Fatalf("a commit other than the fixture's verifies with its key:\n%x", b)
			}
		}
	})
}
