package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// addSigner registers in the fake directory a DID whose atproto signing
// key is sign.
func addSigner(t *testing.T, f *fakePLC, sign crypto.PrivateKey) syntax.DID {
	t.Helper()
	rot, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	op := &plc.Operation{
		RotationKeys:        []string{rot.Public().DIDKey()},
		VerificationMethods: map[string]string{"atproto": sign.Public().DIDKey()},
		AlsoKnownAs:         []string{"at://repo.test"},
		Services: map[string]plc.Service{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://pds.example.com"},
		},
	}
	if err := op.Sign(rot); err != nil {
		t.Fatal(err)
	}
	did, err := plc.DIDForGenesis(op)
	if err != nil {
		t.Fatal(err)
	}
	d, err := plc.DataForOp(did, op)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(d.Document())
	if err != nil {
		t.Fatal(err)
	}
	f.docs[did.String()] = doc
	return did
}

func cborRecord(t *testing.T, typ, text string) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{"$type": typ, "text": text, "createdAt": "2024-01-02T03:04:05.000Z"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repoCARs builds a repository of did with two commits and writes the
// export of each to a file; it returns the two paths.
func repoCARs(t *testing.T, did syntax.DID, key crypto.PrivateKey) (string, string) {
	t.Helper()
	ctx := context.Background()
	r, err := repo.NewRepo(did, repo.NewMemBlockStore())
	if err != nil {
		t.Fatal(err)
	}
	clock := repo.NewRevClock(0)
	dir := t.TempDir()
	export := func(name string, ws ...repo.RecordWrite) string {
		if err := r.Apply(ctx, ws); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Commit(ctx, key, clock); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := r.ExportCAR(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	post, like := syntax.NSID("app.bsky.feed.post"), syntax.NSID("app.bsky.feed.like")
	oldPath := export("old.car",
		repo.RecordWrite{Action: repo.ActionCreate, Collection: post, RKey: "3kpost1aaaa22", Value: cborRecord(t, string(post), "first")},
		repo.RecordWrite{Action: repo.ActionCreate, Collection: post, RKey: "3kpost2aaaa22", Value: cborRecord(t, string(post), "second")},
		repo.RecordWrite{Action: repo.ActionCreate, Collection: like, RKey: "3klike1aaaa22", Value: cborRecord(t, string(like), "like")},
	)
	newPath := export("new.car",
		repo.RecordWrite{Action: repo.ActionUpdate, Collection: post, RKey: "3kpost1aaaa22", Value: cborRecord(t, string(post), "first, edited")},
		repo.RecordWrite{Action: repo.ActionDelete, Collection: like, RKey: "3klike1aaaa22"},
		repo.RecordWrite{Action: repo.ActionCreate, Collection: "app.bsky.graph.follow", RKey: "3kfollow1aa22", Value: cborRecord(t, "app.bsky.graph.follow", "f")},
	)
	return oldPath, newPath
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("welkin %v: exit %d, stderr %q", args, code, errOut.String())
	}
	return out.String()
}

func runFail(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != wantCode {
		t.Fatalf("welkin %v: exit %d, want %d; stdout %q stderr %q", args, code, wantCode, out.String(), errOut.String())
	}
	return errOut.String()
}

func TestRepoInspectLsGetDiff(t *testing.T) {
	key, _ := crypto.GenerateK256()
	did := syntax.DID("did:plc:abcdefghijklmnopqrstuvwx")
	oldCAR, newCAR := repoCARs(t, did, key)

	out := runOK(t, "repo", "inspect", oldCAR)
	for _, want := range []string{"did:     " + did.String(), "version: 3", "records: 3", "app.bsky.feed.post", "app.bsky.feed.like"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "commit:  bafyrei") || !strings.Contains(out, "rev:     ") {
		t.Errorf("inspect output lacks commit or rev:\n%s", out)
	}

	out = runOK(t, "repo", "ls", oldCAR)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "app.bsky.feed.like/3klike1aaaa22 bafyrei") {
		t.Errorf("ls output:\n%s", out)
	}
	out = runOK(t, "repo", "ls", oldCAR, "app.bsky.feed.post")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "app.bsky.feed.post/3kpost2aaaa22 ") {
		t.Errorf("ls of one collection:\n%s", out)
	}

	out = runOK(t, "repo", "get", newCAR, "app.bsky.feed.post/3kpost1aaaa22")
	var rec map[string]any
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec["text"] != "first, edited" || rec["$type"] != "app.bsky.feed.post" {
		t.Errorf("get output %q: %v", out, err)
	}
	if msg := runFail(t, 1, "repo", "get", newCAR, "app.bsky.feed.like/3klike1aaaa22"); !strings.Contains(msg, "not found") {
		t.Errorf("get of a deleted record: %q", msg)
	}
	if msg := runFail(t, 2, "repo", "get", newCAR, "not-a-path"); !strings.Contains(msg, "collection") {
		t.Errorf("get of a bad path: %q", msg)
	}

	out = runOK(t, "repo", "diff", oldCAR, newCAR)
	for _, want := range []string{
		"delete app.bsky.feed.like/3klike1aaaa22 bafyrei",
		"update app.bsky.feed.post/3kpost1aaaa22 bafyrei",
		"create app.bsky.graph.follow/3kfollow1aa22 bafyrei",
		"3 ops",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %q:\n%s", want, out)
		}
	}

	runFail(t, 2, "repo")
	runFail(t, 2, "repo", "frobnicate")
	runFail(t, 2, "repo", "inspect")
	if msg := runFail(t, 1, "repo", "inspect", filepath.Join(t.TempDir(), "missing.car")); !strings.Contains(msg, "missing.car") {
		t.Errorf("inspect of a missing file: %q", msg)
	}
	bad := filepath.Join(t.TempDir(), "bad.car")
	os.WriteFile(bad, []byte("not a car file"), 0o600)
	if msg := runFail(t, 1, "repo", "ls", bad); !strings.Contains(msg, "bad.car") {
		t.Errorf("ls of a bad file: %q", msg)
	}
}

