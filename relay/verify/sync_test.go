package verify

import (
	"bytes"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func parseVerifySync(t testing.TB, body []byte, id Identity, st AccountState, o *Options) Verdict {
	t.Helper()
	s, r, err := ParseSync(body, o)
	if r != ReasonNone {
		if s != nil || err == nil {
			t.Fatalf("ParseSync: reason %s with sync %v and error %v", r, s != nil, err)
		}
		return Verdict{Reason: r, Err: err, NewState: st}
	}
	if err != nil {
		t.Fatalf("ParseSync: no reason, but error %v", err)
	}
	return VerifySync(s, testHost, id, st, o)
}

func TestSyncAccepted(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeP256)
	first := a.commit(t, creates(t, "a", 3)...)
	second := a.commit(t, creates(t, "b", 3)...)

	// A #sync re-anchors a desynchronized account at its commit.
	st := stateAfter(first)
	st.Desync = true
	v := parseVerifySync(t, encode(t, syncEvent(t, second)), a.id, st, nil)
	wantVerdict(t, v, true, ReasonNone)
	if v.Resync || v.NewState.Desync || v.NewState.Rev != second.Rev ||
		*v.NewState.Data != second.Commit.Data || *v.NewState.Commit != second.CID {
		t.Fatalf("verdict %+v", v)
	}
	// The next #commit chains from it.
	third := a.commit(t, write(t, repo.ActionDelete, "b0001", ""))
	wantVerdict(t, parseVerify(t, encode(t, commitEvent(third)), testHost, a.id, v.NewState, nil), true, ReasonNone)

	// For an account the relay has never seen.
	wantVerdict(t, parseVerifySync(t, encode(t, syncEvent(t, third)), a.id, AccountState{}, nil), true, ReasonNone)

	// Extra blocks are ignored.
	ev := syncEvent(t, third)
	c, b := rawBlock(100, 1)
	editCAR(t, (*[]byte)(&ev.Blocks), func(_ data.CID, bs map[data.CID][]byte) { bs[c] = b })
	s, r, err := ParseSync(encode(t, ev), nil)
	if r != ReasonNone || s.DID() != testDID || s.Rev() != third.Rev || s.CID != third.CID {
		t.Fatalf("ParseSync = %v %s %v", s, r, err)
	}
}

