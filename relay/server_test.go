package relay_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
)

// fakeHost answers describeServer like a PDS, and nothing else.
func fakeHost(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/xrpc/com.atproto.server.describeServer" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"did":"did:web:localhost","availableUserDomains":[".test"]}`)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

// post sends a JSON body and returns the status and the error name.
func post(t *testing.T, u, user, pass string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &e)
	return resp.StatusCode, e.Error
}

func hostStatus(t *testing.T, base, host string) string {
	t.Helper()
	var hs atproto.SyncGetHostStatus_Output
	getJSON(t, base+"/xrpc/com.atproto.sync.getHostStatus?hostname="+host, &hs)
	if hs.Status == nil {
		t.Fatalf("getHostStatus %s: no status", host)
	}
	return *hs.Status
}

func TestRequestCrawlAndAdmin(t *testing.T) {
	r := startRelay(t, t.TempDir(), "http://127.0.0.1:1")
	crawl := r.url + "/xrpc/com.atproto.sync.requestCrawl"

	var health map[string]string
	getJSON(t, r.url+"/xrpc/_health", &health)
	if health["version"] == "" {
		t.Fatalf("_health = %v", health)
	}

	if code, name := post(t, crawl, "", "", map[string]string{"hostname": "not a host"}); code != 400 || name != "InvalidRequest" {
		t.Fatalf("bad hostname: %d %s", code, name)
	}
	// A host that does not answer describeServer is not added.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadHost := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	if code, name := post(t, crawl, "", "", map[string]string{"hostname": deadHost}); code != 400 || name != "HostNotReachable" {
		t.Fatalf("dead host: %d %s", code, name)
	}
	resp, err := http.Get(r.url + "/xrpc/com.atproto.sync.getHostStatus?hostname=" + deadHost)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("getHostStatus of a host never added: %d", resp.StatusCode)
	}

	host := fakeHost(t)
	if code, name := post(t, crawl, "", "", map[string]string{"hostname": host}); code != 200 {
		t.Fatalf("requestCrawl: %d %s", code, name)
	}
	if s := hostStatus(t, r.url, host); s != "active" {
		t.Fatalf("status after crawl = %s", s)
	}
	var hosts atproto.SyncListHosts_Output
	getJSON(t, r.url+"/xrpc/com.atproto.sync.listHosts", &hosts)
	if len(hosts.Hosts) != 1 || hosts.Hosts[0].Hostname != host {
		t.Fatalf("listHosts = %+v", hosts.Hosts)
	}

	block := r.url + "/admin/hosts/block"
	if code, _ := post(t, block, "", "", map[string]string{"hostname": host}); code != 401 {
		t.Fatalf("block without auth: %d", code)
	}
	if code, _ := post(t, block, "admin", "wrong", map[string]string{"hostname": host}); code != 401 {
		t.Fatalf("block with a wrong password: %d", code)
	}
	if code, name := post(t, block, "admin", "relay-secret", map[string]string{"hostname": "nope.example.com"}); code != 404 {
		t.Fatalf("block unknown host: %d %s", code, name)
	}
	if code, name := post(t, block, "admin", "relay-secret", map[string]string{"hostname": host}); code != 200 {
		t.Fatalf("block: %d %s", code, name)
	}
	if s := hostStatus(t, r.url, host); s != "blocked" {
		t.Fatalf("status after block = %s", s)
	}
	if code, name := post(t, crawl, "", "", map[string]string{"hostname": host}); code != 403 {
		t.Fatalf("requestCrawl of a blocked host: %d %s", code, name)
	}
	if code, name := post(t, r.url+"/admin/hosts/unblock", "admin", "relay-secret", map[string]string{"hostname": host}); code != 200 {
		t.Fatalf("unblock: %d %s", code, name)
	}
	if s := hostStatus(t, r.url, host); s != "active" {
		t.Fatalf("status after unblock = %s", s)
	}

	other := fakeHost(t)
	add := r.url + "/admin/hosts/add"
	if code, name := post(t, add, "admin", "relay-secret", map[string]any{"hostname": other, "trusted": true}); code != 200 {
		t.Fatalf("admin add: %d %s", code, name)
	}
	if code, _ := post(t, add, "admin", "relay-secret", map[string]any{"hostname": "bad host"}); code != 400 {
		t.Fatalf("admin add of a bad hostname: %d", code)
	}
	if code, _ := post(t, add, "admin", "relay-secret", "not an object"); code != 400 {
		t.Fatalf("admin add with a bad body: %d", code)
	}

	if code, name := post(t, r.url+"/xrpc/com.atproto.sync.getRepoStatus?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "", "", nil); code == 200 {
		t.Fatalf("POST to a query: %d %s", code, name)
	}
	resp, err = http.Get(r.url + "/xrpc/com.atproto.sync.getLatestCommit?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Error != "RepoNotFound" {
		t.Fatalf("getLatestCommit of an unknown repo: %d %s", resp.StatusCode, e.Error)
	}
}
