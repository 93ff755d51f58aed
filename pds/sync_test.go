package pds

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/store"
)

func TestSyncGetRepo(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	did, key := seedAccount(t, p, "alice.test")
	// Enough records (with long texts) that the export is larger than the
	// buffer produced before the response starts.
	long := strings.Repeat("lorem ipsum ", 40)
	var last *repo.CommitResult
	for c := range 3 {
		var writes []repo.RecordWrite
		for i := range 100 {
			writes = append(writes, createPost(t, fmt.Sprintf("3k%02d%03d", c, i), fmt.Sprintf("%s %d %d", long, c, i)))
		}
		last = commit(t, p, did, writes...)
	}

	r := p.get("com.atproto.sync.getRepo", params("did", string(did)), nil).mustOK(t, "getRepo")
	if ct := r.header.Get("Content-Type"); ct != carEncoding {
		t.Errorf("Content-Type %q, want %q", ct, carEncoding)
	}
	if len(r.body) <= carStreamBuffer {
		t.Fatalf("export of %d bytes does not exercise streaming", len(r.body))
	}
	res, err := repo.ImportCAR(t.Context(), bytes.NewReader(r.body), repo.NewMemBlockStore(),
		repo.ImportOptions{DID: did, PublicKey: key.Public()})
	if err != nil {
		t.Fatalf("importing the export: %v", err)
	}
	if res.CommitCID != last.CID || res.Records != 300 || res.Dropped != 0 {
		t.Errorf("export: commit %s records %d dropped %d; want %s, 300, 0", res.CommitCID, res.Records, res.Dropped, last.CID)
	}

	// The deprecated getCheckout is the same export.
	co := p.get("com.atproto.sync.getCheckout", params("did", string(did)), nil).mustOK(t, "getCheckout")
	if !bytes.Equal(co.body, r.body) {
		t.Error("getCheckout differs from getRepo")
	}
}