func TestRepoVerify(t *testing.T) {
	f := newFakePLC(t)
	key, _ := crypto.GenerateP256()
	did := addSigner(t, f, key)
	good, _ := repoCARs(t, did, key)

	out := runOK(t, "repo", "verify", good, "--plc-url", f.srv.URL, "--allow-private-networks", "--did", did.String())
	if !strings.Contains(out, "ok: commit") || !strings.Contains(out, key.Public().DIDKey()) || !strings.Contains(out, "3 records") {
		t.Errorf("verify output:\n%s", out)
	}
	// The environment variable stands in for the hidden flag.
	t.Setenv(envAllowPrivate, "1")
	runOK(t, "repo", "verify", good, "--plc-url", f.srv.URL)

	// A repository signed by another key fails.
	other, _ := crypto.GenerateP256()
	forged, _ := repoCARs(t, did, other)
	if msg := runFail(t, 1, "repo", "verify", forged, "--plc-url", f.srv.URL); !strings.Contains(msg, "invalid signature") {
		t.Errorf("verify of a forged repository: %q", msg)
	}
	// The wrong --did fails before any lookup.
	if msg := runFail(t, 1, "repo", "verify", good, "--plc-url", f.srv.URL, "--did", "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"); !strings.Contains(msg, "want did:plc:zzzz") {
		t.Errorf("verify with another --did: %q", msg)
	}
	// An unknown DID fails.
	unknown, _ := repoCARs(t, "did:plc:abcdefghijklmnopqrstuvwx", key)
	if msg := runFail(t, 1, "repo", "verify", unknown, "--plc-url", f.srv.URL); !strings.Contains(msg, "did:plc:abcdefghijklmnopqrstuvwx") {
		t.Errorf("verify of an unregistered DID: %q", msg)
	}
	runFail(t, 2, "repo", "verify", good, "--did", "nonsense")
}
