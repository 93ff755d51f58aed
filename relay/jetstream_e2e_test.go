package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/relay/jetstream"
)

// readJetstream connects to the relay's /subscribe with query and reads
// until it has n commit events of did, returning every event read.
func readJetstream(t *testing.T, base, query, did string, n int) []jetstream.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+base[len("http"):]+"/subscribe?"+query, nil)
	if err != nil {
		t.Fatalf("dialing /subscribe?%s: %v", query, err)
	}
	defer ws.CloseNow()
	var out []jetstream.Event
	for commits := 0; commits < n; {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("/subscribe?%s: after %d events: %v", query, len(out), err)
		}
		var ev jetstream.Event
		if err := json.Unmarshal(msg, &ev); err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		out = append(out, ev)
		if ev.DID == did && ev.Kind == jetstream.KindCommit {
			commits++
		}
	}
	return out
}

// TestRelayJetstream checks the JSON stream of a relay fed by a PDS: each
// op of a multi-op commit has its own time_us, times increase along the
// stream, and after a restart a time cursor replays the same events with
// the same times.
func TestRelayJetstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	plcURL := startPLC(t)
	pdsURL, pdsHost := startPDS(t, plcURL)
	anon := &xrpc.Client{Host: pdsURL}
	email, password := "alice@example.com", "alice-password"
	acct, err := atproto.ServerCreateAccount(ctx, anon, &atproto.ServerCreateAccount_Input{Handle: "alice.test", Email: &email, Password: &password})
	if err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	alice := &xrpc.Client{Host: pdsURL, Auth: xrpc.NewSessionAuth(acct.AccessJwt, acct.RefreshJwt)}
	var writes []*atproto.RepoApplyWrites_Input_Writes_Elem
	for i := range 3 {
		rkey := fmt.Sprintf("3mbatchbatch%c", "abc"[i])
		writes = append(writes, &atproto.RepoApplyWrites_Input_Writes_Elem{RepoApplyWrites_Create: &atproto.RepoApplyWrites_Create{
			Collection: "app.bsky.feed.post", Rkey: &rkey,
			Value: map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("batch %d", i), "createdAt": "2026-03-01T12:00:00.000Z"},
		}})
	}
	if _, err := atproto.RepoApplyWrites(ctx, alice, &atproto.RepoApplyWrites_Input{Repo: acct.Did, Writes: writes}); err != nil {
		t.Fatalf("applyWrites: %v", err)
	}
	writePost(t, alice, acct.Did, "after the batch")

	dir := t.TempDir()
	r1 := startRelay(t, dir, plcURL, pdsHost)
	first := readJetstream(t, r1.url, "cursor=0&wantedCollections=app.bsky.feed.*", acct.Did, 4)
	var batch []jetstream.Event
	for i, ev := range first {
		if i > 0 && ev.TimeUS <= first[i-1].TimeUS {
			t.Fatalf("time_us %d follows %d", ev.TimeUS, first[i-1].TimeUS)
		}
		if ev.Kind == jetstream.KindCommit && strings.HasPrefix(ev.Commit.RKey, "3mbatch") {
			batch = append(batch, ev)
		}
	}
	if len(batch) != 3 || batch[1].TimeUS != batch[0].TimeUS+1 || batch[2].TimeUS != batch[0].TimeUS+2 ||
		batch[0].Commit.Rev != batch[2].Commit.Rev {
		t.Fatalf("the batch's ops: %+v, want three ops of one commit at consecutive times", batch)
	}

	// Bad parameters are refused through the relay's mux too.
	resp, err := http.Get(r1.url + "/subscribe?wantedCollections=app.bsky")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid collection: app.bsky") {
		t.Fatalf("bad wantedCollections: %d %q", resp.StatusCode, body)
	}

	// A restart keeps the times: a cursor at the batch's second op
	// replays from there, identically.
	r1.stop()
	r2 := startRelay(t, dir, plcURL, pdsHost)
	again := readJetstream(t, r2.url, fmt.Sprintf("cursor=%d&wantedDids=%s", batch[1].TimeUS, acct.Did), acct.Did, 3)
	want := []jetstream.Event{batch[1], batch[2]}
	for _, ev := range first {
		if ev.DID == acct.Did && ev.TimeUS > batch[2].TimeUS {
			want = append(want, ev)
		}
	}
	gotJSON, _ := json.Marshal(again)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("after a restart, from cursor %d:\n got %s\nwant %s", batch[1].TimeUS, gotJSON, wantJSON)
	}
}
