package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// pngBytes is a PNG file's signature followed by filler: enough for
// content sniffing.
func pngBytes(fill string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), fill...)
}

type blobOut struct {
	Type     string            `json:"$type"`
	Ref      map[string]string `json:"ref"`
	MimeType string            `json:"mimeType"`
	Size     int64             `json:"size"`
}

func (b blobOut) cid(t testing.TB) data.CID {
	t.Helper()
	c, err := data.ParseCID(b.Ref["$link"])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (b blobOut) value() map[string]any {
	return map[string]any{"$type": "blob", "ref": map[string]any{"$link": b.Ref["$link"]}, "mimeType": b.MimeType, "size": b.Size}
}

// upload posts body to uploadBlob and returns the blob reference.
func upload(t testing.TB, p *testPDS, token, contentType string, body []byte) blobOut {
	t.Helper()
	status, name, raw := rawXRPC(t, p, "com.atproto.repo.uploadBlob", token, contentType, body)
	if status != 200 {
		t.Fatalf("uploadBlob: %d %s", status, name)
	}
	var out struct {
		Blob blobOut `json:"blob"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out.Blob
}

func blobState(t testing.TB, p *testPDS, did syntax.DID, c data.CID) (meta actorstore.BlobMeta, found, hasBytes bool) {
	t.Helper()
	ctx := context.Background()
	st, release, err := p.srv.actors.get(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	meta, err = st.Blob(ctx, c)
	if err != nil && !errors.Is(err, actorstore.ErrBlobNotFound) {
		t.Fatal(err)
	}
	hasBytes, err2 := p.srv.blobs.Has(ctx, did, c)
	if err2 != nil {
		t.Fatal(err2)
	}
	return meta, err == nil, hasBytes
}

func putProfile(p *testPDS, a repoAccount, avatar map[string]any, validate *bool) (int, string) {
	rec := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice"}
	if avatar != nil {
		rec["avatar"] = avatar
	}
	in := map[string]any{"repo": string(a.did), "collection": "app.bsky.actor.profile", "rkey": "self", "record": rec}
	if validate != nil {
		in["validate"] = *validate
	}
	return p.call("POST", "com.atproto.repo.putRecord", a.token, nil, in, nil)
}

func TestUploadBlobAndReference(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	ctx := context.Background()
	img := pngBytes("avatar")

	b := upload(t, p, a.token, "application/octet-stream", img)
	if b.Type != "blob" || b.MimeType != "image/png" || b.Size != int64(len(img)) || b.cid(t) != data.CIDForRaw(img) {
		t.Fatalf("uploadBlob = %+v", b)
	}
	// Not referenced yet: temporary, not listed, not served.
	if m, found, has := blobState(t, p, a.did, b.cid(t)); !found || m.Permanent() || has {
		t.Fatalf("uploaded blob: meta %+v found %v permanent bytes %v; want temporary", m, found, has)
	}
	if cids, _, err := p.srv.listBlobCIDs(ctx, a.did, "", "", 100); err != nil || len(cids) != 0 {
		t.Fatalf("listBlobCIDs before any reference = %v, %v", cids, err)
	}
	if _, _, err := p.srv.blobMeta(ctx, a.did, b.cid(t)); !errors.Is(err, actorstore.ErrBlobNotFound) {
		t.Fatalf("blobMeta of a temporary blob: %v", err)
	}
	r := p.get("com.atproto.sync.getBlob", params("did", string(a.did), "cid", b.cid(t).String()), nil)
	if r.status == 200 {
		t.Fatal("getBlob served an unreferenced upload")
	}

	// A profile's avatar references it: permanent, listed, served.
	if status, name := putProfile(p, a, b.value(), nil); status != 200 {
		t.Fatalf("putRecord with the avatar: %d %s", status, name)
	}
	if m, found, has := blobState(t, p, a.did, b.cid(t)); !found || !m.Permanent() || !has {
		t.Fatalf("referenced blob: meta %+v found %v bytes %v; want permanent", m, found, has)
	}
	if mime, size, err := p.srv.blobMeta(ctx, a.did, b.cid(t)); err != nil || mime != "image/png" || size != int64(len(img)) {
		t.Fatalf("blobMeta = %q %d %v", mime, size, err)
	}
	if cids, next, err := p.srv.listBlobCIDs(ctx, a.did, "", "", 100); err != nil || !slices.Equal(cids, []data.CID{b.cid(t)}) || next != "" {
		t.Fatalf("listBlobCIDs = %v %q %v", cids, next, err)
	}
	r = p.get("com.atproto.sync.getBlob", params("did", string(a.did), "cid", b.cid(t).String()), nil)
	r.mustOK(t, "getBlob")
	if !bytes.Equal(r.body, img) {
		t.Fatalf("getBlob returned %d bytes, want the upload", len(r.body))
	}
	// Uploading the same bytes again keeps the blob permanent.
	if again := upload(t, p, a.token, "image/png", img); again.cid(t) != b.cid(t) {
		t.Fatalf("second upload = %+v", again)
	}
	if m, _, has := blobState(t, p, a.did, b.cid(t)); !m.Permanent() || !has {
		t.Fatal("a second upload made a permanent blob temporary")
	}

	// Dropping the avatar deletes the blob, bytes and all.
	if status, name := putProfile(p, a, nil, nil); status != 200 {
		t.Fatalf("putRecord without the avatar: %d %s", status, name)
	}
	if _, found, has := blobState(t, p, a.did, b.cid(t)); found || has {
		t.Fatalf("unreferenced blob kept: metadata %v bytes %v", found, has)
	}
}

func TestBlobReferenceErrors(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	head, _ := repoHeadOf(t, p, a.did)
	img := upload(t, p, a.token, "image/png", pngBytes("one"))
	text := upload(t, p, a.token, "text/plain", []byte("just some text"))
	if text.MimeType != "text/plain" {
		t.Fatalf("text upload has type %s", text.MimeType)
	}

	never := img.value()
	never["ref"] = map[string]any{"$link": data.CIDForRaw([]byte("never uploaded")).String()}
	status, name := putProfile(p, a, never, nil)
	wantStatus(t, "a blob never uploaded", status, name, 400, "BlobNotFound")

	wrongMime := img.value()
	wrongMime["mimeType"] = "image/jpeg"
	status, name = putProfile(p, a, wrongMime, nil)
	wantStatus(t, "a blob with another MIME type", status, name, 400, "InvalidMimeType")

	wrongSize := img.value()
	wrongSize["size"] = img.Size + 1
	status, name = putProfile(p, a, wrongSize, nil)
	wantStatus(t, "a blob with another size", status, name, 400, "InvalidSize")

	// The lexicon accepts only images as avatars.
	status, name = putProfile(p, a, text.value(), nil)
	wantStatus(t, "a text avatar", status, name, 400, "InvalidRequest")

	if now, _ := repoHeadOf(t, p, a.did); now != head {
		t.Fatal("refused blob references changed the head")
	}
	if m, _, has := blobState(t, p, a.did, img.cid(t)); m.Permanent() || has {
		t.Fatal("a refused write made a blob permanent")
	}
	// Without validation the text blob goes (the record is checked only
	// against the stored blob).
	no := false
	if status, name := putProfile(p, a, text.value(), &no); status != 200 {
		t.Fatalf("unvalidated text avatar: %d %s", status, name)
	}
}

// lengthless hides a body's length, so that it is sent chunked.
type lengthless struct{ r io.Reader }

func (l lengthless) Read(p []byte) (int, error) { return l.r.Read(p) }

func TestUploadBlobLimits(t *testing.T) {
	p := newTestPDS(t, func(c *Config) { c.MaxBlobSize = 1000 })
	a := seedRepoAccount(t, p, "alice.test")
	upload(t, p, a.token, "image/png", pngBytes(string(make([]byte, 1000-len(pngBytes(""))))))
	status, name, _ := rawXRPC(t, p, "com.atproto.repo.uploadBlob", a.token, "image/png", pngBytes(string(make([]byte, 1000))))
	wantStatus(t, "upload over the limit", status, name, 413, "PayloadTooLarge")

	req, err := http.NewRequest("POST", p.url+"/xrpc/com.atproto.repo.uploadBlob", lengthless{bytes.NewReader(make([]byte, 5000))})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked upload over the limit: %d, want 413", resp.StatusCode)
	}

	status, name, _ = rawXRPC(t, p, "com.atproto.repo.uploadBlob", "", "image/png", pngBytes("x"))
	wantStatus(t, "upload without a token", status, name, 401, "AuthMissing")
	status, name, _ = rawXRPC(t, p, "com.atproto.repo.uploadBlob", a.token, "", pngBytes("x"))
	wantStatus(t, "upload without a Content-Type", status, name, 400, "InvalidRequest")
}
