package pds

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// A write is acknowledged once its event is in the log, while the
// account's database stores the commit in the background. Here another
// connection holds that database's write lock, so the commit cannot be
// stored yet: the write is still acknowledged, a read of the new record
// does not answer without it, and once the lock is gone the read returns
// it.
func TestReadsWaitForBackgroundCommit(t *testing.T) {
	ctx := context.Background()
	p := newTestPDS(t, nil)
	a, unlock := lockedAccount(t, p, "later.test")

	created := createPostAt(t, p, a, "3kabcdefghi22", "stored in the background")
	if created.Commit == nil || created.Commit.Rev == "" {
		t.Fatalf("createRecord = %+v", created)
	}

	q := url.Values{"repo": {string(a.did)}, "collection": {"app.bsky.feed.post"}, "rkey": {"3kabcdefghi22"}}
	getRecord := func(ctx context.Context) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/xrpc/com.atproto.repo.getRecord?"+q.Encode(), nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw), err
	}
	// The read cannot answer while the commit waits for the lock: a
	// deadline ends it. Without the wait it would answer RecordNotFound.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	status, body, err := getRecord(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("getRecord while the commit cannot be stored: %d %s (%v), want no answer", status, body, err)
	}

	unlock()
	status, body, err = getRecord(ctx)
	if err != nil || status != http.StatusOK {
		t.Fatalf("getRecord once the lock is gone: %d %s (%v)", status, body, err)
	}
	var out struct {
		CID   string         `json:"cid"`
		Value map[string]any `json:"value"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if out.CID != created.CID || out.Value["text"] != "stored in the background" {
		t.Fatalf("getRecord = %s, want the record created (cid %s)", body, created.CID)
	}
}

// lockedAccount seeds an account, waits until its first commit is stored,
// and has another connection take the write lock of its database, as a
// long checkpoint or backup would. unlock lets the lock go; it may be
// called more than once, and the test's end calls it.
func lockedAccount(t *testing.T, p *testPDS, handle string) (a repoAccount, unlock func()) {
	t.Helper()
	ctx := context.Background()
	a = seedRepoAccount(t, p, handle)
	_, release, err := p.srv.actors.get(ctx, a.did)
	if err != nil {
		t.Fatal(err)
	}
	release()

	path := filepath.Join(actorstore.Dir(p.srv.actors.dir, a.did), actorstore.FileName)
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(ctx)
	if err != nil {
		other.Close()
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		other.Close()
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
			other.Close()
		})
	}
	t.Cleanup(unlock)
	return a, unlock
}

// TestWritesDoNotWaitForBackgroundCommit writes to an account whose
// database another connection holds locked: the commits queue behind it,
// and createRecord and applyWrites build on them and are acknowledged
// without waiting for them to be stored. Once the lock is gone, the store
// holds every record.
func TestWritesDoNotWaitForBackgroundCommit(t *testing.T) {
	ctx := context.Background()
	p := newTestPDS(t, nil)
	a, unlock := lockedAccount(t, p, "queued.test")

	did := string(a.did)
	calls := []struct {
		nsid string
		in   map[string]any
	}{
		{"com.atproto.repo.createRecord", map[string]any{"repo": did, "collection": "app.bsky.feed.post", "rkey": "3kabcdefghi22", "record": postRecord("created")}},
		{"com.atproto.repo.applyWrites", map[string]any{"repo": did, "writes": []any{map[string]any{
			"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": "3kabcdefghi23", "value": postRecord("applied")}}}},
		{"com.atproto.repo.createRecord", map[string]any{"repo": did, "collection": "app.bsky.feed.post", "rkey": "3kabcdefghi24", "record": postRecord("created after")}},
	}
	done := make(chan string, 1)
	go func() {
		for _, c := range calls {
			var out map[string]any
			if status, name := p.call("POST", c.nsid, a.token, nil, c.in, &out); status != http.StatusOK {
				done <- fmt.Sprintf("%s: %d %s", c.nsid, status, name)
				return
			}
		}
		done <- ""
	}()
	select {
	case msg := <-done:
		if msg != "" {
			t.Fatal(msg)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the writes waited for the locked database")
	}
	unlock()

	st := p.srv.mustStore(t, a.did)
	for rkey, want := range map[string]string{"3kabcdefghi22": "created", "3kabcdefghi23": "applied", "3kabcdefghi24": "created after"} {
		_, b, err := st.GetRecord(ctx, "app.bsky.feed.post", syntax.RecordKey(rkey))
		if err != nil || !bytes.Contains(b, []byte(want)) {
			t.Errorf("record %s: %q, %v; want the text %q", rkey, b, err, want)
		}
	}
}
