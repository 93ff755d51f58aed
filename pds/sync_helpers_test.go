package pds

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// postCollection is the collection of the test records.
const postCollection = syntax.NSID("app.bsky.feed.post")

// postValue is the DAG-CBOR of a post record with text.
func postValue(t testing.TB, text string) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{
		"$type":     string(postCollection),
		"text":      text,
		"createdAt": "2024-01-02T03:04:05.000Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func createPost(t testing.TB, rkey, text string) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionCreate, Collection: postCollection,
		RKey: syntax.RecordKey(rkey), Value: postValue(t, text)}
}

func updatePost(t testing.TB, rkey, text string) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionUpdate, Collection: postCollection,
		RKey: syntax.RecordKey(rkey), Value: postValue(t, text)}
}

func deletePost(rkey string) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionDelete, Collection: postCollection, RKey: syntax.RecordKey(rkey)}
}

// commit applies writes to did's repository through the PDS's write path.
func commit(t testing.TB, p *testPDS, did syntax.DID, writes ...repo.RecordWrite) *repo.CommitResult {
	t.Helper()
	res, err := p.srv.commitWrites(context.Background(), did, writes, commitOpts{})
	if err != nil {
		t.Fatalf("commit to %s: %v", did, err)
	}
	return res
}

// rawResponse is an XRPC response read whole.
type rawResponse struct {
	status int
	header http.Header
	body   []byte
	err    string // the XRPC error name of a failure
}

// get makes a GET XRPC call with the given query and extra headers and
// reads the whole response.
func (p *testPDS) get(nsid string, query url.Values, header http.Header) rawResponse {
	p.t.Helper()
	u := p.url + "/xrpc/" + nsid
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("GET %s: %v", nsid, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("GET %s: reading the body: %v", nsid, err)
	}
	r := rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(b, &e)
		r.err = e.Error
	}
	return r
}

// getJSON is get for a JSON response, decoded into out on success.
func (p *testPDS) getJSON(nsid string, query url.Values, header http.Header, out any) rawResponse {
	p.t.Helper()
	r := p.get(nsid, query, header)
	if r.status == http.StatusOK && out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			p.t.Fatalf("%s: decode %s: %v", nsid, r.body, err)
		}
	}
	return r
}

// mustOK fails the test unless r is a 200.
func (r rawResponse) mustOK(t testing.TB, what string) rawResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d %s: %s", what, r.status, r.err, r.body)
	}
	return r
}

// wantError fails the test unless r is the error given.
func (r rawResponse) wantError(t testing.TB, what string, status int, name string) {
	t.Helper()
	if r.status != status || r.err != name {
		t.Errorf("%s: got %d %q (%s), want %d %q", what, r.status, r.err, truncateBody(r.body), status, name)
	}
}

func truncateBody(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func params(kv ...string) url.Values {
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("params: odd arguments %q", kv))
	}
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func basicAuth(user, pass string) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, pass)
	return http.Header{"Authorization": {req.Header.Get("Authorization")}}
}

// wsURL is the PDS's subscribeRepos WebSocket URL.
func (p *testPDS) wsURL() string {
	return "ws" + strings.TrimPrefix(p.url, "http") + "/xrpc/com.atproto.sync.subscribeRepos"
}
