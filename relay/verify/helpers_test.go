package verify

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const (
	testDID  = syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	testHost = "pds.example.com"
	testPDS  = "https://pds.example.com"
)

// *identity.Identity is what a relay passes as the Identity.
var _ Identity = (*identity.Identity)(nil)

// testIdentity is an Identity with a given key and PDS.
type testIdentity struct {
	key    crypto.PublicKey
	keyErr error
	pds    string
	pdsErr error
}

func (i *testIdentity) SigningKey() (crypto.PublicKey, error) { return i.key, i.keyErr }
func (i *testIdentity) PDSEndpoint() (string, error)          { return i.pds, i.pdsErr }

// docIdentity builds a real identity from a DID document holding key (if
// not nil) as #atproto and testPDS as #atproto_pds.
func docIdentity(t testing.TB, did syntax.DID, key crypto.PublicKey) *identity.Identity {
	t.Helper()
	doc := &identity.DIDDocument{
		ID: string(did),
		Service: []identity.Service{{
			ID: "#atproto_pds", Type: "AtprotoPersonalDataServer", ServiceEndpoint: testPDS,
		}},
	}
	if key != nil {
		doc.VerificationMethod = []identity.VerificationMethod{{
			ID: string(did) + "#atproto", Type: "Multikey", Controller: string(did),
			PublicKeyMultibase: key.Multibase(),
		}}
	}
	id, err := identity.NewIdentity(doc)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// account is a repository that commits as a PDS would.
type account struct {
	repo  *repo.Repo
	key   crypto.PrivateKey
	clock *repo.RevClock
	id    *identity.Identity
}

func newAccount(t testing.TB, kt crypto.KeyType) *account {
	t.Helper()
	var key crypto.PrivateKey
	var err error
	if kt == crypto.KeyTypeP256 {
		key, err = crypto.GenerateP256()
	} else {
		key, err = crypto.GenerateK256()
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.NewRepo(testDID, repo.NewMemBlockStore())
	if err != nil {
		t.Fatal(err)
	}
	return &account{repo: r, key: key, clock: repo.NewRevClock(3), id: docIdentity(t, testDID, key.Public())}
}

func record(t testing.TB, typ, text string) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{"$type": typ, "text": text, "createdAt": "2026-03-01T12:00:00.000Z"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t testing.TB, action, rkey, text string) repo.RecordWrite {
	w := repo.RecordWrite{Action: action, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(rkey)}
	if action != repo.ActionDelete {
		w.Value = record(t, "app.bsky.feed.post", text)
	}
	return w
}

// creates returns n create writes with rkeys based on prefix.
func creates(t testing.TB, prefix string, n int) []repo.RecordWrite {
	ws := make([]repo.RecordWrite, n)
	for i := range ws {
		ws[i] = write(t, repo.ActionCreate, fmt.Sprintf("%s%04d", prefix, i), fmt.Sprintf("post %d", i))
	}
	return ws
}

func (a *account) commit(t testing.TB, writes ...repo.RecordWrite) *repo.CommitResult {
	t.Helper()
	ctx := context.Background()
	if err := a.repo.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	res, err := a.repo.Commit(ctx, a.key, a.clock)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// stateAfter is the AccountState a relay keeps after accepting res.
func stateAfter(res *repo.CommitResult) AccountState {
	d, c := res.Commit.Data, res.CID
	return AccountState{Rev: res.Rev, Data: &d, Commit: &c}
}

// commitEvent is the #commit event of res, as a PDS emits it. Each call
// returns a fresh value that the caller may tamper with.
func commitEvent(res *repo.CommitResult) *atproto.SyncSubscribeRepos_Commit {
	ev := &atproto.SyncSubscribeRepos_Commit{
		Seq:    1,
		Repo:   string(res.Commit.DID),
		Commit: res.CID,
		Rev:    string(res.Rev),
		Blocks: bytes.Clone(res.CAR),
		Ops:    make([]*atproto.SyncSubscribeRepos_RepoOp, len(res.Ops)),
		Blobs:  []data.CID{},
		Time:   syntax.DatetimeFromTime(time.Now()).String(),
	}
	if res.PrevData != nil {
		p := *res.PrevData
		ev.PrevData = &p
	}
	if res.Since != "" {
		s := string(res.Since)
		ev.Since = &s
	}
	for i, op := range res.Ops {
		ev.Ops[i] = &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev}
	}
	return ev
}

// syncEvent is the #sync event for the account's current commit.
func syncEvent(t testing.TB, res *repo.CommitResult) *atproto.SyncSubscribeRepos_Sync {
	t.Helper()
	cb, ok := res.Blocks[res.CID]
	if !ok {
		t.Fatal("commit block missing from the result")
	}
	return &atproto.SyncSubscribeRepos_Sync{
		Seq:    2,
		Did:    string(res.Commit.DID),
		Rev:    string(res.Rev),
		Blocks: writeCAR(t, res.CID, map[data.CID][]byte{res.CID: cb}),
		Time:   syntax.DatetimeFromTime(time.Now()).String(),
	}
}

func encode(t testing.TB, v lexutil.Marshaler) []byte {
	t.Helper()
	b, err := lexutil.MarshalCBOR(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readCARAll(t testing.TB, b []byte) (data.CID, map[data.CID][]byte) {
	t.Helper()
	roots, blocks, err := car.ReadAll(bytes.NewReader(b), car.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return roots[0], blocks
}

func writeCAR(t testing.TB, root data.CID, blocks map[data.CID][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := car.WriteAll(&buf, []data.CID{root}, blocks); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// recommit changes the signed commit inside an event's CAR slice: mutate
// edits it, then it is re-signed with key unless key is nil (mutate may
// then set Sig itself). The event's commit CID and CAR root follow.
func recommit(t testing.TB, blocks *[]byte, commitCID *data.CID, key crypto.PrivateKey, mutate func(*repo.Commit)) {
	t.Helper()
	root, bs := readCARAll(t, *blocks)
	c, err := repo.ParseCommit(bs[root])
	if err != nil {
		t.Fatal(err)
	}
	mutate(c)
	if key != nil {
		if err := c.Sign(key); err != nil {
			t.Fatal(err)
		}
	}
	cb, err := c.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	delete(bs, root)
	nc := data.CIDForCBOR(cb)
	bs[nc] = cb
	*blocks = writeCAR(t, nc, bs)
	*commitCID = nc
}

// editCAR rewrites an event's CAR slice with edit applied to its blocks
// (the root, the commit, stays first).
func editCAR(t testing.TB, blocks *[]byte, edit func(root data.CID, bs map[data.CID][]byte)) {
	t.Helper()
	root, bs := readCARAll(t, *blocks)
	edit(root, bs)
	*blocks = writeCAR(t, root, bs)
}

// parseVerify runs ParseCommit then, when it passes, VerifyCommit.
func parseVerify(t testing.TB, body []byte, host string, id Identity, st AccountState, o *Options) Verdict {
	t.Helper()
	c, r, err := ParseCommit(body, o)
	if r != ReasonNone {
		if c != nil || err == nil {
			t.Fatalf("ParseCommit: reason %s with commit %v and error %v", r, c != nil, err)
		}
		return Verdict{Reason: r, Err: err, NewState: st}
	}
	if err != nil || c == nil {
		t.Fatalf("ParseCommit: no reason, but error %v", err)
	}
	return VerifyCommit(c, host, id, st, o)
}

// wantVerdict checks a verdict's outcome and reason.
func wantVerdict(t testing.TB, v Verdict, ok bool, r Reason) {
	t.Helper()
	if v.OK != ok || v.Reason != r {
		t.Fatalf("verdict OK=%v reason %s (%v); want OK=%v reason %s", v.OK, v.Reason, v.Err, ok, r)
	}
	if (v.Reason == ReasonNone) != (v.Err == nil) {
		t.Fatalf("reason %s with error %v", v.Reason, v.Err)
	}
	if v.Err != nil {
		t.Logf("%s: %v", v.Reason, v.Err)
	}
}
