package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/relay"
)

// chromiumPath is Debian's Chromium, which the browser test drives.
const chromiumPath = "/usr/bin/chromium"

// requireChromium skips the test (or fails it in CI) without Chromium.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := "BROWSER TEST NOT RUN: " + chromiumPath + " is missing; install Debian's chromium package to run it"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// throttledUpstream is a PDS stream on a loopback port that sends n
// #identity events at once on every connection (after the cursor), each
// with a did that is not a DID: the relay refuses the first ones as
// bad-did while its burst lasts, and the rest for its rate limit.
func throttledUpstream(t *testing.T, n int) string {
	t.Helper()
	frames := make([][]byte, n)
	for i := range frames {
		f, err := stream.EncodeFrame("#identity", map[string]any{
			"seq": int64(i + 1), "did": "not-a-did", "time": "2026-01-01T00:00:00.000Z",
		})
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = f
	}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/com.atproto.sync.subscribeRepos", func(w http.ResponseWriter, r *http.Request) {
		cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for i := max(cursor, 0); i < len(frames); i++ {
			if err := c.WriteMessage(websocket.BinaryMessage, frames[i]); err != nil {
				return
			}
		}
		// Stay connected, as a quiet PDS does, until the relay leaves.
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestRelayStatusPageInBrowser runs a relay following a host that sends
// more events than its event rate limit, opens the relay's landing page
// in Chromium, types the host's name into the form and checks that the
// host's page shows its event limit, the reason for that limit, that it
// is throttled, and the refused events with their reasons.
func TestRelayStatusPageInBrowser(t *testing.T) {
	requireNode(t)
	requireChromium(t)
	const events, burst = 12, 3
	host := throttledUpstream(t, events)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	srv, err := relay.New(t.Context(), relay.Config{
		Host:               "127.0.0.1",
		Port:               ln.Addr().(*net.TCPAddr).Port,
		DataDir:            t.TempDir(),
		PLCURL:             "http://127.0.0.1:1", // no identity is resolved
		Hosts:              []string{host},
		AllowInsecureHosts: true,
		// A new host's limit, made small enough for a dozen events to
		// pass it.
		HostEventRate:  0.01,
		HostEventBurst: burst,
		Logger:         slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("relay: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("closing the relay: %v", err)
		}
		if t.Failed() {
			t.Logf("relay logs:\n%s", logs.String())
		}
	})
	base := "http://" + ln.Addr().String()

	// Wait until the relay has handled every event.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Seq       int64 `json:"seq"`
			Throttled bool  `json:"throttled"`
		}
		if err := getJSONStatus(base+"/status.json?host="+url.QueryEscape(host), &st); err == nil && st.Seq == events && st.Throttled {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the relay did not handle the host's %d events in time (last answer %+v, %v)", events, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	in, _ := json.Marshal(map[string]any{"relay": base, "hostname": host, "chromium": chromiumPath, "timeoutMs": 30000})
	out, err := runNode(t, in, "status_page.js")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		LandingStatus      int        `json:"landingStatus"`
		LandingTitle       string     `json:"landingTitle"`
		URL                string     `json:"url"`
		HTTPStatus         int        `json:"httpStatus"`
		Status             string     `json:"status"`
		Heading            string     `json:"heading"`
		Connection         string     `json:"connection"`
		LastSeq            string     `json:"last-seq"`
		AccountLimit       string     `json:"account-limit"`
		AccountLimitReason string     `json:"account-limit-reason"`
		EventLimit         string     `json:"event-limit"`
		EventLimitReason   string     `json:"event-limit-reason"`
		Throttled          string     `json:"throttled"`
		Rejections         [][]string `json:"rejections"`
	}
	if err := json.Unmarshal(out, &page); err != nil {
		t.Fatalf("status_page.js printed %q: %v", out, err)
	}
	t.Logf("the browser saw: %s", out)

	if page.LandingStatus != 200 || page.HTTPStatus != 200 || !strings.Contains(page.URL, "/status?host=") || page.Heading != host || page.Status != "active" {
		t.Errorf("the form led to %s (%d), heading %q, status %q; landing page %d %q",
			page.URL, page.HTTPStatus, page.Heading, page.Status, page.LandingStatus, page.LandingTitle)
	}
	if page.EventLimit != "0.01 events/s" {
		t.Errorf("event limit shown = %q, want 0.01 events/s", page.EventLimit)
	}
	if want := "new host (no event accepted yet): 0.01 events/s (bursts of 3); grows to 0.02 events/s once seen for 24 h"; !strings.HasPrefix(page.EventLimitReason, want) {
		t.Errorf("event limit reason shown = %q, want it to start with %q", page.EventLimitReason, want)
	}
	if want := fmt.Sprintf("yes: %d events over the rate limit", events-burst); !strings.HasPrefix(page.Throttled, want) {
		t.Errorf("throttled shown = %q, want it to start with %q", page.Throttled, want)
	}
	if page.AccountLimit != "100 accounts" || !strings.HasPrefix(page.AccountLimitReason, "new host") {
		t.Errorf("account limit shown = %q (%q)", page.AccountLimit, page.AccountLimitReason)
	}
	if page.LastSeq != strconv.Itoa(events) || !strings.HasPrefix(page.Connection, "connected") {
		t.Errorf("last seq %q, connection %q", page.LastSeq, page.Connection)
	}
	reasons := map[string]bool{}
	for _, row := range page.Rejections {
		if len(row) > 2 {
			reasons[strings.Fields(row[2])[0]] = true
		}
	}
	if !reasons["rate-limited"] || !reasons["bad-did"] {
		t.Errorf("recent rejections shown = %v, want rate-limited and bad-did among them", page.Rejections)
	}
}

// getJSONStatus fetches a JSON document into out.
func getJSONStatus(u string, out any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}
