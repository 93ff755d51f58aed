package relay_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/relay"
)

// hostReportJSON is what /admin/hosts and /status.json say of a host.
type hostReportJSON struct {
	Hostname string    `json:"hostname"`
	Status   string    `json:"status"`
	Seq      int64     `json:"seq"`
	First    time.Time `json:"firstSeen"`
	Accounts int64     `json:"accountCount"`
	Limits   struct {
		Step               string  `json:"step"`
		AccountLimit       int64   `json:"accountLimit"`
		AccountLimitReason string  `json:"accountLimitReason"`
		EventRate          float64 `json:"eventRate"`
		EventBurst         int     `json:"eventBurst"`
		EventRateReason    string  `json:"eventRateReason"`
	} `json:"limits"`
	Overrides struct {
		AccountLimit int64   `json:"accountLimit"`
		EventRate    float64 `json:"eventRate"`
		EventBurst   int64   `json:"eventBurst"`
	} `json:"overrides"`
	Throttled   bool  `json:"throttled"`
	RateLimited int64 `json:"rateLimitedLastDay"`
	Connection  struct {
		Connected   bool      `json:"connected"`
		Attempts    int64     `json:"attempts"`
		Failures    int64     `json:"failures"`
		Consecutive int       `json:"consecutiveFailures"`
		LastError   string    `json:"lastError"`
		NextAttempt time.Time `json:"nextAttempt"`
	} `json:"connection"`
	Errors []struct {
		Reason string `json:"reason"`
		Count  int64  `json:"count"`
	} `json:"errors"`
	Rejections []struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
		DID    string `json:"did"`
		Detail string `json:"detail"`
		Count  int64  `json:"count"`
	} `json:"recentRejections"`
}

func (h hostReportJSON) errorCount(reason string) int64 {
	for _, e := range h.Errors {
		if e.Reason == reason {
			return e.Count
		}
	}
	return 0
}

// adminCall sends an admin request with the password and decodes the
// JSON answer into out (when not nil); it returns the status code.
func adminCall(t *testing.T, method, u, pass string, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if pass != "" {
		req.SetBasicAuth("admin", pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, u, err, raw)
		}
	}
	return resp.StatusCode
}

func listHostsAdmin(t *testing.T, base string) []hostReportJSON {
	t.Helper()
	var out struct {
		Hosts []hostReportJSON `json:"hosts"`
	}
	if code := adminCall(t, "GET", base+"/admin/hosts", "pw", "", &out); code != 200 {
		t.Fatalf("GET /admin/hosts: %d", code)
	}
	return out.Hosts
}

