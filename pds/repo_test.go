package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/store"
)

// writeOut is the output of createRecord and putRecord.
type writeOut struct {
	URI    string `json:"uri"`
	CID    string `json:"cid"`
	Commit *struct {
		CID string `json:"cid"`
		Rev string `json:"rev"`
	} `json:"commit"`
	ValidationStatus string `json:"validationStatus"`
}

// repoAccount is a seeded account with a session.
type repoAccount struct {
	did   syntax.DID
	token string
}

// seedRepoAccount seeds an account and mints it a full session directly
// (createSession's password check is slow under the race detector, and
// tested elsewhere).
func seedRepoAccount(t testing.TB, p *testPDS, handle string) repoAccount {
	t.Helper()
	did, _ := seedAccount(t, p, handle)
	return repoAccount{did: did, token: sessionFor(t, p, did)}
}

func sessionFor(t testing.TB, p *testPDS, did syntax.DID) string {
	t.Helper()
	tp, err := p.srv.sessions.CreateSession(context.Background(), did, auth.ScopeAccess)
	if err != nil {
		t.Fatal(err)
	}
	return tp.Access
}

func postRecord(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-06T07:08:09.000Z"}
}

// createPostAt creates a post and fails the test unless it succeeds.
func createPostAt(t testing.TB, p *testPDS, a repoAccount, rkey, text string) writeOut {
	t.Helper()
	in := map[string]any{"repo": string(a.did), "collection": "app.bsky.feed.post", "record": postRecord(text)}
	if rkey != "" {
		in["rkey"] = rkey
	}
	var out writeOut
	if status, name := p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in, &out); status != http.StatusOK {
		t.Fatalf("createRecord %s: %d %s", rkey, status, name)
	}
	return out
}

// tidKey is a TID record key: prefix (10 characters) and i in three
// base32-sortable digits.
func tidKey(prefix string, i int) string {
	const alphabet = "234567abcdefghijklmnopqrstuvwxyz"
	return prefix + string([]byte{alphabet[i/1024%32], alphabet[i/32%32], alphabet[i%32]})
}

// repoHeadOf returns the stored head of did's repository.
func repoHeadOf(t testing.TB, p *testPDS, did syntax.DID) (data.CID, string) {
	t.Helper()
	head, rev, ok, err := p.srv.repoHead(context.Background(), did)
	if err != nil || !ok {
		t.Fatalf("repository head of %s: ok=%v err=%v", did, ok, err)
	}
	return head, rev
}

// rawXRPC posts body with the given Content-Type and returns the status,
// the error name and the body.
func rawXRPC(t testing.TB, p *testPDS, nsid, token, contentType string, body []byte) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", p.url+"/xrpc/"+nsid, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	if resp.StatusCode != http.StatusOK {
		json.Unmarshal(b, &e)
	}
	return resp.StatusCode, e.Error, b
}

