package relay_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/welkin-atproto/welkin/relay"
)

// getPage fetches u without following redirects and returns the status,
// the body and the headers.
func getPage(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func statusJSON(t *testing.T, base, host string) hostReportJSON {
	t.Helper()
	var h hostReportJSON
	getJSON(t, base+"/status.json?host="+url.QueryEscape(host), &h)
	return h
}

const hostile = `<script>alert("x")</script>`

// TestStatusPage: a host over its event rate limit sees, on the public
// status page, its limit, why it is that, that it is throttled, and the
// events refused with their reasons, escaped; unknown and invalid hosts
// get a clear page.
func TestStatusPage(t *testing.T) {
	var frames [][]byte
	for range 10 {
		// An #identity whose did is markup: refused as bad-did while the
		// burst lasts, rate-limited after.
		frames = append(frames, frame(t, "#identity", map[string]any{"seq": int64(len(frames) + 1), "did": hostile, "time": "2026-01-01T00:00:00.000Z"}))
	}
	host := fakeUpstream(t, frames...)
	r := startRelayConfig(t, relay.Config{DataDir: t.TempDir(), PLCURL: "http://127.0.0.1:1", Hosts: []string{host},
		HostEventRate: 0.01, HostEventBurst: 3})
	waitFor(t, "every event handled", func() bool { return hostSeq(t, r.url, host) == 10 })

	code, body, hdr := getPage(t, r.url+"/")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, `<form action="/status" method="get">`) || !strings.Contains(body, `name="host"`) {
		t.Fatalf("landing page: %d %s\n%s", code, hdr.Get("Content-Type"), body)
	}

	code, body, hdr = getPage(t, r.url+"/status?host="+url.QueryEscape(host))
	if code != 200 {
		t.Fatalf("status page: %d\n%s", code, body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, want := range []string{
		`<h1>` + host + `</h1>`,
		`<span id="event-limit">0.01 events/s</span>, bursts of 3`,
		`<span class="why" id="event-limit-reason">new host (no event accepted yet): 0.01 events/s (bursts of 3); grows to 0.02 events/s once seen for 24 h`,
		`<span id="account-limit">100 accounts</span>`,
		`<dd id="throttled"><span class="bad">yes</span>: 7 events over the rate limit in the last 24 h`,
		`<dd id="last-seq">10</dd>`,
		`<span class="good">connected</span>`,
		`<td>rate-limited (&times;7)</td>`,
		`<td>bad-did</td><td>3</td>`,
		`&lt;script&gt;alert(`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the status page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Errorf("the status page holds unescaped markup from the host's events:\n%s", body)
	}
	if t.Failed() {
		t.Logf("status page:\n%s", body)
	}

	h := statusJSON(t, r.url, host)
	if !h.Throttled || h.RateLimited != 7 || h.errorCount("rate-limited") != 7 || h.errorCount("bad-did") != 3 ||
		!h.Connection.Connected || h.Limits.EventRate != 0.01 || h.Seq != 10 {
		t.Errorf("status.json = %+v", h)
	}

	// Unknown and invalid hosts.
	code, body, _ = getPage(t, r.url+"/status?host=unknown.example.com")
	if code != 404 || !strings.Contains(body, "This relay does not know that host") || !strings.Contains(body, "unknown.example.com") {
		t.Errorf("unknown host: %d\n%s", code, body)
	}
	code, body, _ = getPage(t, r.url+"/status?host="+url.QueryEscape(hostile))
	if code != 400 || strings.Contains(body, "<script") || !strings.Contains(body, "&lt;script&gt;") || !strings.Contains(body, "invalid hostname") {
		t.Errorf("hostile hostname: %d\n%s", code, body)
	}
	code, _, hdr = getPage(t, r.url+"/status")
	if code != http.StatusSeeOther || hdr.Get("Location") != "/" {
		t.Errorf("/status without a host: %d to %q", code, hdr.Get("Location"))
	}
	for q, want := range map[string]int{"unknown.example.com": 404, hostile: 400, "": 400} {
		code, body, hdr = getPage(t, r.url+"/status.json?host="+url.QueryEscape(q))
		if code != want || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || !strings.Contains(body, `"error":`) {
			t.Errorf("status.json?host=%q: %d %s", q, code, body)
		}
	}
}

// TestGarbageHostBacksOff: a host that sends a broken frame on every
// connection is not reconnected to at once forever: each short-lived
// connection counts as a failure in a row, which the backoff grows on,
// and the status shows it.
func TestGarbageHostBacksOff(t *testing.T) {
	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/com.atproto.sync.subscribeRepos", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		conns.Add(1)
		c.Write(r.Context(), websocket.MessageBinary, []byte{0xff, 0x00, 0x13, 0x37})
		c.CloseRead(r.Context())
		<-r.Context().Done()
	})
	ts := httptest.NewUnstartedServer(mux)
	ln, _ := listen(t)
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	host := strings.TrimPrefix(ts.URL, "http://")

	r := startRelayConfig(t, relay.Config{DataDir: t.TempDir(), PLCURL: "http://127.0.0.1:1", Hosts: []string{host}})
	var h hostReportJSON
	waitFor(t, "three failed connections in a row", func() bool {
		h = statusJSON(t, r.url, host)
		return h.Connection.Consecutive >= 3
	})
	if h.errorCount("bad-frame") < 3 || h.Connection.Failures < 3 || h.Connection.LastError == "" {
		t.Errorf("status after broken frames = %+v", h)
	}
	if n := conns.Load(); n > h.Connection.Attempts+1 {
		t.Errorf("%d connections reached the host, the relay counts %d attempts", n, h.Connection.Attempts)
	}
	_, body, _ := getPage(t, r.url+"/status?host="+url.QueryEscape(host))
	if !strings.Contains(body, "failed or short connections in a row") && !strings.Contains(body, `<span class="good">connected</span>`) {
		t.Errorf("the status page does not show the reconnection state:\n%s", body)
	}
}

// FuzzStatusHost requests the status pages with any host parameter: the
// answer is a page or a clear error, never a failure, and what was typed
// comes back escaped.
func FuzzStatusHost(f *testing.F) {
	for _, s := range []string{"pds.example.com", "localhost:2583", hostile, "http://x", "", "a\x00b", strings.Repeat("a.", 300)} {
		f.Add(s)
	}
	srv, err := relay.New(context.Background(), relay.Config{DataDir: f.TempDir(), PLCURL: "http://127.0.0.1:1", Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, host string) {
		for _, path := range []string{"/status", "/status.json"} {
			req := httptest.NewRequest("GET", path+"?host="+url.QueryEscape(host), nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 303, 400, 404:
			default:
				t.Fatalf("%s?host=%q: status %d\n%s", path, host, rec.Code, rec.Body)
			}
			if path == "/status" && strings.Contains(rec.Body.String(), "<script") {
				t.Fatalf("%s?host=%q: unescaped markup\n%s", path, host, rec.Body)
			}
		}
	})
}
