package relay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// adminPost posts body to an /admin/ route with the given password ("" for
// none) and returns the status and the decoded answer.
func adminPost(t *testing.T, base, path, password, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if password != "" {
		req.SetBasicAuth("admin", password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST %s: %d %q: %v", path, resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

// xrpcError calls a query and returns its status and error name.
func xrpcError(t *testing.T, u string) (int, string) {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

func repoStatus(t *testing.T, base string, did syntax.DID) atproto.SyncGetRepoStatus_Output {
	t.Helper()
	var rs atproto.SyncGetRepoStatus_Output
	getJSON(t, base+"/xrpc/com.atproto.sync.getRepoStatus?did="+string(did), &rs)
	return rs
}

func statusOf(rs atproto.SyncGetRepoStatus_Output) string {
	if rs.Status == nil {
		return fmt.Sprintf("active=%v", rs.Active)
	}
	return fmt.Sprintf("active=%v %s", rs.Active, *rs.Status)
}

// accountEventKey describes a relayed event, with the status of #account.
func accountEventKey(t *testing.T, m stream.Message) string {
	t.Helper()
	if m.Header.T != "#account" {
		return eventKey(t, m)
	}
	var ev atproto.SyncSubscribeRepos_Account
	if err := data.UnmarshalCBORInto(m.Body, &ev); err != nil {
		t.Fatal(err)
	}
	st := ""
	if ev.Status != nil {
		st = " " + *ev.Status
	}
	return fmt.Sprintf("#account %s active=%v%s", ev.Did, ev.Active, st)
}

// TestTakedown takes an account down at the relay and restores it: the
// takedown is announced, the account's commits and its host's #account
// events are dropped meanwhile without lifting it, the sync endpoints
// report it, restoring announces the host's status, and the gap the
// takedown left is closed by a re-sync. A takedown outlives a restart.
func TestTakedown(t *testing.T) {
	const pw = "relay-secret"
	plcURL := startPLC(t)
	home := newUpstream(t)
	acct := newFakeAccount(t, plcURL, home.host)
	c1 := acct.commit(t)
	home.send(t, commitFrame(t, c1))
	dir := t.TempDir()
	r := startRelay(t, dir, plcURL, home.host)
	waitFor(t, "the first commit", func() bool { return hostSeq(t, r.url, home.host) == 1 })

	body := fmt.Sprintf(`{"did": %q}`, acct.did)
	for _, c := range []struct {
		password, body string
		status         int
	}{
		{"", body, http.StatusUnauthorized},
		{"wrong", body, http.StatusUnauthorized},
		{pw, `{"did": 5}`, http.StatusBadRequest},
		{pw, `{"did": "not a did"}`, http.StatusBadRequest},
		{pw, `not json`, http.StatusBadRequest},
	} {
		if st, out := adminPost(t, r.url, "/admin/repos/takedown", c.password, c.body); st != c.status {
			t.Errorf("takedown with password %q, body %q: %d %v, want %d", c.password, c.body, st, out, c.status)
		}
	}
	if rs := repoStatus(t, r.url, acct.did); !rs.Active {
		t.Fatalf("refused takedowns took the account down: %s", statusOf(rs))
	}

	st, out := adminPost(t, r.url, "/admin/repos/takedown", pw, body)
	if st != http.StatusOK || out["active"] != false || out["status"] != "takendown" {
		t.Fatalf("takedown: %d %v", st, out)
	}
	if rs := repoStatus(t, r.url, acct.did); rs.Active || rs.Status == nil || *rs.Status != "takendown" || rs.Rev != nil {
		t.Errorf("getRepoStatus of a taken-down account: %s, rev %v", statusOf(rs), rs.Rev)
	}
	var repos atproto.SyncListRepos_Output
	getJSON(t, r.url+"/xrpc/com.atproto.sync.listRepos", &repos)
	if len(repos.Repos) != 1 || repos.Repos[0].Active == nil || *repos.Repos[0].Active || repos.Repos[0].Status == nil || *repos.Repos[0].Status != "takendown" {
		t.Errorf("listRepos = %+v", repos.Repos)
	}
	for _, m := range []string{"getRepo", "getRecord", "getLatestCommit"} {
		u := r.url + "/xrpc/com.atproto.sync." + m + "?did=" + string(acct.did) + "&collection=app.bsky.feed.post&rkey=post0001"
		if st, name := xrpcError(t, u); st != http.StatusBadRequest || name != "RepoTakendown" {
			t.Errorf("%s of a taken-down account: %d %s, want 400 RepoTakendown", m, st, name)
		}
	}

	// The host goes on: its commit is dropped, and its #account events
	// are kept but do not lift the takedown.
	home.send(t, commitFrame(t, acct.commit(t)))
	home.send(t, accountFrame(t, acct.did, true, ""))
	home.send(t, accountFrame(t, acct.did, false, "deactivated"))
	waitFor(t, "the host's events", func() bool { return hostSeq(t, r.url, home.host) == 4 })
	if n := countedReason(t, r.url, "#commit", "rejected", "takendown"); n != 1 {
		t.Errorf("commits dropped for the takedown = %v, want 1", n)
	}
	if n := countedReason(t, r.url, "#account", "rejected", "takendown"); n != 2 {
		t.Errorf("#account events dropped for the takedown = %v, want 2", n)
	}
	if rs := repoStatus(t, r.url, acct.did); rs.Active || rs.Status == nil || *rs.Status != "takendown" {
		t.Errorf("after the host's #account events: %s", statusOf(rs))
	}

	// Restoring announces what the host said last.
	st, out = adminPost(t, r.url, "/admin/repos/restore", pw, body)
	if st != http.StatusOK || out["active"] != false || out["status"] != "deactivated" {
		t.Fatalf("restore: %d %v", st, out)
	}
	home.send(t, accountFrame(t, acct.did, true, ""))
	// The commit dropped during the takedown left a gap: the next one
	// brings a re-sync.
	c3 := acct.commit(t)
	home.serveRepo(acct.did, http.StatusOK, acct.exportCAR(t))
	home.send(t, commitFrame(t, c3))
	waitFor(t, "the re-sync", func() bool { return resyncsCounted(t, r.url, "synced") == 1 })
	if rs := repoStatus(t, r.url, acct.did); !rs.Active || rs.Status != nil || rs.Rev == nil || *rs.Rev != c3.Rev {
		t.Errorf("after the re-sync: %s, rev %v", statusOf(rs), rs.Rev)
	}

	// An account the relay has not seen can be taken down ahead; only
	// known accounts can be restored.
	unseen := syntax.DID("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz")
	if st, out := adminPost(t, r.url, "/admin/repos/takedown", pw, fmt.Sprintf(`{"did": %q}`, unseen)); st != http.StatusOK {
		t.Fatalf("takedown of an unseen account: %d %v", st, out)
	}
	if st, out := adminPost(t, r.url, "/admin/repos/restore", pw, `{"did": "did:plc:yyyyyyyyyyyyyyyyyyyyyyyy"}`); st != http.StatusNotFound {
		t.Errorf("restore of an unknown account: %d %v, want 404", st, out)
	}
	if n := metricValue(t, r.url, "welkin_relay_takedowns_total{", `action="takedown"`); n != 2 {
		t.Errorf("takedowns counted = %v, want 2", n)
	}

	want := []string{
		"#commit " + c1.Rev,
		fmt.Sprintf("#account %s active=false takendown", acct.did),
		fmt.Sprintf("#account %s active=false deactivated", acct.did),
		fmt.Sprintf("#account %s active=true", acct.did),
		"#sync " + c3.Rev,
		fmt.Sprintf("#account %s active=false takendown", unseen),
	}
	relayed := follow(t, r.url, 0)
	waitFor(t, "the relay's stream", func() bool { return len(relayed.snapshot()) >= len(want) })
	got := relayed.snapshot()
	if len(got) != len(want) {
		t.Fatalf("relayed %d events, want %d", len(got), len(want))
	}
	for i, m := range got {
		if k := accountEventKey(t, m); k != want[i] || m.Seq != int64(i+1) {
			t.Errorf("event %d: %s (seq %d), want %s", i, k, m.Seq, want[i])
		}
	}

	// The takedown is stored.
	r.stop()
	r = startRelay(t, dir, plcURL)
	if rs := repoStatus(t, r.url, unseen); rs.Active || rs.Status == nil || *rs.Status != "takendown" {
		t.Errorf("after a restart: %s", statusOf(rs))
	}
}
