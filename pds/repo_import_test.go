package pds

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// exportedRepo builds a repository of did elsewhere (signed with a key of
// the old host) holding writes, and returns its CAR export and commit.
func exportedRepo(t *testing.T, did syntax.DID, writes ...repo.RecordWrite) ([]byte, *repo.CommitResult) {
	t.Helper()
	ctx := context.Background()
	r, err := repo.NewRepo(did, repo.NewMemBlockStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	oldKey, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Commit(ctx, oldKey, repo.NewRevClock(77))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.ExportCAR(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), res
}

func cborRecord(t testing.TB, v map[string]any) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportRepo(t *testing.T) {
	p := newTestPDS(t, nil)
	ctx := context.Background()
	did, key := seedAccount(t, p, "alice.test")
	a := repoAccount{did: did, token: sessionFor(t, p, did)}
	createPostAt(t, p, a, "3kaaaaaaaaaaa", "replaced by the import")
	_, prevRev := repoHeadOf(t, p, did)

	img := pngBytes("migrated avatar")
	avatar := data.Blob{Ref: data.CIDForRaw(img), MimeType: "image/png", Size: int64(len(img))}
	post := func(text string) []byte {
		return cborRecord(t, map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2023-01-01T00:00:00.000Z"})
	}
	car, old := exportedRepo(t, did,
		repo.RecordWrite{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: "3jaaaaaaaaaaa", Value: post("old one")},
		repo.RecordWrite{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: "3jaaaaaaaaaab", Value: post("old two")},
		repo.RecordWrite{Action: repo.ActionCreate, Collection: "app.bsky.actor.profile", RKey: "self",
			Value: cborRecord(t, map[string]any{"$type": "app.bsky.actor.profile", "avatar": avatar})},
	)

	status, name, body := rawXRPC(t, p, "com.atproto.repo.importRepo", a.token, "application/vnd.ipld.car", car)
	if status != 200 {
		t.Fatalf("importRepo: %d %s %s", status, name, body)
	}

	// The records are the imported ones, under a new commit on the same
	// tree, signed here, with a later rev.
	var list struct {
		Records []struct {
			URI string `json:"uri"`
		} `json:"records"`
	}
	p.call("GET", "com.atproto.repo.listRecords", "", map[string]string{"repo": string(did), "collection": "app.bsky.feed.post", "reverse": "true"}, nil, &list)
	var uris []string
	for _, r := range list.Records {
		uris = append(uris, r.URI)
	}
	want := []string{recordURI(did, "app.bsky.feed.post", "3jaaaaaaaaaaa"), recordURI(did, "app.bsky.feed.post", "3jaaaaaaaaaab")}
	if !slices.Equal(uris, want) {
		t.Fatalf("posts after import = %v, want %v", uris, want)
	}
	head, rev := repoHeadOf(t, p, did)
	if rev <= prevRev || rev <= string(old.Rev) {
		t.Fatalf("rev after import %s, want above %s and %s", rev, prevRev, old.Rev)
	}
	st, release, err := p.srv.actors.get(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	cb, err := st.GetBlock(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := repo.ParseCommit(cb)
	if err != nil {
		t.Fatal(err)
	}
	if err := commit.Verify(key.Public()); err != nil {
		t.Fatalf("imported commit does not verify with the account's key: %v", err)
	}
	if commit.Data != old.Commit.Data || commit.DID != did {
		t.Fatalf("imported commit %+v, want data %s", commit, old.Commit.Data)
	}

	// The repository announces itself with a #sync event.
	if err := p.srv.seq.Flush(ctx, did); err != nil {
		t.Fatal(err)
	}
	events, err := p.srv.seq.Since(ctx, 0, 10000)
	if err != nil || len(events) == 0 {
		t.Fatalf("events: %d, %v", len(events), err)
	}
	if last := events[len(events)-1]; !bytes.Contains(last.Frame, []byte("#sync")) || !bytes.Contains(last.Frame, []byte(rev)) {
		t.Fatalf("last event is not the #sync of rev %s", rev)
	}

	// The avatar is missing until uploaded.
	var missing struct {
		Blobs []struct {
			CID       string `json:"cid"`
			RecordURI string `json:"recordUri"`
		} `json:"blobs"`
	}
	if status, name := p.call("GET", "com.atproto.repo.listMissingBlobs", a.token, nil, nil, &missing); status != 200 {
		t.Fatalf("listMissingBlobs: %d %s", status, name)
	}
	if len(missing.Blobs) != 1 || missing.Blobs[0].CID != avatar.Ref.String() || missing.Blobs[0].RecordURI != recordURI(did, "app.bsky.actor.profile", "self") {
		t.Fatalf("listMissingBlobs = %+v", missing)
	}
	upload(t, p, a.token, "image/png", img)
	missing.Blobs = nil
	p.call("GET", "com.atproto.repo.listMissingBlobs", a.token, nil, nil, &missing)
	if len(missing.Blobs) != 0 {
		t.Fatalf("listMissingBlobs after the upload = %+v", missing)
	}
	if m, found, has := blobState(t, p, did, avatar.Ref); !found || !m.Permanent() || !has {
		t.Fatalf("uploaded missing blob: %+v %v %v, want permanent", m, found, has)
	}

	// Writes continue on the imported repository.
	createPostAt(t, p, a, "3kaaaaaaaaaac", "after the import")
	if b := commitHeadRecord(t, p, did, "app.bsky.feed.post", "3jaaaaaaaaaab"); !bytes.Equal(b, post("old two")) {
		t.Fatal("an imported record changed")
	}
}

func TestImportRepoRefused(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	head, _ := repoHeadOf(t, p, a.did)
	other, _ := exportedRepo(t, "did:plc:someoneelsealtogetherx", repo.RecordWrite{Action: repo.ActionCreate,
		Collection: "com.example.x", RKey: "k", Value: cborRecord(t, map[string]any{"$type": "com.example.x"})})
	good, _ := exportedRepo(t, a.did, repo.RecordWrite{Action: repo.ActionCreate,
		Collection: "com.example.x", RKey: "k", Value: cborRecord(t, map[string]any{"$type": "com.example.x"})})
	for name, tc := range map[string]struct {
		token, contentType string
		body               []byte
		status             int
		err                string
	}{
		"another DID":        {a.token, "application/vnd.ipld.car", other, 400, "InvalidRequest"},
		"not a CAR":          {a.token, "application/vnd.ipld.car", []byte("hello"), 400, "InvalidRequest"},
		"truncated":          {a.token, "application/vnd.ipld.car", good[:len(good)-10], 400, "InvalidRequest"},
		"wrong content type": {a.token, "application/json", good, 400, "InvalidRequest"},
		"no token":           {"", "application/vnd.ipld.car", good, 401, "AuthMissing"},
	} {
		status, errName, _ := rawXRPC(t, p, "com.atproto.repo.importRepo", tc.token, tc.contentType, tc.body)
		wantStatus(t, name, status, errName, tc.status, tc.err)
	}
	if now, _ := repoHeadOf(t, p, a.did); now != head {
		t.Fatal("a refused import changed the head")
	}
	if status, name, _ := rawXRPC(t, p, "com.atproto.repo.importRepo", a.token, "application/vnd.ipld.car", good); status != http.StatusOK {
		t.Fatalf("import: %d %s", status, name)
	}
}