// TestAdminHostLimits sets and clears a host's limits through the admin
// API, and checks that the account limit holds: a second account from a
// host limited to one is refused, counted and listed with its reason.
func TestAdminHostLimits(t *testing.T) {
	plcURL := startPLC(t)
	pds := newFakePDS(t)
	r := startRelayConfig(t, relay.Config{DataDir: t.TempDir(), PLCURL: plcURL, Hosts: []string{pds.host}, AdminPassword: "pw"})
	hosts, limits := r.url+"/admin/hosts", r.url+"/admin/hosts/limits"

	if code := adminCall(t, "GET", hosts, "", "", nil); code != 401 {
		t.Fatalf("listing without auth: %d", code)
	}
	if code := adminCall(t, "GET", hosts, "wrong", "", nil); code != 401 {
		t.Fatalf("listing with a wrong password: %d", code)
	}
	list := listHostsAdmin(t, r.url)
	if len(list) != 1 || list[0].Hostname != pds.host || list[0].Status != "active" {
		t.Fatalf("hosts = %+v", list)
	}
	l := list[0].Limits
	if l.Step != "new" || l.AccountLimit != relay.DefaultAccountLimit || l.EventRate != relay.DefaultHostEventRate ||
		!strings.Contains(l.AccountLimitReason, "new host (no event accepted yet)") || !strings.Contains(l.EventRateReason, "grows to") {
		t.Fatalf("limits of a new host = %+v", l)
	}

	var rep hostReportJSON
	if code := adminCall(t, "POST", limits, "pw", `{"hostname": "`+pds.host+`", "accountLimit": 1}`, &rep); code != 200 {
		t.Fatalf("setting the account limit: %d", code)
	}
	if rep.Limits.AccountLimit != 1 || rep.Limits.AccountLimitReason != "set by admin: 1 account" || rep.Overrides.AccountLimit != 1 ||
		rep.Limits.EventRate != relay.DefaultHostEventRate {
		t.Fatalf("after setting the account limit: %+v", rep)
	}

	a1, a2 := newFakeAccount(t, plcURL, pds.host), newFakeAccount(t, plcURL, pds.host)
	pds.send(commitFrame(t, a1.commit(t)))
	last := pds.send(commitFrame(t, a2.commit(t)))
	waitFor(t, "both commits handled", func() bool { return hostSeq(t, r.url, pds.host) == last })
	if got := countedReason(t, r.url, "#commit", "rejected", "host-account-limit"); got != 1 {
		t.Errorf("host-account-limit rejections counted = %v, want 1", got)
	}
	h := listHostsAdmin(t, r.url)[0]
	if h.Accounts != 1 || h.Seq != last || h.First.IsZero() || h.errorCount("host-account-limit") != 1 {
		t.Errorf("after two accounts: %d accounts, seq %d, first seen %v, errors %+v", h.Accounts, h.Seq, h.First, h.Errors)
	}
	// The two accounts are handled in parallel: either may be refused.
	if len(h.Rejections) != 1 || h.Rejections[0].Reason != "host-account-limit" ||
		(h.Rejections[0].DID != string(a1.did) && h.Rejections[0].DID != string(a2.did)) ||
		!strings.Contains(h.Rejections[0].Detail, "limit of 1 account (set by admin") {
		t.Errorf("recent rejections = %+v", h.Rejections)
	}
	if !strings.Contains(h.Limits.EventRateReason, "first seen") {
		t.Errorf("the first accepted event did not start the host's age: %q", h.Limits.EventRateReason)
	}

	// Fields left out stay; 0 hands a limit back to the policy.
	if code := adminCall(t, "POST", limits, "pw", `{"hostname": "`+pds.host+`", "eventRate": 3, "eventBurst": 6}`, &rep); code != 200 {
		t.Fatalf("setting the event rate: %d", code)
	}
	if rep.Limits.AccountLimit != 1 || rep.Limits.EventRate != 3 || rep.Limits.EventBurst != 6 ||
		!strings.HasPrefix(rep.Limits.EventRateReason, "set by admin: 3 events/s (bursts of 6, set by admin)") {
		t.Fatalf("after setting the event rate: %+v", rep.Limits)
	}
	if code := adminCall(t, "POST", limits, "pw", `{"hostname": "`+pds.host+`", "accountLimit": 0, "eventRate": 0, "eventBurst": 0}`, &rep); code != 200 {
		t.Fatalf("clearing the limits: %d", code)
	}
	if rep.Limits.AccountLimit != relay.DefaultAccountLimit || rep.Limits.EventRate != relay.DefaultHostEventRate ||
		rep.Limits.EventBurst != relay.DefaultHostEventBurst || rep.Overrides.AccountLimit != 0 {
		t.Fatalf("after clearing the limits: %+v", rep)
	}

	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"hostname": "` + pds.host + `", "eventRate": -1}`, 400},
		{`{"hostname": "` + pds.host + `", "accountLimit": -5}`, 400},
		{`{"hostname": "` + pds.host + `", "eventBurst": 1e12}`, 400},
		{`{"hostname": "` + pds.host + `"}`, 400},
		{`{"hostname": "` + pds.host + `", "accountLimit": 5, "bogus": 1}`, 400},
		{`{"accountLimit": 5}`, 400},
		{`{"hostname": "bad host", "accountLimit": 5}`, 400},
		{`not json`, 400},
		{`{"hostname": "nope.example.com", "accountLimit": 5}`, 404},
	} {
		if code := adminCall(t, "POST", limits, "pw", tc.body, nil); code != tc.want {
			t.Errorf("POST /admin/hosts/limits %s: %d, want %d", tc.body, code, tc.want)
		}
	}
	if code := adminCall(t, "POST", limits, "", `{"hostname": "`+pds.host+`", "accountLimit": 5}`, nil); code != 401 {
		t.Errorf("setting limits without auth: %d", code)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?cursor=x"} {
		if code := adminCall(t, "GET", hosts+q, "pw", "", nil); code != 400 {
			t.Errorf("GET /admin/hosts%s: %d, want 400", q, code)
		}
	}
}