func TestSyncRejected(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	first := a.commit(t, creates(t, "a", 3)...)
	second := a.commit(t, creates(t, "b", 3)...)
	other, _ := crypto.GenerateK256()
	past := time.Now().Add(-time.Hour)
	cases := []struct {
		name   string
		edit   func(ev *atproto.SyncSubscribeRepos_Sync)
		id     Identity
		st     AccountState
		opts   *Options
		reason Reason
	}{
		{name: "signed by another key", reason: ReasonWrongKey, edit: func(ev *atproto.SyncSubscribeRepos_Sync) {
			var c data.CID
			recommit(t, (*[]byte)(&ev.Blocks), &c, other, func(*repo.Commit) {})
		}},
		{name: "high-S signature", reason: ReasonBadSignature, edit: func(ev *atproto.SyncSubscribeRepos_Sync) {
			var c data.CID
			recommit(t, (*[]byte)(&ev.Blocks), &c, nil, func(c *repo.Commit) { c.Sig = highS(c.Sig, orderK256) })
		}},
		{name: "DID document holds another key", reason: ReasonWrongKey, id: docIdentity(t, testDID, other.Public())},
		{name: "DID document holds no key", reason: ReasonNoSigningKey, id: docIdentity(t, testDID, nil)},
		{name: "rev rollback", reason: ReasonRevRollback, st: stateAfter(second),
			edit: func(ev *atproto.SyncSubscribeRepos_Sync) { *ev = *syncEvent(t, first) }},
		{name: "duplicate rev", reason: ReasonDuplicateRev, st: stateAfter(second)},
		{name: "future rev", reason: ReasonFutureRev, opts: &Options{Now: func() time.Time { return past }}},
		{name: "deactivated account", reason: ReasonInactiveAccount, st: AccountState{Status: StatusDeactivated}},
		{name: "rev differs from the commit's", reason: ReasonCommitMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Sync) { ev.Rev = string(first.Rev) }},
		{name: "did differs from the commit's", reason: ReasonCommitMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Sync) { ev.Did = "did:web:example.com" }},
		{name: "bad did", reason: ReasonBadDID, edit: func(ev *atproto.SyncSubscribeRepos_Sync) { ev.Did = "alice" }},
		{name: "bad rev", reason: ReasonBadEvent, edit: func(ev *atproto.SyncSubscribeRepos_Sync) { ev.Rev = "" }},
		{name: "bad time", reason: ReasonBadEvent, edit: func(ev *atproto.SyncSubscribeRepos_Sync) { ev.Time = "" }},
		{name: "empty blocks", reason: ReasonBadEvent, edit: func(ev *atproto.SyncSubscribeRepos_Sync) { ev.Blocks = nil }},
		{name: "blocks over 10,000 bytes", reason: ReasonBlocksTooLarge, edit: func(ev *atproto.SyncSubscribeRepos_Sync) {
			c, b := rawBlock(DefaultMaxSyncBlocksSize, 3)
			editCAR(t, (*[]byte)(&ev.Blocks), func(_ data.CID, bs map[data.CID][]byte) { bs[c] = b })
		}},
		{name: "commit block missing", reason: ReasonMissingBlock, edit: func(ev *atproto.SyncSubscribeRepos_Sync) {
			editCAR(t, (*[]byte)(&ev.Blocks), func(root data.CID, bs map[data.CID][]byte) { delete(bs, root) })
		}},
		{name: "not a commit", reason: ReasonBadCommit, edit: func(ev *atproto.SyncSubscribeRepos_Sync) {
			b := []byte{0xa0}
			ev.Blocks = writeCAR(t, data.CIDForCBOR(b), map[data.CID][]byte{data.CIDForCBOR(b): b})
		}},
		{name: "damaged block", reason: ReasonBadCAR,
			edit: func(ev *atproto.SyncSubscribeRepos_Sync) { ev.Blocks[len(ev.Blocks)-1] ^= 1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := syncEvent(t, second)
			if tc.edit != nil {
				tc.edit(ev)
			}
			var id Identity = a.id
			if tc.id != nil {
				id = tc.id
			}
			v := parseVerifySync(t, encode(t, ev), id, tc.st, tc.opts)
			wantVerdict(t, v, false, tc.reason)
		})
	}
	if v := VerifySync(nil, testHost, a.id, AccountState{}, nil); v.OK || v.Reason != ReasonBadEvent {
		t.Fatalf("VerifySync(nil) = %+v", v)
	}
	// From another host.
	s, _, _ := ParseSync(encode(t, syncEvent(t, second)), nil)
	if v := VerifySync(s, "other.example.com", a.id, AccountState{}, nil); v.Reason != ReasonNotAuthoritativeHost {
		t.Fatalf("VerifySync from another host = %+v", v)
	}
}

func TestUnsignedCommitMatchesRepo(t *testing.T) {
	// The signed bytes cut from the block are exactly the canonical
	// unsigned commit that the repo package signs.
	a := newAccount(t, crypto.KeyTypeK256)
	res := a.commit(t, creates(t, "a", 1)...)
	prev := res.CID
	for _, c := range []*repo.Commit{res.Commit, {DID: "did:web:example.com", Version: 3, Data: res.Commit.Data,
		Rev: syntax.NewTIDNow(0), Prev: &prev}} {
		if err := c.Sign(a.key); err != nil {
			t.Fatal(err)
		}
		block, err := c.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.UnsignedBytes()
		if err != nil {
			t.Fatal(err)
		}
		got, err := unsignedCommit(block, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("unsignedCommit = %x, %v\nwant %x", got, err, want)
		}
	}
	for _, bad := range [][]byte{nil, {0x80}, {0xa0}, {0xb8, 0x20}, {0xa1, 0x61, 'x', 0x01}, {0xa1, 0x63, 's', 'i', 'g', 0x01}} {
		if _, err := unsignedCommit(bad, nil); err == nil {
			t.Errorf("unsignedCommit(%x) succeeded", bad)
		}
	}
}