func wantStatus(t testing.TB, what string, status int, name string, wantStatus int, wantName string) {
	t.Helper()
	if status != wantStatus || name != wantName {
		t.Fatalf("%s: %d %q, want %d %q", what, status, name, wantStatus, wantName)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")

	created := createPostAt(t, p, a, "", "hello")
	if created.ValidationStatus != "valid" || created.Commit == nil || created.Commit.Rev == "" {
		t.Fatalf("createRecord = %+v", created)
	}
	uri, err := syntax.ParseATURI(created.URI)
	if err != nil {
		t.Fatal(err)
	}
	rkey := string(uri.RecordKey())
	if _, err := syntax.ParseTID(rkey); err != nil {
		t.Fatalf("generated rkey %q is not a TID: %v", rkey, err)
	}
	if head, rev := repoHeadOf(t, p, a.did); head.String() != created.Commit.CID || rev != created.Commit.Rev {
		t.Fatalf("head %s %s, want the created commit %+v", head, rev, created.Commit)
	}

	var got struct {
		URI   string         `json:"uri"`
		CID   string         `json:"cid"`
		Value map[string]any `json:"value"`
	}
	get := map[string]string{"repo": "alice.test", "collection": "app.bsky.feed.post", "rkey": rkey}
	if status, name := p.call("GET", "com.atproto.repo.getRecord", "", get, nil, &got); status != 200 {
		t.Fatalf("getRecord: %d %s", status, name)
	}
	if got.URI != created.URI || got.CID != created.CID || got.Value["text"] != "hello" || got.Value["$type"] != "app.bsky.feed.post" {
		t.Fatalf("getRecord = %+v", got)
	}
	get["cid"] = got.CID
	if status, _ := p.call("GET", "com.atproto.repo.getRecord", "", get, nil, nil); status != 200 {
		t.Fatalf("getRecord with the current cid: %d", status)
	}

	// putRecord replaces it; the same content again makes no commit.
	put := map[string]any{"repo": string(a.did), "collection": "app.bsky.feed.post", "rkey": rkey, "record": postRecord("edited")}
	var updated writeOut
	if status, name := p.call("POST", "com.atproto.repo.putRecord", a.token, nil, put, &updated); status != 200 {
		t.Fatalf("putRecord: %d %s", status, name)
	}
	if updated.CID == created.CID || updated.Commit == nil || updated.Commit.Rev <= created.Commit.Rev || updated.ValidationStatus != "valid" {
		t.Fatalf("putRecord = %+v", updated)
	}
	status, name := p.call("GET", "com.atproto.repo.getRecord", "", get, nil, nil)
	wantStatus(t, "getRecord with the old cid", status, name, 400, "RecordNotFound")
	var same writeOut
	if status, name := p.call("POST", "com.atproto.repo.putRecord", a.token, nil, put, &same); status != 200 {
		t.Fatalf("putRecord again: %d %s", status, name)
	}
	if same.Commit != nil || same.CID != updated.CID {
		t.Fatalf("putRecord of the same record = %+v, want no commit", same)
	}
	if _, rev := repoHeadOf(t, p, a.did); rev != updated.Commit.Rev {
		t.Fatalf("a no-op putRecord moved the head to %s", rev)
	}

	// listRecords sees it; deleteRecord removes it; a second delete is a
	// no-op without a commit.
	var list struct {
		Records []struct {
			URI   string         `json:"uri"`
			CID   string         `json:"cid"`
			Value map[string]any `json:"value"`
		} `json:"records"`
	}
	if status, _ := p.call("GET", "com.atproto.repo.listRecords", "", map[string]string{"repo": string(a.did), "collection": "app.bsky.feed.post"}, nil, &list); status != 200 {
		t.Fatalf("listRecords: %d", status)
	}
	if len(list.Records) != 1 || list.Records[0].CID != updated.CID || list.Records[0].Value["text"] != "edited" {
		t.Fatalf("listRecords = %+v", list)
	}
	del := map[string]any{"repo": string(a.did), "collection": "app.bsky.feed.post", "rkey": rkey}
	var deleted struct {
		Commit *struct {
			CID string `json:"cid"`
			Rev string `json:"rev"`
		} `json:"commit"`
	}
	if status, name := p.call("POST", "com.atproto.repo.deleteRecord", a.token, nil, del, &deleted); status != 200 || deleted.Commit == nil {
		t.Fatalf("deleteRecord: %d %s %+v", status, name, deleted)
	}
	delete(get, "cid")
	status, name = p.call("GET", "com.atproto.repo.getRecord", "", get, nil, nil)
	wantStatus(t, "getRecord after delete", status, name, 400, "RecordNotFound")
	deleted.Commit = nil
	if status, name := p.call("POST", "com.atproto.repo.deleteRecord", a.token, nil, del, &deleted); status != 200 || deleted.Commit != nil {
		t.Fatalf("deleteRecord of a missing record: %d %s %+v, want success without a commit", status, name, deleted)
	}
	if head, _ := repoHeadOf(t, p, a.did); head.String() == updated.Commit.CID {
		t.Fatal("deleteRecord made no commit")
	}
}

func TestListRecordsPagingAndOrder(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	var keys []string
	for i := range 7 {
		k := tidKey("3kaaaaaaaa", i)
		keys = append(keys, k)
		createPostAt(t, p, a, k, fmt.Sprint(i))
	}
	list := func(reverse bool) []string {
		var out []string
		cursor := ""
		for range 10 {
			q := map[string]string{"repo": "alice.test", "collection": "app.bsky.feed.post", "limit": "3"}
			if reverse {
				q["reverse"] = "true"
			}
			if cursor != "" {
				q["cursor"] = cursor
			}
			var page struct {
				Cursor  string `json:"cursor"`
				Records []struct {
					URI string `json:"uri"`
				} `json:"records"`
			}
			if status, name := p.call("GET", "com.atproto.repo.listRecords", "", q, nil, &page); status != 200 {
				t.Fatalf("listRecords: %d %s", status, name)
			}
			for _, r := range page.Records {
				out = append(out, r.URI[strings.LastIndexByte(r.URI, '/')+1:])
			}
			if page.Cursor == "" {
				return out
			}
			cursor = page.Cursor
		}
		t.Fatal("listRecords never ended")
		return nil
	}
	newestFirst := slices.Clone(keys)
	slices.Reverse(newestFirst)
	if got := list(false); !slices.Equal(got, newestFirst) {
		t.Fatalf("listRecords = %v, want newest first %v", got, newestFirst)
	}
	if got := list(true); !slices.Equal(got, keys) {
		t.Fatalf("listRecords reverse = %v, want %v", got, keys)
	}
	for _, bad := range []string{"0", "101"} {
		status, name := p.call("GET", "com.atproto.repo.listRecords", "", map[string]string{"repo": "alice.test", "collection": "app.bsky.feed.post", "limit": bad}, nil, nil)
		wantStatus(t, "listRecords limit "+bad, status, name, 400, "InvalidRequest")
	}
	status, name := p.call("GET", "com.atproto.repo.listRecords", "", map[string]string{"repo": "nobody.test", "collection": "app.bsky.feed.post"}, nil, nil)
	wantStatus(t, "listRecords of an unknown repo", status, name, 400, "InvalidRequest")
}

func TestRecordKeys(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	create := func(col, rkey string, rec map[string]any, validate *bool) (int, string) {
		in := map[string]any{"repo": string(a.did), "collection": col, "rkey": rkey, "record": rec}
		if validate != nil {
			in["validate"] = *validate
		}
		return p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in, nil)
	}
	for _, bad := range []string{".", "..", "a/b", "a b", strings.Repeat("k", 513), "héllo"} {
		status, name := create("app.bsky.feed.post", bad, postRecord("x"), nil)
		wantStatus(t, fmt.Sprintf("rkey %q", bad), status, name, 400, "InvalidRequest")
	}
	profile := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice"}
	// A profile's key is literal:self.
	status, name := create("app.bsky.actor.profile", "notself", profile, nil)
	wantStatus(t, "profile with rkey notself", status, name, 400, "InvalidRequest")
	if status, name := create("app.bsky.actor.profile", "self", profile, nil); status != 200 {
		t.Fatalf("profile at self: %d %s", status, name)
	}
	// Without validation any valid key goes.
	no := false
	if status, name := create("app.bsky.actor.profile", "other", profile, &no); status != 200 {
		t.Fatalf("profile at other without validation: %d %s", status, name)
	}
	// A post's key is a TID; "self" is no TID.
	status, name = create("app.bsky.feed.post", "self", postRecord("x"), nil)
	wantStatus(t, "post at self", status, name, 400, "InvalidRequest")
	// Creating an existing record is refused.
	createPostAt(t, p, a, "3kaaaaaaaaaaa", "one")
	status, name = create("app.bsky.feed.post", "3kaaaaaaaaaaa", postRecord("two"), nil)
	wantStatus(t, "create of an existing record", status, name, 400, "InvalidRequest")
}

