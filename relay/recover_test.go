package relay_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay"
	"github.com/welkin-atproto/welkin/relay/eventlog"
	"github.com/welkin-atproto/welkin/relay/store"
)

// TestRecoverFromLog leaves the relay's data as a crash between its log
// and its store does: events in the log whose account states were never
// stored. On start the relay replays the log into the account states, so
// that the upstream's replay of a commit is refused as a duplicate
// instead of being logged again under a new seq, and the host the replay
// came from adopts the account; and a restoration from a local takedown,
// which no upstream repeats, is not lost, while a takedown's own event
// leaves the takedown.
func TestRecoverFromLog(t *testing.T) {
	plcURL := startPLC(t)
	home := newUpstream(t)
	acct := newFakeAccount(t, plcURL, home.host)
	c1 := acct.commit(t)

	dir := t.TempDir()
	restored, kept := syntax.DID("did:plc:rrrrrrrrrrrrrrrrrrrrrrrr"), syntax.DID("did:plc:kkkkkkkkkkkkkkkkkkkkkkkk")
	st, err := store.Open(context.Background(), filepath.Join(dir, relay.DBFileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, did := range []syntax.DID{restored, kept} {
		if err := st.PutAccount(context.Background(), store.Account{DID: did, Host: home.host, TakenDown: true}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	l, err := eventlog.Open(eventlog.Options{Dir: filepath.Join(dir, relay.EventsDir), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{
		frame(t, "#identity", map[string]any{"seq": int64(1), "did": string(acct.did), "time": syntax.DatetimeFromTime(time.Now()).String()}),
		commitFrame(t, c1)(2),
		accountFrame(t, kept, false, "takendown")(3),
		accountFrame(t, restored, true, "")(4),
	}
	if _, err := l.AppendBatch(len(frames), func(i int, seq int64) ([]byte, syntax.DID, error) {
		return frames[i], "", nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	home.send(t, commitFrame(t, c1)) // the upstream's replay
	r := startRelay(t, dir, plcURL, home.host)
	waitFor(t, "the replayed commit handled", func() bool { return hostSeq(t, r.url, home.host) == 1 })
	if n := countedReason(t, r.url, "#commit", "ignored", "duplicate-rev"); n != 1 {
		t.Errorf("ignored duplicate-rev events = %v, want 1", n)
	}
	var latest atproto.SyncGetLatestCommit_Output
	getJSON(t, r.url+"/xrpc/com.atproto.sync.getLatestCommit?did="+string(acct.did), &latest)
	if latest.Rev != c1.Rev || latest.Cid != c1.Commit.String() {
		t.Errorf("getLatestCommit = %+v, want rev %s", latest, c1.Rev)
	}
	// The account's host is known again: reads are sent there.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(r.url + "/xrpc/com.atproto.sync.getRepo?did=" + string(acct.did))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, home.host) {
		t.Errorf("getRepo = %d to %q, want a redirect to %s", resp.StatusCode, loc, home.host)
	}

	if rs := repoStatus(t, r.url, restored); !rs.Active {
		t.Errorf("the restored account: %s", statusOf(rs))
	}
	if rs := repoStatus(t, r.url, kept); rs.Active || rs.Status == nil || *rs.Status != "takendown" {
		t.Errorf("the account taken down: %s", statusOf(rs))
	}

	c2 := acct.commit(t)
	home.send(t, commitFrame(t, c2))
	waitFor(t, "the next commit handled", func() bool { return hostSeq(t, r.url, home.host) == 2 })
	relayed := follow(t, r.url, 0)
	waitFor(t, "the relay's stream", func() bool { return len(relayed.snapshot()) >= 5 })
	got := relayed.snapshot()
	want := []string{"#identity " + string(acct.did), "#commit " + c1.Rev, "#account " + string(kept), "#account " + string(restored), "#commit " + c2.Rev}
	if len(got) != len(want) {
		t.Fatalf("relayed %d events, want %d", len(got), len(want))
	}
	for i, m := range got {
		if k := eventKey(t, m); k != want[i] || m.Seq != int64(i+1) {
			t.Errorf("event %d: %s seq %d, want %s seq %d", i, k, m.Seq, want[i], i+1)
		}
	}
}
