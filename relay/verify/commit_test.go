package verify

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestGoodCommitChain(t *testing.T) {
	for _, kt := range []crypto.KeyType{crypto.KeyTypeK256, crypto.KeyTypeP256} {
		t.Run(string(kt), func(t *testing.T) {
			a := newAccount(t, kt)
			var st AccountState
			steps := [][]repo.RecordWrite{
				creates(t, "a", 5),
				{write(t, repo.ActionUpdate, "a0001", "edited"), write(t, repo.ActionDelete, "a0002", ""),
					write(t, repo.ActionCreate, "b0000", "new")},
				creates(t, "c", 40),
				{write(t, repo.ActionDelete, "a0000", "")},
			}
			for i, ws := range steps {
				res := a.commit(t, ws...)
				// Any host spelling of the account's PDS is accepted.
				host := []string{testHost, "wss://pds.example.com/xrpc/com.atproto.sync.subscribeRepos", "PDS.Example.com:443"}[i%3]
				v := parseVerify(t, encode(t, commitEvent(res)), host, a.id, st, nil)
				wantVerdict(t, v, true, ReasonNone)
				if v.Resync || v.NewState.Desync {
					t.Fatalf("step %d: resync on an unbroken chain", i)
				}
				if want := stateAfter(res); v.NewState.Rev != want.Rev || *v.NewState.Data != *want.Data || *v.NewState.Commit != *want.Commit {
					t.Fatalf("step %d: new state %+v", i, v.NewState)
				}
				st = v.NewState
			}
		})
	}
}

func TestParsedCommit(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	a.commit(t, creates(t, "a", 3)...)
	res := a.commit(t, write(t, repo.ActionUpdate, "a0001", "x"), write(t, repo.ActionCreate, "z", "y"))
	c, r, err := ParseCommit(encode(t, commitEvent(res)), nil)
	if r != ReasonNone || err != nil {
		t.Fatal(r, err)
	}
	if c.DID() != testDID || c.Rev() != res.Rev || c.Commit.Data != res.Commit.Data {
		t.Fatalf("parsed commit: %s %s", c.DID(), c.Rev())
	}
	if len(c.Ops()) != 2 || c.Ops()[0].Path != "app.bsky.feed.post/a0001" || c.Ops()[0].Prev == nil {
		t.Fatalf("ops %+v", c.Ops())
	}
	for _, op := range c.Ops() {
		if !bytes.Equal(c.Blocks[*op.CID], res.Blocks[*op.CID]) {
			t.Fatalf("record block of %s", op.Path)
		}
	}
}

// highS returns the other valid signature of the same message, (r, n-s),
// which atproto forbids.
func highS(sig []byte, order [32]byte) []byte {
	n := new(big.Int).SetBytes(order[:])
	s := new(big.Int).SetBytes(sig[32:])
	out := bytes.Clone(sig)
	new(big.Int).Sub(n, s).FillBytes(out[32:])
	return out
}

