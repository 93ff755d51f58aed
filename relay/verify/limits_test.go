package verify

import (
	"bytes"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

// rawBlock is a block of n bytes with its raw-codec CID.
func rawBlock(n int, fill byte) (data.CID, []byte) {
	b := bytes.Repeat([]byte{fill}, n)
	return data.CIDForRaw(b), b
}

// padCAR adds unrelated blocks to an event's CAR slice until it is exactly
// total bytes long (each block below 1,000,000 bytes).
func padCAR(t *testing.T, ev *atproto.SyncSubscribeRepos_Commit, total int) {
	t.Helper()
	root, bs := readCARAll(t, ev.Blocks)
	fill := byte(1)
	for {
		size := len(writeCAR(t, root, bs))
		left := total - size
		if left == 0 {
			break
		}
		// A section is a varint length (3 bytes at these sizes), a
		// 36-byte CID and the block.
		n := min(left-3-36, 900_000)
		if n < 20_000 {
			t.Fatalf("cannot pad %d bytes to exactly %d", size, total)
		}
		c, b := rawBlock(n, fill)
		bs[c] = b
		fill++
	}
	ev.Blocks = writeCAR(t, root, bs)
	if len(ev.Blocks) != total {
		t.Fatalf("padded CAR is %d bytes, want %d", len(ev.Blocks), total)
	}
}

func TestSizeLimits(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	first := a.commit(t, creates(t, "a", 5)...)
	second := a.commit(t, write(t, repo.ActionUpdate, "a0001", "edited"))
	st := stateAfter(first)
	check := func(t *testing.T, ev *atproto.SyncSubscribeRepos_Commit, o *Options, ok bool, r Reason) {
		t.Helper()
		wantVerdict(t, parseVerify(t, encode(t, ev), testHost, a.id, st, o), ok, r)
	}

	t.Run("blocks of exactly 2,000,000 bytes", func(t *testing.T) {
		ev := commitEvent(second)
		padCAR(t, ev, DefaultMaxBlocksSize)
		check(t, ev, nil, true, ReasonNone)
	})
	t.Run("blocks of 2,000,001 bytes", func(t *testing.T) {
		ev := commitEvent(second)
		padCAR(t, ev, DefaultMaxBlocksSize+1)
		check(t, ev, nil, false, ReasonBlocksTooLarge)
	})
	t.Run("blocks over a configured limit", func(t *testing.T) {
		ev := commitEvent(second)
		check(t, ev, &Options{MaxBlocksSize: len(ev.Blocks) - 1}, false, ReasonBlocksTooLarge)
		check(t, ev, &Options{MaxBlocksSize: len(ev.Blocks)}, true, ReasonNone)
	})
	t.Run("block of exactly 1,000,000 bytes", func(t *testing.T) {
		ev := commitEvent(second)
		c, b := rawBlock(DefaultMaxRecordSize, 7)
		editCAR(t, (*[]byte)(&ev.Blocks), func(_ data.CID, bs map[data.CID][]byte) { bs[c] = b })
		check(t, ev, nil, true, ReasonNone)
	})
	t.Run("block of 1,000,001 bytes", func(t *testing.T) {
		ev := commitEvent(second)
		c, b := rawBlock(DefaultMaxRecordSize+1, 7)
		editCAR(t, (*[]byte)(&ev.Blocks), func(_ data.CID, bs map[data.CID][]byte) { bs[c] = b })
		check(t, ev, nil, false, ReasonRecordTooLarge)
	})
	t.Run("record over the limit", func(t *testing.T) {
		// The record an op points at, as a map with a $type and a large
		// string: over the limit even though it is a valid record.
		rec, err := data.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": string(bytes.Repeat([]byte("x"), DefaultMaxRecordSize))})
		if err != nil {
			t.Fatal(err)
		}
		ev := commitEvent(second)
		setRecord(t, ev, 0, rec)
		check(t, ev, nil, false, ReasonRecordTooLarge)
	})
	t.Run("frame too large", func(t *testing.T) {
		ev := commitEvent(second)
		body := encode(t, ev)
		wantVerdict(t, parseVerify(t, body, testHost, a.id, st, &Options{MaxFrameSize: len(body) - 1}), false, ReasonFrameTooLarge)
		big := make([]byte, DefaultMaxFrameSize+1)
		copy(big, body)
		wantVerdict(t, parseVerify(t, big, testHost, a.id, st, nil), false, ReasonFrameTooLarge)
	})
}

func TestOpLimit(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	// The largest commit allowed: 200 ops, checked in full.
	res := a.commit(t, creates(t, "a", repo.MaxCommitOps)...)
	if len(res.Ops) != DefaultMaxOps {
		t.Fatalf("%d ops", len(res.Ops))
	}
	wantVerdict(t, parseVerify(t, encode(t, commitEvent(res)), testHost, a.id, AccountState{}, nil), true, ReasonNone)

	// One op more.
	ev := commitEvent(res)
	ev.Ops = append(ev.Ops, ev.Ops[0])
	wantVerdict(t, parseVerify(t, encode(t, ev), testHost, a.id, AccountState{}, nil), false, ReasonTooManyOps)

	// A configured lower limit.
	wantVerdict(t, parseVerify(t, encode(t, commitEvent(res)), testHost, a.id, AccountState{}, &Options{MaxOps: 10}), false, ReasonTooManyOps)
}

func TestGarbageCBOR(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	res := a.commit(t, creates(t, "a", 2)...)
	good := encode(t, commitEvent(res))
	for name, body := range map[string][]byte{
		"empty":                   {},
		"break byte":              {0xff},
		"map cut short":           {0xa2, 0x64, 'r', 'e', 'p', 'o'},
		"array":                   {0x82, 0x01, 0x02},
		"text":                    []byte("\x6bhello world"),
		"truncated event":         good[:len(good)/2],
		"trailing bytes":          append(bytes.Clone(good), 0x00),
		"repo not a string":       encodeMap(t, map[string]any{"repo": int64(5)}),
		"ops not a list":          encodeMap(t, map[string]any{"ops": "many"}),
		"blocks as text":          encodeMap(t, map[string]any{"blocks": "car"}),
		"non-canonical key order": {0xa2, 0x64, 'r', 'e', 'p', 'o', 0x01, 0x63, 'r', 'e', 'v', 0x01},
		"did not a string":        encodeMap(t, map[string]any{"did": []byte("did:plc:x"), "repo": []byte("did:plc:x")}),
		"JSON":                    []byte(`{"repo":"did:plc:x"}`),
	} {
		t.Run(name, func(t *testing.T) {
			c, r, err := ParseCommit(body, nil)
			if c != nil || r != ReasonBadCBOR || err == nil {
				t.Fatalf("ParseCommit = %v, %s, %v; want bad-cbor", c != nil, r, err)
			}
			if name == "repo not a string" || name == "ops not a list" {
				return // fields #sync does not have
			}
			s, r, err := ParseSync(body, nil)
			if s != nil || r != ReasonBadCBOR || err == nil {
				t.Fatalf("ParseSync = %v, %s, %v; want bad-cbor", s != nil, r, err)
			}
		})
	}
	// A well-formed map without the required fields is a bad event, not
	// bad CBOR: its first missing field is named.
	_, r, err := ParseCommit(encodeMap(t, map[string]any{"seq": int64(1)}), nil)
	if r != ReasonBadDID || err == nil {
		t.Fatalf("empty #commit: %s, %v", r, err)
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
