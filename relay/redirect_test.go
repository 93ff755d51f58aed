package relay_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// checkRedirects checks that the relay sends repository reads of did to
// its PDS (reached as pdsHost over plain http), and answers errors itself
// for unknown accounts and bad requests.
func checkRedirects(t *testing.T, relayURL, pdsHost, did string) {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	for _, q := range []string{
		"/xrpc/com.atproto.sync.getRepo?did=" + did,
		"/xrpc/com.atproto.sync.getRecord?did=" + did + "&collection=app.bsky.feed.post&rkey=x",
	} {
		resp, err := noFollow.Get(relayURL + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "http://" + pdsHost + q; resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want 302 to %q", q, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// Followed, the redirect gives the account's repository.
	resp, err := http.Get(relayURL + "/xrpc/com.atproto.sync.getRepo?did=" + did)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.ipld.car" || len(body) == 0 {
		t.Errorf("getRepo through the relay: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	for q, wantErr := range map[string]string{
		"/xrpc/com.atproto.sync.getRepo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa": "RepoNotFound",
		"/xrpc/com.atproto.sync.getRepo?did=nonsense":                         "InvalidRequest",
		"/xrpc/com.atproto.sync.getBlob":                                      "InvalidRequest",
	} {
		resp, err := noFollow.Get(relayURL + q)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Error != wantErr {
			t.Errorf("GET %s: %d %q, want 400 %s", q, resp.StatusCode, e.Error, wantErr)
		}
	}
}