func TestCommitRejected(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	first := a.commit(t, creates(t, "a", 30)...)
	second := a.commit(t, write(t, repo.ActionUpdate, "a0003", "edited"), write(t, repo.ActionDelete, "a0010", ""),
		write(t, repo.ActionCreate, "b", "new"))
	base := stateAfter(first)
	other, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)

	cases := []struct {
		name   string
		edit   func(ev *atproto.SyncSubscribeRepos_Commit)
		id     Identity
		host   string
		st     *AccountState
		opts   *Options
		reason Reason
	}{
		// Signatures and keys.
		{name: "signed by another key", reason: ReasonWrongKey,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				recommit(t, (*[]byte)(&ev.Blocks), &ev.Commit, other, func(*repo.Commit) {})
			}},
		{name: "flipped signature bit", reason: ReasonWrongKey,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				recommit(t, (*[]byte)(&ev.Blocks), &ev.Commit, nil, func(c *repo.Commit) { c.Sig[5] ^= 1 })
			}},
		{name: "high-S signature", reason: ReasonBadSignature,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				recommit(t, (*[]byte)(&ev.Blocks), &ev.Commit, nil, func(c *repo.Commit) { c.Sig = highS(c.Sig, orderK256) })
			}},
		{name: "zero signature", reason: ReasonBadSignature,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				recommit(t, (*[]byte)(&ev.Blocks), &ev.Commit, nil, func(c *repo.Commit) { c.Sig = make([]byte, 64) })
			}},
		{name: "short signature", reason: ReasonBadSignature,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				recommit(t, (*[]byte)(&ev.Blocks), &ev.Commit, nil, func(c *repo.Commit) { c.Sig = c.Sig[:63] })
			}},
		{name: "DID document holds another key", reason: ReasonWrongKey, id: docIdentity(t, testDID, other.Public())},
		{name: "DID document holds no signing key", reason: ReasonNoSigningKey, id: docIdentity(t, testDID, nil)},
		{name: "no identity", reason: ReasonNoIdentity, id: Identity(nil)},
		{name: "identity without PDS", reason: ReasonNoPDS,
			id: &testIdentity{key: a.key.Public(), pdsErr: errors.New("no #atproto_pds")}},
		{name: "event from another host", reason: ReasonNotAuthoritativeHost, host: "evil.example.com"},
		{name: "event from another port", reason: ReasonNotAuthoritativeHost, host: "pds.example.com:8080"},
		{name: "takendown account", reason: ReasonInactiveAccount,
			st: &AccountState{Rev: base.Rev, Data: base.Data, Commit: base.Commit, Status: StatusTakendown}},

		// Revisions.
		{name: "rev rollback", reason: ReasonRevRollback, st: ptr(stateAfter(second)),
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { *ev = *commitEvent(first) }},
		{name: "duplicate rev", reason: ReasonDuplicateRev, st: ptr(stateAfter(second))},
		{name: "future rev", reason: ReasonFutureRev, opts: &Options{Now: func() time.Time { return past }}},

		// Inversion.
		{name: "op left out", reason: ReasonInversionMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops = ev.Ops[:2] }},
		{name: "wrong prev of an update", reason: ReasonInversionMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[0].Prev = ev.Ops[2].Cid }},
		{name: "update listed as a create", reason: ReasonInversionMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[0].Action, ev.Ops[0].Prev = repo.ActionCreate, nil }},
		{name: "op on another path", reason: ReasonInversionMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[2].Path = "app.bsky.feed.post/c" }},
		{name: "wrong prevData", reason: ReasonInversionMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.PrevData = &second.Commit.Data }},
		{name: "MST node missing from the slice", reason: ReasonInversionMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				editCAR(t, (*[]byte)(&ev.Blocks), func(_ data.CID, bs map[data.CID][]byte) { delete(bs, second.Commit.Data) })
			}},
		{name: "no prevData", reason: ReasonMissingPrevData,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.PrevData = nil }},

		// The event against the signed commit.
		{name: "event rev differs from the commit's", reason: ReasonCommitMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Rev = string(syntax.NewTIDNow(9)) }},
		{name: "event repo differs from the commit's", reason: ReasonCommitMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Repo = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" }},
		{name: "commit CID is not the CAR root", reason: ReasonCommitMismatch,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Commit = first.CID }},
		{name: "commit block missing", reason: ReasonMissingBlock,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				editCAR(t, (*[]byte)(&ev.Blocks), func(root data.CID, bs map[data.CID][]byte) { delete(bs, root) })
			}},
		{name: "record block missing", reason: ReasonMissingBlock,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				editCAR(t, (*[]byte)(&ev.Blocks), func(_ data.CID, bs map[data.CID][]byte) { delete(bs, *ev.Ops[2].Cid) })
			}},
		{name: "record is not a map", reason: ReasonBadRecord,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { setRecord(t, ev, 2, []byte{0x63, 'a', 'b', 'c'}) }},
		{name: "record without $type", reason: ReasonBadRecord,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { setRecord(t, ev, 2, []byte{0xa1, 0x61, 'a', 0x01}) }},
		{name: "commit block is not a commit", reason: ReasonBadCommit,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) {
				b := []byte{0xa1, 0x61, 'x', 0x01}
				c := data.CIDForCBOR(b)
				ev.Blocks, ev.Commit = writeCAR(t, c, map[data.CID][]byte{c: b}), c
			}},

		// Fields and ops.
		{name: "bad repo DID", reason: ReasonBadDID,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Repo = "not-a-did" }},
		{name: "bad rev", reason: ReasonBadEvent,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Rev = "yesterday" }},
		{name: "bad since", reason: ReasonBadEvent,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { s := "x"; ev.Since = &s }},
		{name: "bad time", reason: ReasonBadEvent,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Time = "noon" }},
		{name: "empty blocks", reason: ReasonBadEvent,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Blocks = nil }},
		{name: "unknown action", reason: ReasonBadOp,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[1].Action = "upsert" }},
		{name: "create without cid", reason: ReasonBadOp,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[2].Cid = nil }},
		{name: "delete with cid", reason: ReasonBadOp,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[1].Cid = ev.Ops[1].Prev }},
		{name: "invalid path", reason: ReasonBadOp,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[0].Path = "../../etc/passwd" }},
		{name: "null op", reason: ReasonBadOp,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Ops[0] = nil }},

		// CAR slice.
		{name: "truncated CAR", reason: ReasonBadCAR,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Blocks = ev.Blocks[:len(ev.Blocks)-5] }},
		{name: "block does not match its CID", reason: ReasonBadCAR,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Blocks[len(ev.Blocks)-3] ^= 0x20 }},
		{name: "CAR of garbage", reason: ReasonBadCAR,
			edit: func(ev *atproto.SyncSubscribeRepos_Commit) { ev.Blocks = []byte("not a CAR file at all") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := commitEvent(second)
			if tc.edit != nil {
				tc.edit(ev)
			}
			var id Identity = a.id
			if tc.id != nil || strings.HasPrefix(tc.name, "no identity") {
				id = tc.id
			}
			host := testHost
			if tc.host != "" {
				host = tc.host
			}
			st := base
			if tc.st != nil {
				st = *tc.st
			}
			v := parseVerify(t, encode(t, ev), host, id, st, tc.opts)
			wantVerdict(t, v, false, tc.reason)
			if v.NewState.Rev != st.Rev || v.NewState.Data != st.Data {
				t.Fatalf("a rejection changed the state: %+v", v.NewState)
			}
			if want := tc.reason == ReasonWrongKey || tc.reason == ReasonNotAuthoritativeHost ||
				tc.reason == ReasonNoSigningKey || tc.reason == ReasonNoIdentity || tc.reason == ReasonNoPDS; tc.reason.RefreshIdentity() != want {
				t.Fatalf("RefreshIdentity() = %v", !want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// setRecord replaces the record of op i (a create or update) with b, in
// the slice and in the op.
func setRecord(t *testing.T, ev *atproto.SyncSubscribeRepos_Commit, i int, b []byte) {
	t.Helper()
	c := data.CIDForCBOR(b)
	old := *ev.Ops[i].Cid
	editCAR(t, (*[]byte)(&ev.Blocks), func(_ data.CID, bs map[data.CID][]byte) {
		delete(bs, old)
		bs[c] = b
	})
	ev.Ops[i].Cid = &c
}

func TestChainBreaks(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	first := a.commit(t, creates(t, "a", 4)...)
	second := a.commit(t, creates(t, "b", 2)...)
	third := a.commit(t, write(t, repo.ActionDelete, "b0000", ""))

	// The relay missed the second commit: the third's since and prevData
	// do not continue the first. It is accepted, flagged for resync.
	v := parseVerify(t, encode(t, commitEvent(third)), testHost, a.id, stateAfter(first), nil)
	wantVerdict(t, v, true, ReasonSinceGap)
	if !v.Resync || !v.NewState.Desync || v.NewState.Rev != third.Rev {
		t.Fatalf("verdict %+v", v)
	}
	// Desync is carried until the caller clears it.
	v2 := parseVerify(t, encode(t, commitEvent(a.commit(t, creates(t, "c", 1)...))), testHost, a.id, v.NewState, nil)
	wantVerdict(t, v2, true, ReasonNone)
	if v2.Resync || !v2.NewState.Desync {
		t.Fatalf("Desync not carried: %+v", v2)
	}

	// Since continues, but the data root the relay holds differs.
	st := stateAfter(second)
	st.Data = &first.Commit.Data
	v = parseVerify(t, encode(t, commitEvent(third)), testHost, a.id, st, nil)
	wantVerdict(t, v, true, ReasonPrevDataMismatch)
	if !v.Resync {
		t.Fatal("no resync on a prevData mismatch")
	}

	// A first commit (no since) for an account the relay knows.
	ev := commitEvent(third)
	ev.Since = nil
	v = parseVerify(t, encode(t, ev), testHost, a.id, stateAfter(second), nil)
	wantVerdict(t, v, true, ReasonSinceGap)

	// An account seen for the first time: nothing to chain to.
	v = parseVerify(t, encode(t, commitEvent(third)), testHost, a.id, AccountState{}, nil)
	wantVerdict(t, v, true, ReasonNone)
	if v.Resync {
		t.Fatal("resync for a new account")
	}
}

func TestLenient(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	first := a.commit(t, creates(t, "a", 4)...)
	second := a.commit(t, write(t, repo.ActionUpdate, "a0001", "x"), write(t, repo.ActionDelete, "a0002", ""))
	lenient := &Options{Lenient: true}

	ev := commitEvent(second)
	ev.PrevData = nil
	for _, ops := range [][]*atproto.SyncSubscribeRepos_RepoOp{ev.Ops, {ev.Ops[0]}} {
		ev.Ops = ops
		v := parseVerify(t, encode(t, ev), testHost, a.id, stateAfter(first), lenient)
		wantVerdict(t, v, true, ReasonMissingPrevData)
		if v.NewState.Rev != second.Rev {
			t.Fatalf("new state %+v", v.NewState)
		}
	}
	ev = commitEvent(second)
	ev.Ops = ev.Ops[:1]
	v := parseVerify(t, encode(t, ev), testHost, a.id, stateAfter(first), lenient)
	wantVerdict(t, v, true, ReasonInversionMismatch)
	// Lenient mode lets nothing else through.
	ev.Rev = string(first.Rev)
	wantVerdict(t, parseVerify(t, encode(t, ev), testHost, a.id, stateAfter(first), lenient), false, ReasonCommitMismatch)
	other, _ := crypto.GenerateK256()
	wantVerdict(t, parseVerify(t, encode(t, commitEvent(second)), testHost, docIdentity(t, testDID, other.Public()),
		stateAfter(first), lenient), false, ReasonWrongKey)
}

func TestFirstCommitInversion(t *testing.T) {
	// A repository's first commit has no prevData: its ops must undo to
	// the empty tree.
	a := newAccount(t, crypto.KeyTypeK256)
	res := a.commit(t, creates(t, "a", 3)...)
	if res.PrevData != nil {
		t.Fatal("first commit has prevData")
	}
	wantVerdict(t, parseVerify(t, encode(t, commitEvent(res)), testHost, a.id, AccountState{}, nil), true, ReasonNone)
	ev := commitEvent(res)
	ev.Ops = ev.Ops[1:]
	wantVerdict(t, parseVerify(t, encode(t, ev), testHost, a.id, AccountState{}, nil), false, ReasonInversionMismatch)
}

func TestFutureRevWindow(t *testing.T) {
	a := newAccount(t, crypto.KeyTypeK256)
	res := a.commit(t, creates(t, "a", 1)...)
	body := encode(t, commitEvent(res))
	clock := func(d time.Duration) *Options {
		now := res.Rev.Time().Add(d)
		return &Options{Now: func() time.Time { return now }}
	}
	wantVerdict(t, parseVerify(t, body, testHost, a.id, AccountState{}, clock(-4*time.Minute)), true, ReasonNone)
	wantVerdict(t, parseVerify(t, body, testHost, a.id, AccountState{}, clock(-6*time.Minute)), false, ReasonFutureRev)
	o := clock(-6 * time.Minute)
	o.MaxFutureRev = 10 * time.Minute
	wantVerdict(t, parseVerify(t, body, testHost, a.id, AccountState{}, o), true, ReasonNone)
}

func TestVerifyCommitNotParsed(t *testing.T) {
	v := VerifyCommit(nil, testHost, nil, AccountState{}, nil)
	wantVerdict(t, v, false, ReasonBadEvent)
	v = VerifyCommit(&Commit{}, testHost, nil, AccountState{}, nil)
	wantVerdict(t, v, false, ReasonBadEvent)
}