func TestRecordValidation(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	yes, no := true, false
	badPost := map[string]any{"$type": "app.bsky.feed.post", "text": "no createdAt"}
	custom := map[string]any{"$type": "com.example.thing", "anything": int64(1)}
	for _, tc := range []struct {
		name       string
		col        string
		rec        map[string]any
		validate   *bool
		wantStatus int
		wantName   string
		wantValid  string
	}{
		{"known valid unset", "app.bsky.feed.post", postRecord("a"), nil, 200, "", "valid"},
		{"known valid true", "app.bsky.feed.post", postRecord("a"), &yes, 200, "", "valid"},
		{"known valid false", "app.bsky.feed.post", postRecord("a"), &no, 200, "", ""},
		{"known invalid unset", "app.bsky.feed.post", badPost, nil, 400, "InvalidRequest", ""},
		{"known invalid true", "app.bsky.feed.post", badPost, &yes, 400, "InvalidRequest", ""},
		{"known invalid false", "app.bsky.feed.post", badPost, &no, 200, "", ""},
		{"unknown unset", "com.example.thing", custom, nil, 200, "", "unknown"},
		{"unknown true", "com.example.thing", custom, &yes, 400, "InvalidRequest", ""},
		{"unknown false", "com.example.thing", custom, &no, 200, "", ""},
		{"type mismatch", "app.bsky.feed.post", custom, &no, 400, "InvalidRequest", ""},
		{"type filled in", "com.example.thing", map[string]any{"x": "y"}, nil, 200, "", "unknown"},
		{"too long text", "app.bsky.feed.post", postRecord(strings.Repeat("x", 3001)), nil, 400, "InvalidRequest", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := repoHeadOf(t, p, a.did)
			in := map[string]any{"repo": string(a.did), "collection": tc.col, "record": tc.rec}
			if tc.validate != nil {
				in["validate"] = *tc.validate
			}
			var out writeOut
			status, name := p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in, &out)
			wantStatus(t, tc.name, status, name, tc.wantStatus, tc.wantName)
			now, _ := repoHeadOf(t, p, a.did)
			if status != 200 {
				if now != head {
					t.Fatal("a refused write changed the head")
				}
				return
			}
			if out.ValidationStatus != tc.wantValid {
				t.Fatalf("validationStatus %q, want %q", out.ValidationStatus, tc.wantValid)
			}
			var got struct {
				Value map[string]any `json:"value"`
			}
			uri, _ := syntax.ParseATURI(out.URI)
			p.call("GET", "com.atproto.repo.getRecord", "", map[string]string{"repo": string(a.did), "collection": tc.col, "rkey": string(uri.RecordKey())}, nil, &got)
			if got.Value["$type"] != tc.col {
				t.Fatalf("stored record %v has no $type %s", got.Value, tc.col)
			}
		})
	}
}