func TestSyncGetRepoSince(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	did, key := seedAccount(t, p, "alice.test")
	// Each commit is stored before the next is made, so that no batch
	// leaves out the tree of a or b (see actorstore.Store.CommitAtRev).
	stored := func(res *repo.CommitResult) *repo.CommitResult {
		p.srv.mustStore(t, did)
		return res
	}
	a := stored(commit(t, p, did, createPost(t, "3kaaaaaaaaaa2", "first"), createPost(t, "3kkeepkeepke2", "kept")))
	b := stored(commit(t, p, did, createPost(t, "3kbbbbbbbbbb2", "second"), createPost(t, "3kgonegonego2", "deleted later")))
	c := stored(commit(t, p, did, updatePost(t, "3kaaaaaaaaaa2", "first, edited"), deletePost("3kgonegonego2")))
	gone := *b.Ops[1].CID

	diff := func(since syntax.TID) ([]data.CID, map[data.CID][]byte, []byte) {
		t.Helper()
		r := p.get("com.atproto.sync.getRepo", params("did", string(did), "since", string(since)), nil).mustOK(t, "getRepo since")
		roots, blocks, err := car.ReadAll(bytes.NewReader(r.body), car.DefaultLimits())
		if err != nil {
			t.Fatalf("reading the diff: %v", err)
		}
		return roots, blocks, r.body
	}

	// Since a: what a holder of a lacks to hold c, and no more.
	roots, blocks, _ := diff(a.Rev)
	if len(roots) != 1 || roots[0] != c.CID {
		t.Fatalf("roots %v, want [%s]", roots, c.CID)
	}
	_, want, err := repo.Diff(t.Context(), p.srv.mustStore(t, did), a.CID, c.CID)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != len(want) {
		t.Errorf("diff since a: %d blocks, want %d", len(blocks), len(want))
	}
	for cid := range want {
		if _, ok := blocks[cid]; !ok {
			t.Errorf("diff since a lacks block %s", cid)
		}
	}
	for _, unwanted := range []data.CID{a.CID, b.CID, gone, *a.Ops[0].CID, *a.Ops[1].CID} {
		if _, ok := blocks[unwanted]; ok {
			t.Errorf("diff since a holds %s, which a holder of a has or the repository no longer has", unwanted)
		}
	}
	// Applying the diff to the repository at a gives the repository at c.
	st := repo.NewMemBlockStore()
	var full bytes.Buffer
	if err := repo.ExportCAR(t.Context(), p.srv.mustStore(t, did), a.CID, &full); err != nil {
		t.Fatal(err)
	}
	_, atA, err := car.ReadAll(&full, car.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for cid, blk := range atA {
		st.PutBlock(t.Context(), cid, blk)
	}
	for cid, blk := range blocks {
		st.PutBlock(t.Context(), cid, blk)
	}
	if err := repo.ValidateTree(t.Context(), st, mustCommit(t, blocks[c.CID]).Data); err != nil {
		t.Errorf("the repository at a plus the diff is not the repository at c: %v", err)
	}

	// Since the head: just the root.
	roots, blocks, _ = diff(c.Rev)
	if len(roots) != 1 || roots[0] != c.CID || len(blocks) != 0 {
		t.Errorf("since head: roots %v, %d blocks; want [%s] and none", roots, len(blocks), c.CID)
	}

	// A rev that is none of the account's commits: the whole repository.
	_, _, body := diff(syntax.TID("2222222222222"))
	res, err := repo.ImportCAR(t.Context(), bytes.NewReader(body), repo.NewMemBlockStore(), repo.ImportOptions{DID: did, PublicKey: key.Public()})
	if err != nil || res.CommitCID != c.CID || res.Records != 3 {
		t.Errorf("since an unknown rev: %v; want the full repository at c", err)
	}

	p.get("com.atproto.sync.getRepo", params("did", string(did), "since", "not-a-tid"), nil).
		wantError(t, "bad since", http.StatusBadRequest, "InvalidRequest")

	// A commit whose tree the store did not keep, as for a commit that a
	// later one of its batch replaced: the whole repository too.
	path := filepath.Join(actorstore.Dir(p.srv.actors.dir, did), actorstore.FileName)
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(t.Context(), `DELETE FROM blocks WHERE cid = ?`, b.Commit.Data.Bytes()); err != nil {
		t.Fatal(err)
	}
	_, _, body = diff(b.Rev)
	res, err = repo.ImportCAR(t.Context(), bytes.NewReader(body), repo.NewMemBlockStore(), repo.ImportOptions{DID: did, PublicKey: key.Public()})
	if err != nil || res.CommitCID != c.CID || res.Records != 3 {
		t.Errorf("since a commit without its tree: %v; want the full repository at c", err)
	}
}

// mustStore returns the account store of did; the test's server keeps it
// open until it stops.
func (s *Server) mustStore(t *testing.T, did syntax.DID) *actorstore.Store {
	t.Helper()
	st, release, err := s.actors.get(t.Context(), did)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return st
}

func mustCommit(t *testing.T, b []byte) *repo.Commit {
	t.Helper()
	c, err := repo.ParseCommit(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSyncGetRecord(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	did, key := seedAccount(t, p, "alice.test")
	res := commit(t, p, did, createPost(t, "3kaaaaaaaaaa2", "hello"), createPost(t, "3kbbbbbbbbbb2", "world"))

	r := p.get("com.atproto.sync.getRecord", params("did", string(did), "collection", string(postCollection), "rkey", "3kaaaaaaaaaa2"), nil).mustOK(t, "getRecord")
	if ct := r.header.Get("Content-Type"); ct != carEncoding {
		t.Errorf("Content-Type %q", ct)
	}
	cid, rec, err := repo.VerifyRecordProof(r.body, did, key.Public(), postCollection, "3kaaaaaaaaaa2")
	if err != nil {
		t.Fatalf("proof: %v", err)
	}
	if cid == nil || *cid != *res.Ops[0].CID || !bytes.Equal(rec, postValue(t, "hello")) {
		t.Errorf("proof gives %v, want the record %s", cid, res.Ops[0].CID)
	}

	// An absent record gets a proof of absence.
	r = p.get("com.atproto.sync.getRecord", params("did", string(did), "collection", string(postCollection), "rkey", "3kzzzzzzzzzz2"), nil).mustOK(t, "getRecord absent")
	cid, _, err = repo.VerifyRecordProof(r.body, did, key.Public(), postCollection, "3kzzzzzzzzzz2")
	if err != nil || cid != nil {
		t.Errorf("absence proof: cid %v, err %v; want nil, nil", cid, err)
	}

	p.get("com.atproto.sync.getRecord", params("did", string(did), "collection", "not an nsid", "rkey", "x"), nil).
		wantError(t, "bad collection", http.StatusBadRequest, "InvalidRequest")
}

func TestSyncGetBlocks(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	did, _ := seedAccount(t, p, "alice.test")
	res := commit(t, p, did, createPost(t, "3kaaaaaaaaaa2", "hello"))
	recCID := *res.Ops[0].CID

	q := params("did", string(did), "cids", recCID.String(), "cids", res.CID.String(), "cids", recCID.String())
	r := p.get("com.atproto.sync.getBlocks", q, nil).mustOK(t, "getBlocks")
	roots, blocks, err := car.ReadAll(bytes.NewReader(r.body), car.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 0 || len(blocks) != 2 || !bytes.Equal(blocks[recCID], res.Blocks[recCID]) ||
		!bytes.Equal(blocks[res.CID], res.Blocks[res.CID]) {
		t.Errorf("getBlocks: roots %v, %d blocks; want no roots and the 2 blocks", roots, len(blocks))
	}

	absent := data.CIDForCBOR([]byte{0xa0})
	r = p.get("com.atproto.sync.getBlocks", params("did", string(did), "cids", recCID.String(), "cids", absent.String()), nil)
	r.wantError(t, "missing block", http.StatusBadRequest, "InvalidRequest")
	if !strings.Contains(string(r.body), absent.String()) {
		t.Errorf("the error does not name the missing CID: %s", r.body)
	}
	p.get("com.atproto.sync.getBlocks", params("did", string(did), "cids", "bafynotacid"), nil).
		wantError(t, "bad cid", http.StatusBadRequest, "InvalidRequest")
}

func TestSyncLatestCommitAndHead(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	did, _ := seedAccount(t, p, "alice.test")
	res := commit(t, p, did, createPost(t, "3kaaaaaaaaaa2", "hello"))

	var lc struct{ Cid, Rev string }
	p.getJSON("com.atproto.sync.getLatestCommit", params("did", string(did)), nil, &lc).mustOK(t, "getLatestCommit")
	if lc.Cid != res.CID.String() || lc.Rev != string(res.Rev) {
		t.Errorf("getLatestCommit = %+v, want %s %s", lc, res.CID, res.Rev)
	}
	var head struct{ Root string }
	p.getJSON("com.atproto.sync.getHead", params("did", string(did)), nil, &head).mustOK(t, "getHead")
	if head.Root != res.CID.String() {
		t.Errorf("getHead = %s, want %s", head.Root, res.CID)
	}
}

// TestSyncAvailability checks the reference PDS's refusals of sync reads:
// unknown, deactivated and taken-down accounts, and that the account itself
// and the admin still read a repository others may not.
func TestSyncAvailability(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := t.Context()
	active, _ := seedAccount(t, p, "active.test")
	deact, _ := seedAccount(t, p, "deact.test")
	down, _ := seedAccount(t, p, "down.test")
	for _, did := range []syntax.DID{active, deact, down} {
		commit(t, p, did, createPost(t, "3kaaaaaaaaaa2", "hello"))
	}
	if err := p.srv.accounts.SetStatus(ctx, deact, store.StatusDeactivated, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.accounts.SetTakedown(ctx, down, "ref-1"); err != nil {
		t.Fatal(err)
	}
	unknown := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")

	methods := []struct {
		nsid  string
		extra []string
	}{
		{"com.atproto.sync.getRepo", nil},
		{"com.atproto.sync.getCheckout", nil},
		{"com.atproto.sync.getLatestCommit", nil},
		{"com.atproto.sync.getHead", nil},
		{"com.atproto.sync.getRecord", []string{"collection", string(postCollection), "rkey", "3kaaaaaaaaaa2"}},
		{"com.atproto.sync.getBlocks", []string{"cids", data.CIDForCBOR([]byte{0xa0}).String()}},
		{"com.atproto.sync.getBlob", []string{"cid", data.CIDForRaw([]byte("x")).String()}},
		{"com.atproto.sync.listBlobs", nil},
	}
	q := func(did syntax.DID, extra []string) map[string][]string {
		return params(append([]string{"did", string(did)}, extra...)...)
	}
	deactTok := session(t, p, deact)
	otherTok := session(t, p, active)
	for _, m := range methods {
		t.Run(m.nsid, func(t *testing.T) {
			p.get(m.nsid, q(unknown, m.extra), nil).wantError(t, "unknown", http.StatusBadRequest, "RepoNotFound")
			p.get(m.nsid, q(deact, m.extra), nil).wantError(t, "deactivated", http.StatusBadRequest, "RepoDeactivated")
			p.get(m.nsid, q(down, m.extra), nil).wantError(t, "taken down", http.StatusBadRequest, "RepoTakendown")
			// Someone else's token changes nothing.
			p.get(m.nsid, q(deact, m.extra), bearer(otherTok)).wantError(t, "other account", http.StatusBadRequest, "RepoDeactivated")
			if r := p.get(m.nsid, q(active, m.extra), nil); r.status >= 500 || strings.HasPrefix(r.err, "Repo") {
				t.Errorf("active account: %d %s", r.status, r.err)
			}
		})
	}
	// The account itself and the admin read past the status.
	for _, h := range []http.Header{bearer(deactTok), basicAuth("admin", "admin-secret")} {
		p.get("com.atproto.sync.getLatestCommit", params("did", string(deact)), h).mustOK(t, "privileged read of a deactivated repo")
	}
	p.get("com.atproto.sync.getRepo", params("did", string(down)), basicAuth("admin", "admin-secret")).mustOK(t, "admin read of a taken-down repo")
	// Bad credentials fail rather than being ignored.
	p.get("com.atproto.sync.getLatestCommit", params("did", string(deact)), basicAuth("admin", "wrong")).
		wantError(t, "wrong admin password", http.StatusUnauthorized, "AuthenticationRequired")
	if r := p.get("com.atproto.sync.getLatestCommit", params("did", string(deact)), bearer("not.a.jwt")); r.status == http.StatusOK || r.status >= 500 {
		t.Errorf("forged token: status %d", r.status)
	}
	// A malformed DID is a bad request.
	p.get("com.atproto.sync.getRepo", params("did", "alice"), nil).wantError(t, "bad did", http.StatusBadRequest, "InvalidRequest")
}

func session(t testing.TB, p *testPDS, did syntax.DID) string {
	t.Helper()
	tp, err := p.srv.sessions.CreateSession(context.Background(), did, auth.ScopeAccess)
	if err != nil {
		t.Fatal(err)
	}
	return tp.Access
}

func TestSyncGetRepoStatus(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := t.Context()
	did, _ := seedAccount(t, p, "alice.test")
	res := commit(t, p, did, createPost(t, "3kaaaaaaaaaa2", "hello"))

	type status struct {
		Did    string  `json:"did"`
		Active bool    `json:"active"`
		Status *string `json:"status"`
		Rev    *string `json:"rev"`
	}
	var st status
	p.getJSON("com.atproto.sync.getRepoStatus", params("did", string(did)), nil, &st).mustOK(t, "getRepoStatus")
	if st.Did != string(did) || !st.Active || st.Status != nil || st.Rev == nil || *st.Rev != string(res.Rev) {
		t.Errorf("active: %+v", st)
	}
	for _, want := range []store.Status{store.StatusDeactivated, store.StatusTakendown} {
		var err error
		if want == store.StatusTakendown {
			err = p.srv.accounts.SetTakedown(ctx, did, "ref")
		} else {
			err = p.srv.accounts.SetStatus(ctx, did, want, time.Now(), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		st = status{}
		p.getJSON("com.atproto.sync.getRepoStatus", params("did", string(did)), nil, &st).mustOK(t, "getRepoStatus")
		if st.Active || st.Status == nil || *st.Status != string(want) || st.Rev != nil {
			t.Errorf("%s: %+v", want, st)
		}
	}
	p.get("com.atproto.sync.getRepoStatus", params("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"), nil).
		wantError(t, "unknown", http.StatusBadRequest, "RepoNotFound")
}

func TestSyncListRepos(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := t.Context()
	var dids []syntax.DID
	for _, h := range []string{"a.test", "b.test", "c.test"} {
		did, _ := seedAccount(t, p, h)
		dids = append(dids, did)
	}
	if err := p.srv.accounts.SetStatus(ctx, dids[1], store.StatusDeactivated, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	type page struct {
		Cursor *string `json:"cursor"`
		Repos  []struct {
			Did, Head, Rev string
			Active         *bool
			Status         *string
		} `json:"repos"`
	}
	var got []syntax.DID
	var first page
	p.getJSON("com.atproto.sync.listRepos", params("limit", "2"), nil, &first).mustOK(t, "listRepos")
	if len(first.Repos) != 2 || first.Cursor == nil {
		t.Fatalf("first page: %d repos, cursor %v", len(first.Repos), first.Cursor)
	}
	var second page
	p.getJSON("com.atproto.sync.listRepos", params("limit", "2", "cursor", *first.Cursor), nil, &second).mustOK(t, "listRepos page 2")
	if len(second.Repos) != 1 || second.Cursor != nil {
		t.Fatalf("second page: %d repos, cursor %v", len(second.Repos), second.Cursor)
	}
	for _, r := range append(first.Repos, second.Repos...) {
		got = append(got, syntax.DID(r.Did))
		head, rev, _, err := p.srv.repoHead(ctx, syntax.DID(r.Did))
		if err != nil {
			t.Fatal(err)
		}
		if r.Head != head.String() || r.Rev != rev {
			t.Errorf("%s: head %s rev %s, want %s %s", r.Did, r.Head, r.Rev, head, rev)
		}
		wantActive := syntax.DID(r.Did) != dids[1]
		if r.Active == nil || *r.Active != wantActive {
			t.Errorf("%s: active %v, want %v", r.Did, r.Active, wantActive)
		}
		if wantActive != (r.Status == nil) || (!wantActive && *r.Status != "deactivated") {
			t.Errorf("%s: status %v", r.Did, r.Status)
		}
	}
	for i := range dids {
		if got[i] != dids[i] {
			t.Fatalf("listRepos order %v, want %v", got, dids)
		}
	}
	p.get("com.atproto.sync.listRepos", params("cursor", "junk"), nil).wantError(t, "bad cursor", http.StatusBadRequest, "InvalidRequest")
	p.get("com.atproto.sync.listRepos", params("limit", "0"), nil).wantError(t, "limit 0", http.StatusBadRequest, "InvalidRequest")
}

// putBlob stores b as a blob of did (bytes and metadata) the way an upload
// does, and returns its reference.
func putBlob(t *testing.T, p *testPDS, did syntax.DID, b []byte, mimeType string) data.Blob {
	t.Helper()
	ctx := t.Context()
	tb, err := p.srv.blobs.PutTemp(ctx, did, bytes.NewReader(b), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	st, release, err := p.srv.actors.get(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := st.PutTempBlob(ctx, actorstore.BlobMeta{CID: tb.CID, MimeType: mimeType, Size: tb.Size,
		TempKey: tb.Key, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return data.Blob{Ref: tb.CID, MimeType: mimeType, Size: tb.Size}
}

// referenceBlob commits a profile whose avatar is blob, making the blob
// permanent first as the write path does.
func referenceBlob(t *testing.T, p *testPDS, did syntax.DID, rkey string, blob data.Blob) *repo.CommitResult {
	t.Helper()
	ctx := t.Context()
	st, release, err := p.srv.actors.get(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := st.Blob(ctx, blob.Ref)
	release()
	if err != nil {
		t.Fatal(err)
	}
	if !meta.Permanent() {
		if err := p.srv.blobs.MakePermanent(ctx, did, meta.TempKey, blob.Ref); err != nil {
			t.Fatal(err)
		}
	}
	v, err := data.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": "with an image",
		"createdAt": "2024-01-02T03:04:05.000Z",
		"embed": map[string]any{"$type": "app.bsky.embed.images", "images": []any{
			map[string]any{"alt": "", "image": blob}}}})
	if err != nil {
		t.Fatal(err)
	}
	return commit(t, p, did, repo.RecordWrite{Action: repo.ActionCreate, Collection: postCollection, RKey: syntax.RecordKey(rkey), Value: v})
}

func TestSyncGetBlob(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	did, _ := seedAccount(t, p, "alice.test")
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 5000)...)
	blob := putBlob(t, p, did, png, "image/png")

	// Not served while no record references it.
	p.get("com.atproto.sync.getBlob", params("did", string(did), "cid", blob.Ref.String()), nil).
		wantError(t, "temporary blob", http.StatusBadRequest, "InvalidRequest")

	referenceBlob(t, p, did, "3kaaaaaaaaaa2", blob)
	r := p.get("com.atproto.sync.getBlob", params("did", string(did), "cid", blob.Ref.String()), nil).mustOK(t, "getBlob")
	if !bytes.Equal(r.body, png) {
		t.Errorf("getBlob returned %d bytes, want the %d uploaded", len(r.body), len(png))
	}
	for k, want := range map[string]string{
		"Content-Type":            "image/png",
		"Content-Length":          fmt.Sprint(len(png)),
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; sandbox",
		"Content-Disposition":     `attachment; filename="` + blob.Ref.String() + `"`,
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}

	p.get("com.atproto.sync.getBlob", params("did", string(did), "cid", data.CIDForRaw([]byte("nope")).String()), nil).
		wantError(t, "unknown blob", http.StatusBadRequest, "InvalidRequest")
	p.get("com.atproto.sync.getBlob", params("did", string(did), "cid", "nope"), nil).
		wantError(t, "bad cid", http.StatusBadRequest, "InvalidRequest")
}

func TestBlobContentType(t *testing.T) {
	for in, want := range map[string]string{
		"image/png":                 "image/png",
		"text/plain; charset=utf-8": "text/plain; charset=utf-8",
		"":                          "application/octet-stream",
		"not a type":                "application/octet-stream",
		"image/png\r\nX-Evil: 1":    "application/octet-stream",
	} {
		if got := blobContentType(in); got != want {
			t.Errorf("blobContentType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSyncListBlobs(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	did, _ := seedAccount(t, p, "alice.test")
	var blobs []data.Blob
	var revs []syntax.TID
	for i := range 3 {
		b := putBlob(t, p, did, []byte(fmt.Sprintf("blob number %d", i)), "application/octet-stream")
		blobs = append(blobs, b)
		revs = append(revs, referenceBlob(t, p, did, fmt.Sprintf("3kaaaaaaaaa%d2", i), b).Rev)
	}
	// An upload no record references is not listed.
	putBlob(t, p, did, []byte("unreferenced"), "text/plain")

	type page struct {
		Cursor *string  `json:"cursor"`
		Cids   []string `json:"cids"`
	}
	var all []string
	cursor := ""
	for range 5 {
		q := params("did", string(did), "limit", "2")
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var pg page
		p.getJSON("com.atproto.sync.listBlobs", q, nil, &pg).mustOK(t, "listBlobs")
		if len(pg.Cids) == 0 {
			if pg.Cursor != nil {
				t.Errorf("empty page with cursor %q", *pg.Cursor)
			}
			break
		}
		if pg.Cursor == nil || *pg.Cursor != pg.Cids[len(pg.Cids)-1] {
			t.Errorf("page cursor %v, want the last CID", pg.Cursor)
			break
		}
		all = append(all, pg.Cids...)
		cursor = *pg.Cursor
	}
	if len(all) != 3 {
		t.Fatalf("listed %v, want the 3 referenced blobs", all)
	}
	want := map[string]bool{}
	for _, b := range blobs {
		want[b.Ref.String()] = true
	}
	for _, c := range all {
		if !want[c] {
			t.Errorf("listed %s, which no record references", c)
		}
		delete(want, c)
	}

	// since: only the blobs of records written after it.
	var pg page
	p.getJSON("com.atproto.sync.listBlobs", params("did", string(did), "since", string(revs[1])), nil, &pg).mustOK(t, "listBlobs since")
	if len(pg.Cids) != 1 || pg.Cids[0] != blobs[2].Ref.String() {
		t.Errorf("since the second blob's commit: %v, want [%s]", pg.Cids, blobs[2].Ref)
	}
	p.get("com.atproto.sync.listBlobs", params("did", string(did), "cursor", "junk"), nil).
		wantError(t, "bad cursor", http.StatusBadRequest, "InvalidRequest")
}

// TestStreamCARFailure checks that a CAR export failing after the response
// has started breaks the transfer instead of ending a shorter, well-formed
// body; and that one failing at once is an error response.
func TestStreamCARFailure(t *testing.T) {
	t.Parallel()
	broken := errors.New("disk on fire")
	srv := xrpc.NewServer(nil)
	srv.Handle("com.example.late", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		return streamCAR(func(w io.Writer) error {
			if _, err := w.Write(bytes.Repeat([]byte{1}, 3*carStreamBuffer)); err != nil {
				return err
			}
			return broken
		})
	})
	srv.Handle("com.example.early", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		return streamCAR(func(w io.Writer) error { return broken })
	})
	srv.Handle("com.example.fine", xrpc.Query, func(ctx context.Context, req *xrpc.Request) (*xrpc.Response, error) {
		return streamCAR(func(w io.Writer) error {
			_, err := w.Write(bytes.Repeat([]byte{2}, 3*carStreamBuffer))
			return err
		})
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/xrpc/com.example.late")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Errorf("late failure: status %d, read error %v; want 200 and a broken body", resp.StatusCode, err)
	}

	resp, err = http.Get(ts.URL + "/xrpc/com.example.early")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("early failure: status %d, want 500", resp.StatusCode)
	}

	resp, err = http.Get(ts.URL + "/xrpc/com.example.fine")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != 3*carStreamBuffer {
		t.Errorf("whole stream: %d bytes, err %v", len(b), err)
	}
}

// BenchmarkSyncGetRepo measures a full export over HTTP of a repository of
// 10,000 records.
func BenchmarkSyncGetRepo(b *testing.B) {
	p := newTestPDS(b, nil)
	did, _ := seedAccount(b, p, "bench.test")
	const records = 10_000
	for c := range records / repo.MaxCommitOps {
		writes := make([]repo.RecordWrite, repo.MaxCommitOps)
		for i := range writes {
			writes[i] = createPost(b, fmt.Sprintf("3k%03d%07d", c, i), fmt.Sprintf("post %d of batch %d", i, c))
		}
		commit(b, p, did, writes...)
	}
	u := p.url + "/xrpc/com.atproto.sync.getRepo?did=" + string(did)
	var size int64
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		size = n
	}
	b.SetBytes(size)
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
