package repo

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const testDID = syntax.DID("did:plc:sxtoas2sxjv6gh2bibdg3g4b")

func testMSTRoot(t *testing.T) data.CID {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{"e": []any{}, "l": nil})
	if err != nil {
		t.Fatal(err)
	}
	return data.CIDForCBOR(b)
}

func TestCommitSignVerify(t *testing.T) {
	for _, gen := range []struct {
		name string
		f    func() (crypto.PrivateKey, error)
	}{{"k256", crypto.GenerateK256}, {"p256", crypto.GenerateP256}} {
		t.Run(gen.name, func(t *testing.T) {
			key, err := gen.f()
			if err != nil {
				t.Fatal(err)
			}
			other, err := gen.f()
			if err != nil {
				t.Fatal(err)
			}
			c := NewCommit(testDID, testMSTRoot(t), syntax.TID("3lhhxizu5wr2d"))
			if _, err := c.Bytes(); err == nil {
				t.Fatal("Bytes of an unsigned commit succeeded")
			}
			if err := c.Sign(key); err != nil {
				t.Fatal(err)
			}
			if len(c.Sig) != 64 {
				t.Fatalf("signature of %d bytes", len(c.Sig))
			}
			if err := c.Verify(key.Public()); err != nil {
				t.Fatal(err)
			}
			if err := c.Verify(other.Public()); !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Fatalf("wrong key: %v", err)
			}

			// Through bytes and back, then tamper with each field.
			b, err := c.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseCommit(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := parsed.Verify(key.Public()); err != nil {
				t.Fatal(err)
			}
			other2 := data.CIDForCBOR([]byte{0xa0})
			for name, tamper := range map[string]func(*Commit){
				"did":  func(c *Commit) { c.DID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" },
				"rev":  func(c *Commit) { c.Rev = "3lhhxizu5wr2e" },
				"data": func(c *Commit) { c.Data = other2 },
				"prev": func(c *Commit) { c.Prev = &other2 },
				"sig":  func(c *Commit) { c.Sig = append([]byte{}, c.Sig...); c.Sig[10] ^= 1 },
			} {
				cp, _ := ParseCommit(b)
				tamper(cp)
				if err := cp.Verify(key.Public()); !errors.Is(err, crypto.ErrInvalidSignature) {
					t.Errorf("tampered %s: %v", name, err)
				}
			}
		})
	}
}

// mapKeys returns the keys of a DAG-CBOR map in encoded order.
func mapKeys(t *testing.T, b []byte) []string {
	t.Helper()
	d := data.NewDecoder(b)
	n, err := d.ReadMapHeader()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			t.Fatal(err)
		}
		prev = k
		keys = append(keys, string(k))
		if err := d.Skip(); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestCommitFieldOrder(t *testing.T) {
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	c := NewCommit(testDID, testMSTRoot(t), "3lhhxizu5wr2d")
	if err := c.Sign(key); err != nil {
		t.Fatal(err)
	}
	b, _ := c.Bytes()
	if got := strings.Join(mapKeys(t, b), ","); got != "did,rev,sig,data,prev,version" {
		t.Fatalf("signed keys %s", got)
	}
	u, _ := c.UnsignedBytes()
	if got := strings.Join(mapKeys(t, u), ","); got != "did,rev,data,prev,version" {
		t.Fatalf("unsigned keys %s", got)
	}
	// prev is present, as null.
	if !bytes.Contains(u, []byte("\x64prev\xf6")) {
		t.Fatalf("prev is not encoded as null: %x", u)
	}
	// The generic encoder agrees byte for byte.
	generic, err := data.MarshalCBOR(map[string]any{
		"did": string(c.DID), "rev": string(c.Rev), "sig": data.Bytes(c.Sig),
		"data": c.Data, "prev": nil, "version": int64(3),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(generic, b) {
		t.Fatalf("commit encoder and generic encoder disagree:\n%x\n%x", b, generic)
	}
	// And through the data package's CBORMarshaler hook.
	viaHook, err := data.MarshalCBOR(c)
	if err != nil || !bytes.Equal(viaHook, b) {
		t.Fatalf("MarshalCBOR(commit) = %x, %v", viaHook, err)
	}
}

// realCommitSlice is the "blocks" CAR slice of #commit event 4623075231
// from the Bluesky relay (a profile update written by the reference PDS),
// as kept in indigo's repository test data.
const realCommitSlice = "OqJlcm9vdHOB2CpYJQABcRIguGgY6Gyzx0qGvu6xnMOvrseCNY9Vnayk3st3mURyKvZndmVyc2lvbgGkAQFxEiBZNQKb1PlJdfWo2pm805YjDrwKuliSKPqEOLCxNUrJlKJhZYGkYWtYG2FwcC5ic2t5LmFjdG9yLnByb2ZpbGUvc2VsZmFwAGF02CpYJQABcRIgRSEckyU/NMy/Gdrs1dSwVHYml/TnosIx/NbKvmnC21BhdtgqWCUAAXESIGT2zjtHHx/OeWyYjkAdNmJwRtOlg6ws+SBm8KaF+dKcYWz2zwEBcRIgZPbOO0cfH855bJiOQB02YnBG06WDrCz5IGbwpoX50pykZSR0eXBldmFwcC5ic2t5LmFjdG9yLnByb2ZpbGVmYXZhdGFypGNyZWbYKlglAAFVEiA2ONI9RhyxWEPzAjacznhfqSPC60Y/75u0/HVdqVgNXGRzaXplGTxUZSR0eXBlZGJsb2JobWltZVR5cGVqaW1hZ2UvanBlZ2ljcmVhdGVkQXR4GDIwMjUtMDItMDZUMDE6NDM6MjEuMjk5WmtkaXNwbGF5TmFtZWDgAQFxEiC4aBjobLPHSoa+7rGcw6+ux4I1j1WdrKTey3eZRHIq9qZjZGlkeCBkaWQ6cGxjOnN4dG9hczJzeGp2NmdoMmJpYmRnM2c0YmNyZXZtM2xoaHhpenU1d3IyZGNzaWdYQHBHEeGz9EBPjzt9aQpFHE0iOFUpCiL1SYSe5tpTO2tlHF26TAoeSWhvQnvjd/aDVfVKDnQ/dLABLB7MYnweNexkZGF0YdgqWCUAAXESIFk1ApvU+Ul19ajambzTliMOvAq6WJIo+oQ4sLE1SsmUZHByZXb2Z3ZlcnNpb24D"

// TestCommitKnownAnswer reads a commit written by the reference
// implementation and checks that it re-encodes to the identical bytes.
func TestCommitKnownAnswer(t *testing.T) {
	raw, err := base64.StdEncoding.DecodeString(realCommitSlice)
	if err != nil {
		t.Fatal(err)
	}
	roots, blocks, err := car.ReadAll(bytes.NewReader(raw), car.CommitLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := data.MustParseCID("bafyreifynamoq3fty5finpxowgomhl5oy6bdld2vtwwkjxwlo6mui4rk6y")
	if len(roots) != 1 || roots[0] != want {
		t.Fatalf("roots %v", roots)
	}
	blk, ok := blocks[want]
	if !ok {
		t.Fatal("commit block missing")
	}
	c, err := ParseCommit(blk)
	if err != nil {
		t.Fatal(err)
	}
	if c.DID != testDID || c.Rev != "3lhhxizu5wr2d" || c.Version != 3 || c.Prev != nil || len(c.Sig) != 64 {
		t.Fatalf("parsed %+v", c)
	}
	if c.Data != data.MustParseCID("bafyreiczgubjxvhzjf27lkg2tg6nhfrdb26avosysiupvbbywcytkswjsq") {
		t.Fatalf("data %s", c.Data)
	}
	if _, ok := blocks[c.Data]; !ok {
		t.Fatal("MST root not in the slice")
	}
	b, err := c.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, blk) {
		t.Fatalf("re-encoded\n%x\nwant\n%x", b, blk)
	}
	if cid, _ := c.CID(); cid != want {
		t.Fatalf("CID %s", cid)
	}
	// The unsigned form is the block without its sig entry.
	u, _ := c.UnsignedBytes()
	if len(u) != len(blk)-len("\x63sig\x58\x40")-64 || u[0] != 0xa5 {
		t.Fatalf("unsigned form %x", u)
	}
}

func encodeMap(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCommitErrors(t *testing.T) {
	root := testMSTRoot(t)
	sig := data.Bytes(bytes.Repeat([]byte{1}, 64))
	base := func() map[string]any {
		return map[string]any{"did": string(testDID), "rev": "3lhhxizu5wr2d", "sig": sig, "data": root, "prev": nil, "version": int64(3)}
	}
	if _, err := ParseCommit(encodeMap(t, base())); err != nil {
		t.Fatalf("base commit: %v", err)
	}
	sha512ish := data.NewCIDv1(data.CodecDagCBOR, 0x13, make([]byte, 64))
	rawLink := data.CIDForRaw([]byte("x"))
	for _, tc := range []struct {
		name, want string
		edit       func(m map[string]any)
	}{
		{"version 4", "unsupported version 4", func(m map[string]any) { m["version"] = int64(4) }},
		{"version 1", "unsupported version 1", func(m map[string]any) { m["version"] = int64(1) }},
		{"no version", `missing "version"`, func(m map[string]any) { delete(m, "version") }},
		{"no did", `missing "did"`, func(m map[string]any) { delete(m, "did") }},
		{"bad did", "commit: did", func(m map[string]any) { m["did"] = "plc:nope" }},
		{"no data", `missing "data"`, func(m map[string]any) { delete(m, "data") }},
		{"no sig", `missing "sig"`, func(m map[string]any) { delete(m, "sig") }},
		{"empty sig", `empty "sig"`, func(m map[string]any) { m["sig"] = data.Bytes{} }},
		{"no rev", `without "rev"`, func(m map[string]any) { delete(m, "rev") }},
		{"bad rev", "commit: rev", func(m map[string]any) { m["rev"] = "not-a-tid" }},
		{"no prev", `without "prev"`, func(m map[string]any) { delete(m, "prev") }},
		{"unknown field", `unknown field "extra"`, func(m map[string]any) { m["extra"] = int64(1) }},
		{"sha-512 data", "not a CIDv1 sha-256 dag-cbor link", func(m map[string]any) { m["data"] = sha512ish }},
		{"raw data", "not a CIDv1 sha-256 dag-cbor link", func(m map[string]any) { m["data"] = rawLink }},
		{"raw prev", "prev", func(m map[string]any) { m["prev"] = rawLink }},
		{"did not a string", `"did"`, func(m map[string]any) { m["did"] = int64(5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			_, err := ParseCommit(encodeMap(t, m))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	for name, b := range map[string][]byte{
		"not a map":      {0x80},
		"trailing bytes": append(encodeMap(t, base()), 0x00),
		"empty":          {},
		"truncated":      encodeMap(t, base())[:40],
	} {
		if _, err := ParseCommit(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A non-null prev is accepted on reading.
	m := base()
	m["prev"] = root
	c, err := ParseCommit(encodeMap(t, m))
	if err != nil || c.Prev == nil || *c.Prev != root {
		t.Fatalf("non-null prev: %v", err)
	}
}

func TestLegacyCommit(t *testing.T) {
	root := testMSTRoot(t)
	sig := data.Bytes(bytes.Repeat([]byte{1}, 64))
	for name, m := range map[string]map[string]any{
		"with prev and rev": {"did": string(testDID), "rev": "3lhhxizu5wr2d", "sig": sig, "data": root, "prev": root, "version": int64(2)},
		"null prev, no rev": {"did": string(testDID), "sig": sig, "data": root, "prev": nil, "version": int64(2)},
		"no prev, no rev":   {"did": string(testDID), "sig": sig, "data": root, "version": int64(2)},
	} {
		t.Run(name, func(t *testing.T) {
			b := encodeMap(t, m)
			if _, err := ParseCommit(b); !errors.Is(err, ErrLegacyCommit) {
				t.Fatalf("ParseCommit: %v", err)
			}
			c, err := ParseLegacyCommit(b)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Legacy() {
				t.Fatal("not marked legacy")
			}
			again, err := c.Bytes()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoded %x, %v; want %x", again, err, b)
			}
			key, _ := crypto.GenerateK256()
			if err := c.Sign(key); err == nil {
				t.Fatal("signed a legacy commit")
			}
		})
	}
	// A legacy commit signed by its key verifies.
	key, err := crypto.GenerateP256()
	if err != nil {
		t.Fatal(err)
	}
	unsigned := encodeMap(t, map[string]any{"did": string(testDID), "data": root, "prev": nil, "version": int64(2)})
	s, err := key.HashAndSign(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseLegacyCommit(encodeMap(t, map[string]any{"did": string(testDID), "sig": data.Bytes(s), "data": root, "prev": nil, "version": int64(2)}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(key.Public()); err != nil {
		t.Fatal(err)
	}
}

func TestCommitValidateOnWrite(t *testing.T) {
	key, _ := crypto.GenerateK256()
	for name, c := range map[string]*Commit{
		"bad did":     NewCommit("nope", testMSTRoot(t), "3lhhxizu5wr2d"),
		"bad rev":     NewCommit(testDID, testMSTRoot(t), "x"),
		"no data":     NewCommit(testDID, data.CID{}, "3lhhxizu5wr2d"),
		"version 4":   {DID: testDID, Version: 4, Data: testMSTRoot(t), Rev: "3lhhxizu5wr2d"},
		"zero commit": {},
	} {
		if err := c.Sign(key); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestRevClock(t *testing.T) {
	rc := NewRevClock(7)
	a, err := rc.Next("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syntax.ParseTID(string(a)); err != nil {
		t.Fatal(err)
	}
	b, _ := rc.Next(a)
	if b <= a {
		t.Fatalf("%s then %s", a, b)
	}
	// A last rev far in the future: the next rev comes just after it.
	future := syntax.NewTID(a.Time().UnixMicro()+3600e6, 1023)
	f, err := rc.Next(future)
	if err != nil {
		t.Fatal(err)
	}
	if f.Integer() != future.Integer()+1 {
		t.Fatalf("after %s (%d) got %s (%d)", future, future.Integer(), f, f.Integer())
	}
	// The clock remembers it even if the caller passes an older rev.
	g, _ := rc.Next(a)
	if g <= f {
		t.Fatalf("went backwards: %s after %s", g, f)
	}
	if _, err := rc.Next("bad"); err == nil {
		t.Fatal("invalid last rev accepted")
	}
	if _, err := NewRevClock(0).Next("jzzzzzzzzzzzz"); err == nil {
		t.Fatal("no error after the largest TID")
	}
}

func TestRevClockConcurrent(t *testing.T) {
	rc := NewRevClock(3)
	start, _ := rc.Next("")
	var (
		mu   sync.Mutex
		seen = map[syntax.TID]bool{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				r, err := rc.Next(start)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[r] || r <= start {
					t.Errorf("rev %s repeated or not after %s", r, start)
				}
				seen[r] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 1600 {
		t.Fatalf("%d distinct revs", len(seen))
	}
}
