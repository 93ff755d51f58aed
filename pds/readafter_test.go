package pds

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

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
	a := seedRepoAccount(t, p, "later.test")
	// The first commit is stored before the lock is taken.
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
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			conn.ExecContext(ctx, "ROLLBACK")
		}
	}()

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

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
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