func TestApplyWrites(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	createOp := func(rkey, text string) map[string]any {
		op := map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": postRecord(text)}
		if rkey != "" {
			op["rkey"] = rkey
		}
		return op
	}
	type result struct {
		Type             string `json:"$type"`
		URI              string `json:"uri"`
		CID              string `json:"cid"`
		ValidationStatus string `json:"validationStatus"`
	}
	var out struct {
		Commit struct {
			CID string `json:"cid"`
			Rev string `json:"rev"`
		} `json:"commit"`
		Results []result `json:"results"`
	}
	var ops []any
	for i := range 50 {
		ops = append(ops, createOp(tidKey("3kaaaaaaaa", i), fmt.Sprint(i)))
	}
	if status, name := p.call("POST", "com.atproto.repo.applyWrites", a.token, nil, map[string]any{"repo": string(a.did), "writes": ops}, &out); status != 200 {
		t.Fatalf("applyWrites of 50: %d %s", status, name)
	}
	if len(out.Results) != 50 || out.Commit.CID == "" {
		t.Fatalf("applyWrites: %d results, commit %+v", len(out.Results), out.Commit)
	}
	for i, r := range out.Results {
		if r.Type != "com.atproto.repo.applyWrites#createResult" || r.ValidationStatus != "valid" || !strings.HasSuffix(r.URI, "/"+tidKey("3kaaaaaaaa", i)) {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if head, _ := repoHeadOf(t, p, a.did); head.String() != out.Commit.CID {
		t.Fatalf("head %s, want %s", head, out.Commit.CID)
	}

	// Mixed, with a generated key.
	mixed := []any{
		createOp("", "new"),
		map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post", "rkey": tidKey("3kaaaaaaaa", 0), "value": postRecord("changed")},
		map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": tidKey("3kaaaaaaaa", 1)},
	}
	out.Results = nil
	if status, name := p.call("POST", "com.atproto.repo.applyWrites", a.token, nil, map[string]any{"repo": "alice.test", "writes": mixed}, &out); status != 200 {
		t.Fatalf("mixed applyWrites: %d %s", status, name)
	}
	types := []string{}
	for _, r := range out.Results {
		types = append(types, r.Type)
	}
	if !slices.Equal(types, []string{"com.atproto.repo.applyWrites#createResult", "com.atproto.repo.applyWrites#updateResult", "com.atproto.repo.applyWrites#deleteResult"}) {
		t.Fatalf("result types %v", types)
	}
	if out.Results[2].URI != "" || out.Results[2].CID != "" {
		t.Fatalf("delete result %+v carries more than its $type", out.Results[2])
	}

	// Refused batches change nothing.
	head, _ := repoHeadOf(t, p, a.did)
	ops = nil
	for i := range MaxWrites + 1 {
		ops = append(ops, createOp(tidKey("3kbbbbbbbb", i), "x"))
	}
	for name, writes := range map[string][]any{
		"201 writes":       ops,
		"one invalid":      {createOp("3kcccccccccc2", "ok"), map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": map[string]any{"text": "no date"}}},
		"update missing":   {map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post", "rkey": "3kzzzzzzzzzzz", "value": postRecord("x")}},
		"delete missing":   {map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": "3kzzzzzzzzzzz"}},
		"create existing":  {createOp(tidKey("3kaaaaaaaa", 2), "again")},
		"unknown op":       {map[string]any{"$type": "com.atproto.repo.applyWrites#move", "collection": "app.bsky.feed.post", "rkey": "x"}},
		"create then same": {createOp("3kdddddddddd2", "a"), createOp("3kdddddddddd2", "b")},
	} {
		status, errName := p.call("POST", "com.atproto.repo.applyWrites", a.token, nil, map[string]any{"repo": string(a.did), "writes": writes}, nil)
		wantStatus(t, name, status, errName, 400, "InvalidRequest")
		if now, _ := repoHeadOf(t, p, a.did); now != head {
			t.Fatalf("%s: a refused batch changed the head", name)
		}
	}
}

func TestSwaps(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	first := createPostAt(t, p, a, "3kaaaaaaaaaaa", "one")
	second := createPostAt(t, p, a, "3kaaaaaaaaaab", "two")

	call := func(nsid string, in map[string]any) (int, string) {
		in["repo"] = string(a.did)
		in["collection"] = "app.bsky.feed.post"
		return p.call("POST", nsid, a.token, nil, in, nil)
	}
	// swapCommit must be the current commit.
	status, name := call("com.atproto.repo.createRecord", map[string]any{"record": postRecord("x"), "swapCommit": first.Commit.CID})
	wantStatus(t, "createRecord with a stale swapCommit", status, name, 400, "InvalidSwap")
	status, name = call("com.atproto.repo.applyWrites", map[string]any{"swapCommit": first.Commit.CID,
		"writes": []any{map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": "3kaaaaaaaaaaa"}}})
	wantStatus(t, "applyWrites with a stale swapCommit", status, name, 400, "InvalidSwap")
	if status, name := call("com.atproto.repo.createRecord", map[string]any{"rkey": "3kaaaaaaaaaac", "record": postRecord("x"), "swapCommit": second.Commit.CID}); status != 200 {
		t.Fatalf("createRecord with the current swapCommit: %d %s", status, name)
	}

	// swapRecord.
	status, name = call("com.atproto.repo.putRecord", map[string]any{"rkey": "3kaaaaaaaaaaa", "record": postRecord("new"), "swapRecord": second.CID})
	wantStatus(t, "putRecord with a wrong swapRecord", status, name, 400, "InvalidSwap")
	status, name = call("com.atproto.repo.putRecord", map[string]any{"rkey": "3kaaaaaaaaaaa", "record": postRecord("new"), "swapRecord": nil})
	wantStatus(t, "putRecord with a null swapRecord over a record", status, name, 400, "InvalidSwap")
	status, name = call("com.atproto.repo.putRecord", map[string]any{"rkey": "3kaaaaaaaaaaz", "record": postRecord("new"), "swapRecord": first.CID})
	wantStatus(t, "putRecord with a swapRecord where none is", status, name, 400, "InvalidSwap")
	if status, name := call("com.atproto.repo.putRecord", map[string]any{"rkey": "3kaaaaaaaaaay", "record": postRecord("new"), "swapRecord": nil}); status != 200 {
		t.Fatalf("putRecord with a null swapRecord where none is: %d %s", status, name)
	}
	if status, name := call("com.atproto.repo.putRecord", map[string]any{"rkey": "3kaaaaaaaaaaa", "record": postRecord("new"), "swapRecord": first.CID}); status != 200 {
		t.Fatalf("putRecord with the right swapRecord: %d %s", status, name)
	}
	status, name = call("com.atproto.repo.deleteRecord", map[string]any{"rkey": "3kaaaaaaaaaab", "swapRecord": first.CID})
	wantStatus(t, "deleteRecord with a wrong swapRecord", status, name, 400, "InvalidSwap")
	if status, name := call("com.atproto.repo.deleteRecord", map[string]any{"rkey": "3kaaaaaaaaaab", "swapRecord": second.CID}); status != 200 {
		t.Fatalf("deleteRecord with the right swapRecord: %d %s", status, name)
	}
}

func TestWriteAuthorization(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	b := seedRepoAccount(t, p, "bob.test")
	in := func(repo string) map[string]any {
		return map[string]any{"repo": repo, "collection": "app.bsky.feed.post", "record": postRecord("x")}
	}
	status, name := p.call("POST", "com.atproto.repo.createRecord", b.token, nil, in(string(a.did)), nil)
	wantStatus(t, "write to another account's repo", status, name, 401, "AuthenticationRequired")
	status, name = p.call("POST", "com.atproto.repo.createRecord", b.token, nil, in("alice.test"), nil)
	wantStatus(t, "write to another account's repo by handle", status, name, 401, "AuthenticationRequired")
	status, name = p.call("POST", "com.atproto.repo.createRecord", b.token, nil, in("nobody.test"), nil)
	wantStatus(t, "write to an unknown repo", status, name, 403, "AccountNotFound")
	status, name = p.call("POST", "com.atproto.repo.createRecord", "", nil, in(string(a.did)), nil)
	wantStatus(t, "write without a token", status, name, 401, "AuthMissing")
	if status, name := p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in("ALICE.test"), nil); status != 200 {
		t.Fatalf("write to one's own repo by handle: %d %s", status, name)
	}

	// A deactivated account can neither write nor be read.
	if err := p.srv.accounts.SetStatus(context.Background(), a.did, store.StatusDeactivated, p.srv.cfg.Now(), nil); err != nil {
		t.Fatal(err)
	}
	status, name = p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in(string(a.did)), nil)
	wantStatus(t, "write by a deactivated account", status, name, 401, "AccountDeactivated")
	status, name = p.call("GET", "com.atproto.repo.listRecords", "", map[string]string{"repo": string(a.did), "collection": "app.bsky.feed.post"}, nil, nil)
	wantStatus(t, "listRecords of a deactivated account", status, name, 400, "InvalidRequest")
	status, name = p.call("GET", "com.atproto.repo.describeRepo", "", map[string]string{"repo": string(a.did)}, nil, nil)
	wantStatus(t, "describeRepo of a deactivated account", status, name, 400, "RepoDeactivated")
}

func TestMalformedWrites(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	head, _ := repoHeadOf(t, p, a.did)
	for name, body := range map[string]string{
		"not JSON":       `{"repo": `,
		"not an object":  `[1, 2]`,
		"record missing": fmt.Sprintf(`{"repo": %q, "collection": "app.bsky.feed.post"}`, a.did),
		"record array":   fmt.Sprintf(`{"repo": %q, "collection": "app.bsky.feed.post", "record": [1]}`, a.did),
		"float":          fmt.Sprintf(`{"repo": %q, "collection": "com.example.x", "record": {"n": 1.5}}`, a.did),
		"bad collection": fmt.Sprintf(`{"repo": %q, "collection": "nope", "record": {}}`, a.did),
		"legacy blob":    fmt.Sprintf(`{"repo": %q, "collection": "com.example.x", "validate": false, "record": {"img": {"cid": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy", "mimeType": "image/png"}}}`, a.did),
	} {
		status, errName, _ := rawXRPC(t, p, "com.atproto.repo.createRecord", a.token, "application/json", []byte(body))
		wantStatus(t, name, status, errName, 400, "InvalidRequest")
	}
	// A body over the JSON limit is a 413.
	huge := fmt.Sprintf(`{"repo": %q, "collection": "com.example.x", "record": {"t": %q}}`, a.did, strings.Repeat("x", 2<<20))
	status, errName, _ := rawXRPC(t, p, "com.atproto.repo.createRecord", a.token, "application/json", []byte(huge))
	wantStatus(t, "oversize body", status, errName, 413, "PayloadTooLarge")
	// A record within the body limit but over the record limit.
	big := fmt.Sprintf(`{"repo": %q, "collection": "com.example.x", "record": {"t": %q}}`, a.did, strings.Repeat("x", MaxRecordSize+10))
	status, errName, _ = rawXRPC(t, p, "com.atproto.repo.createRecord", a.token, "application/json", []byte(big))
	wantStatus(t, "oversize record", status, errName, 400, "InvalidRequest")
	if now, _ := repoHeadOf(t, p, a.did); now != head {
		t.Fatal("malformed writes changed the head")
	}
}

func TestConcurrentWritesOneAccount(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	const writers, each = 8, 10
	var mu sync.Mutex
	var revs []string
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				in := map[string]any{"repo": string(a.did), "collection": "app.bsky.feed.post", "record": postRecord(fmt.Sprintf("%d-%d", w, i))}
				var out writeOut
				status, name := p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in, &out)
				if status != 200 {
					errs <- fmt.Errorf("writer %d: %d %s", w, status, name)
					continue
				}
				mu.Lock()
				revs = append(revs, out.Commit.Rev)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every commit got its own rev, and the head is the greatest.
	slices.Sort(revs)
	if len(slices.Compact(slices.Clone(revs))) != len(revs) || len(revs) != writers*each {
		t.Fatalf("%d commits with %d distinct revs, want %d", len(revs), len(slices.Compact(slices.Clone(revs))), writers*each)
	}
	if _, rev := repoHeadOf(t, p, a.did); rev != revs[len(revs)-1] {
		t.Fatalf("head rev %s, want the latest %s", rev, revs[len(revs)-1])
	}
	st, release, err := p.srv.actors.get(context.Background(), a.did)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	c, err := st.Counts(context.Background())
	if err != nil || c.Records != writers*each {
		t.Fatalf("records %d (%v), want %d", c.Records, err, writers*each)
	}
}

func TestConcurrentWritesManyAccounts(t *testing.T) {
	p := newTestPDS(t, nil)
	const accounts, each = 6, 8
	var accts []repoAccount
	for i := range accounts {
		accts = append(accts, seedRepoAccount(t, p, fmt.Sprintf("user%d.test", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, accounts*each)
	for _, a := range accts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := ""
			for i := range each {
				in := map[string]any{"repo": string(a.did), "collection": "app.bsky.feed.post", "record": postRecord(fmt.Sprint(i))}
				var out writeOut
				if status, name := p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in, &out); status != 200 {
					errs <- fmt.Errorf("%s: %d %s", a.did, status, name)
					return
				}
				if out.Commit.Rev <= last {
					errs <- fmt.Errorf("%s: rev %s after %s", a.did, out.Commit.Rev, last)
				}
				last = out.Commit.Rev
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, a := range accts {
		var list struct {
			Records []any `json:"records"`
		}
		p.call("GET", "com.atproto.repo.listRecords", "", map[string]string{"repo": string(a.did), "collection": "app.bsky.feed.post"}, nil, &list)
		if len(list.Records) != each {
			t.Errorf("%s holds %d records, want %d", a.did, len(list.Records), each)
		}
	}
}

func TestCreateRecordReplacesDuplicateLikes(t *testing.T) {
	p := newTestPDS(t, nil)
	a := seedRepoAccount(t, p, "alice.test")
	post := createPostAt(t, p, a, "", "likeable")
	like := func(validate *bool) writeOut {
		in := map[string]any{"repo": string(a.did), "collection": "app.bsky.feed.like", "record": map[string]any{
			"$type": "app.bsky.feed.like", "subject": map[string]any{"uri": post.URI, "cid": post.CID}, "createdAt": "2024-05-06T07:08:09.000Z"}}
		if validate != nil {
			in["validate"] = *validate
		}
		var out writeOut
		if status, name := p.call("POST", "com.atproto.repo.createRecord", a.token, nil, in, &out); status != 200 {
			t.Fatalf("like: %d %s", status, name)
		}
		return out
	}
	countLikes := func() int {
		var list struct {
			Records []any `json:"records"`
		}
		p.call("GET", "com.atproto.repo.listRecords", "", map[string]string{"repo": string(a.did), "collection": "app.bsky.feed.like"}, nil, &list)
		return len(list.Records)
	}
	like(nil)
	second := like(nil)
	if n := countLikes(); n != 1 {
		t.Fatalf("%d likes of one post after liking twice, want 1", n)
	}
	// Without validation duplicates are kept, as in the reference PDS.
	no := false
	like(&no)
	if n := countLikes(); n != 2 {
		t.Fatalf("%d likes after a like without validation, want 2", n)
	}
	uri, _ := syntax.ParseATURI(second.URI)
	if status, _ := p.call("GET", "com.atproto.repo.getRecord", "", map[string]string{"repo": string(a.did), "collection": "app.bsky.feed.like", "rkey": string(uri.RecordKey())}, nil, nil); status != 200 {
		t.Fatal("the newest like is gone")
	}
}

func TestDescribeRepo(t *testing.T) {
	p := newTestPDS(t, nil)
	acct := newAccount(t, p, "carol.test")
	a := repoAccount{did: syntax.DID(acct.Did), token: acct.AccessJwt}
	createPostAt(t, p, a, "", "hi")
	var out struct {
		Handle          string         `json:"handle"`
		DID             string         `json:"did"`
		DIDDoc          map[string]any `json:"didDoc"`
		Collections     []string       `json:"collections"`
		HandleIsCorrect bool           `json:"handleIsCorrect"`
	}
	if status, name := p.call("GET", "com.atproto.repo.describeRepo", "", map[string]string{"repo": "carol.test"}, nil, &out); status != 200 {
		t.Fatalf("describeRepo: %d %s", status, name)
	}
	if out.Handle != "carol.test" || out.DID != acct.Did || out.DIDDoc["id"] != acct.Did || !out.HandleIsCorrect ||
		!slices.Equal(out.Collections, []string{"app.bsky.feed.post"}) {
		t.Fatalf("describeRepo = %+v", out)
	}
	status, name := p.call("GET", "com.atproto.repo.describeRepo", "", map[string]string{"repo": "nobody.test"}, nil, nil)
	wantStatus(t, "describeRepo of an unknown repo", status, name, 400, "RepoNotFound")
	// An account whose DID does not resolve.
	seeded := seedRepoAccount(t, p, "dave.test")
	status, name = p.call("GET", "com.atproto.repo.describeRepo", "", map[string]string{"repo": string(seeded.did)}, nil, nil)
	wantStatus(t, "describeRepo of an unresolvable DID", status, name, 400, "InvalidRequest")
}

// commitHeadRecord reads the record at collection/rkey from the stored
// repository, as sync would serve it.
func commitHeadRecord(t *testing.T, p *testPDS, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) []byte {
	t.Helper()
	ctx := context.Background()
	st, release, err := p.srv.actors.get(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	head, _, _, err := st.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.OpenRepo(ctx, st, head)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := r.GetRecord(ctx, collection, rkey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
