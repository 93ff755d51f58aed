package pds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// The crash test runs the PDS in a child process (this test binary, in
// TestCrashChild) and kills it with SIGKILL at random moments while many
// accounts write concurrently. After the last kill it checks, from the
// outside, what the acceptance criteria of a durable PDS demand:
//
//   - every acknowledged write is still there (against a client-side log of
//     uri, cid and rev);
//   - the firehose is gap-free: seqs increase by one and are never reused,
//     and an event a consumer saw before a crash is the same event after it;
//   - per account, the #commit events form an unbroken rev/since chain whose
//     last event is the repository's current commit: no commit without its
//     event, no event for a commit that was rolled back, no rev reused;
//   - every repository exports and verifies.

// crashKillsEnv sets the number of kills (default crashKills; make
// test-long raises it).
const crashKillsEnv = "WELKIN_CRASH_KILLS"

const crashKills = 20

const crashChildEnv = "WELKIN_PDS_CRASH_CHILD"

// TestCrashChild is the child process of TestCrashDurability: it serves a
// PDS on the data dir and port given in its environment until killed. Run
// directly, it skips.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("child process of TestCrashDurability")
	}
	parts := strings.SplitN(spec, "|", 3)
	if len(parts) != 3 {
		t.Fatalf("bad %s=%q", crashChildEnv, spec)
	}
	port, _ := strconv.Atoi(parts[1])
	cfg := Config{
		Hostname:             "localhost",
		Host:                 "127.0.0.1",
		Port:                 port,
		DataDir:              parts[0],
		PLCURL:               parts[2],
		HandleDomains:        []string{".test"},
		AllowPrivateNetworks: true,
		Logger:               slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	srv.Serve(context.Background(), ln)
}

// crashChild is one run of the child process.
type crashChild struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startCrashChild(t *testing.T, dir string, port int, plcURL string) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|%s", crashChildEnv, dir, port, plcURL))
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("crash child exited before ready:\n%s", stderr)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("crash child not ready within a minute:\n%s", stderr)
	}
	return &crashChild{cmd: cmd, out: stderr}
}

func (c *crashChild) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
}

// ackedWrite is one createRecord the PDS acknowledged.
type ackedWrite struct {
	URI, CID, Rev string
}

// crashAccount is an account of the crash test.
type crashAccount struct {
	DID    syntax.DID
	Handle string
	Token  string
	Doc    json.RawMessage

	mu    sync.Mutex
	acked []ackedWrite
}

// liveEvent is a #commit event as a consumer saw it.
type liveEvent struct {
	Seq    int64
	Repo   string
	Rev    string
	Since  string
	Commit string
}

func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	kills := crashKills
	if v := os.Getenv(crashKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashKillsEnv, v)
		}
		kills = n
	}
	plcURL := startTestPLC(t)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	hc := &http.Client{Timeout: 10 * time.Second}

	// Accounts are created through the API on the first run.
	const nAccounts = 8
	child := startCrashChild(t, dir, port, plcURL)
	accounts := make([]*crashAccount, nAccounts)
	for i := range accounts {
		handle := fmt.Sprintf("crash%d.test", i)
		var out struct {
			DID       string          `json:"did"`
			AccessJwt string          `json:"accessJwt"`
			DidDoc    json.RawMessage `json:"didDoc"`
		}
		status, body := httpJSON(hc, "POST", base+"/xrpc/com.atproto.server.createAccount", "",
			map[string]string{"handle": handle, "email": handle + "@example.com", "password": "password"}, &out)
		if status != http.StatusOK {
			child.kill()
			t.Fatalf("createAccount %s: %d %s\n%s", handle, status, body, child.out)
		}
		accounts[i] = &crashAccount{DID: syntax.DID(out.DID), Handle: handle, Token: out.AccessJwt, Doc: out.DidDoc}
	}

	// A firehose consumer runs for the whole test, across restarts.
	var liveMu sync.Mutex
	live := map[int64]liveEvent{}
	subCtx, subCancel := context.WithCancel(context.Background())
	subDone := make(chan error, 1)
	go func() {
		subDone <- stream.Subscribe(subCtx, "ws"+strings.TrimPrefix(base, "http")+"/xrpc/com.atproto.sync.subscribeRepos", 0,
			func(ctx context.Context, m stream.Message) error {
				if m.Header.T != "#commit" {
					return nil
				}
				ev, err := decodeCommitEvent(m.Body)
				if err != nil {
					return err
				}
				liveMu.Lock()
				live[ev.Seq] = ev
				liveMu.Unlock()
				return nil
			}, &stream.SubscribeOptions{MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for cycle := 0; cycle < kills; cycle++ {
		if cycle > 0 {
			child = startCrashChild(t, dir, port, plcURL)
		}
		startAcks := ackedTotal(accounts)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, a := range accounts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashWriter(hc, base, a, stop)
			}()
		}
		// Crash at a random moment: after a random number of acknowledged
		// writes, while the writers are still going.
		target := 1 + rng.IntN(80)
		deadline := time.Now().Add(time.Minute)
		for ackedTotal(accounts) < startAcks+target {
			if time.Now().After(deadline) {
				child.kill()
				t.Fatalf("cycle %d: fewer than %d writes acknowledged within a minute:\n%s", cycle, target, child.out)
			}
			time.Sleep(time.Millisecond)
		}
		child.kill()
		close(stop)
		wg.Wait()
	}

	// Stop the live consumer, then start the PDS a last time, in this
	// process, and check that everything is in order.
	subCancel()
	<-subDone
	p := startPDS(t, dir, plcURL, nil)
	base = p.url
	ctx := context.Background()
	for _, a := range accounts {
		if err := p.srv.seq.Flush(ctx, a.DID); err != nil {
			t.Fatalf("flush %s: %v", a.DID, err)
		}
	}
	latest, err := p.srv.seq.LatestSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}

	total := 0
	for _, a := range accounts {
		total += len(a.acked)
	}
	if total == 0 {
		t.Fatal("no write was acknowledged in any cycle; the test proves nothing")
	}
	t.Logf("%d kills, %d acknowledged writes over %d accounts", kills, total, nAccounts)

	checkRecovered(t, hc, base, accounts, latest, live, "the crashes")
}

// checkRecovered checks a PDS at base after a series of faults (after
// names them): every acknowledged write is readable with its CID, every
// repository exports and verifies against its account's key, the firehose
// log up to latest holds the events a live consumer saw and, per account,
// an unbroken rev chain that covers every acknowledged commit and ends at
// the repository's head.
func checkRecovered(t *testing.T, hc *http.Client, base string, accounts []*crashAccount, latest int64, live map[int64]liveEvent, after string) {
	t.Helper()
	for _, a := range accounts {
		// Every acknowledged write is there, with its CID.
		for _, w := range a.acked {
			parts := strings.Split(strings.TrimPrefix(w.URI, "at://"), "/")
			var rec struct {
				CID string `json:"cid"`
			}
			status, body := httpJSON(hc, "GET", fmt.Sprintf("%s/xrpc/com.atproto.repo.getRecord?repo=%s&collection=%s&rkey=%s",
				base, parts[0], parts[1], parts[2]), "", nil, &rec)
			if status != http.StatusOK || rec.CID != w.CID {
				t.Errorf("acknowledged write %s (cid %s, rev %s) lost: %d %s", w.URI, w.CID, w.Rev, status, body)
			}
		}
		// The repository exports and verifies against the account's key.
		ident, err := identity.ParseIdentity(a.Doc)
		if err != nil {
			t.Fatalf("%s: DID document: %v", a.DID, err)
		}
		key, err := ident.SigningKey()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(base + "/xrpc/com.atproto.sync.getRepo?did=" + string(a.DID))
		if err != nil {
			t.Fatal(err)
		}
		_, err = repo.ImportCAR(context.Background(), resp.Body, repo.NewMemBlockStore(), repo.ImportOptions{DID: a.DID, PublicKey: key})
		resp.Body.Close()
		if err != nil {
			t.Errorf("%s: repository does not verify after %s: %v", a.DID, after, err)
		}
	}

	// The whole log, replayed from the start.
	replay := replayCommits(t, base, latest)

	bySeq := map[int64]liveEvent{}
	var seqs []int64
	for _, ev := range replay {
		bySeq[ev.Seq] = ev
		seqs = append(seqs, ev.Seq)
	}
	// Events a consumer saw live are the events in the log.
	for seq, ev := range live {
		if got, ok := bySeq[seq]; !ok || got != ev {
			t.Errorf("seq %d was %+v live but is %+v after %s", seq, ev, got, after)
		}
	}

	perRepo := map[string][]liveEvent{}
	for _, ev := range replay {
		perRepo[ev.Repo] = append(perRepo[ev.Repo], ev)
	}
	for _, a := range accounts {
		evs := perRepo[string(a.DID)]
		if len(evs) == 0 {
			t.Errorf("%s: no #commit event", a.DID)
			continue
		}
		revs := map[string]bool{}
		for i, ev := range evs {
			revs[ev.Rev] = true
			if i == 0 {
				if ev.Since != "" {
					t.Errorf("%s: first event has since %q", a.DID, ev.Since)
				}
				continue
			}
			if ev.Since != evs[i-1].Rev || ev.Rev <= evs[i-1].Rev {
				t.Errorf("%s: chain broken at seq %d: rev %s since %q after rev %s", a.DID, ev.Seq, ev.Rev, ev.Since, evs[i-1].Rev)
			}
		}
		for _, w := range a.acked {
			if !revs[w.Rev] {
				t.Errorf("%s: acknowledged commit rev %s has no firehose event", a.DID, w.Rev)
			}
		}
		var head struct {
			CID string `json:"cid"`
			Rev string `json:"rev"`
		}
		if status, body := httpJSON(hc, "GET", base+"/xrpc/com.atproto.sync.getLatestCommit?did="+string(a.DID), "", nil, &head); status != http.StatusOK {
			t.Fatalf("getLatestCommit: %d %s", status, body)
		}
		last := evs[len(evs)-1]
		if last.Commit != head.CID || last.Rev != head.Rev {
			t.Errorf("%s: head is %s (rev %s) but the last event is %s (rev %s)", a.DID, head.CID, head.Rev, last.Commit, last.Rev)
		}
	}
	if len(seqs) == 0 {
		t.Fatal("empty firehose")
	}
}

// ackedTotal counts the acknowledged writes of every account.
func ackedTotal(accounts []*crashAccount) int {
	n := 0
	for _, a := range accounts {
		a.mu.Lock()
		n += len(a.acked)
		a.mu.Unlock()
	}
	return n
}

// crashWriter creates records for a until stop is closed or the server
// goes away, logging what was acknowledged.
func crashWriter(hc *http.Client, base string, a *crashAccount, stop chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		var out struct {
			URI    string `json:"uri"`
			CID    string `json:"cid"`
			Commit struct {
				Rev string `json:"rev"`
			} `json:"commit"`
		}
		status, _ := httpJSON(hc, "POST", base+"/xrpc/com.atproto.repo.createRecord", a.Token, map[string]any{
			"repo":       string(a.DID),
			"collection": "app.bsky.feed.post",
			"record": map[string]any{
				"$type":     "app.bsky.feed.post",
				"text":      fmt.Sprintf("crash test post %d", i),
				"createdAt": syntax.DatetimeNow().String(),
			},
		}, &out)
		if status == http.StatusOK {
			a.mu.Lock()
			a.acked = append(a.acked, ackedWrite{URI: out.URI, CID: out.CID, Rev: out.Commit.Rev})
			a.mu.Unlock()
		} else if status == 0 {
			// The server is gone; wait for stop.
			<-stop
			return
		}
	}
}

// replayCommits reads the firehose from the start up to seq latest and
// checks that seqs run from 1 without gaps or repeats.
func replayCommits(t *testing.T, base string, latest int64) []liveEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []liveEvent
	var prev int64
	err := stream.Subscribe(ctx, "ws"+strings.TrimPrefix(base, "http")+"/xrpc/com.atproto.sync.subscribeRepos", 0,
		func(ctx context.Context, m stream.Message) error {
			if m.Seq != 0 {
				if m.Seq != prev+1 {
					return fmt.Errorf("seq %d follows %d: a gap or a repeat", m.Seq, prev)
				}
				prev = m.Seq
			}
			if m.Header.T == "#commit" {
				ev, err := decodeCommitEvent(m.Body)
				if err != nil {
					return err
				}
				out = append(out, ev)
			}
			if m.Seq >= latest {
				return errReplayDone
			}
			return nil
		}, &stream.SubscribeOptions{MinBackoff: 20 * time.Millisecond})
	if err != errReplayDone {
		t.Fatalf("replay to seq %d: %v", latest, err)
	}
	return out
}

var errReplayDone = fmt.Errorf("replay done")

func decodeCommitEvent(body []byte) (liveEvent, error) {
	var c atproto.SyncSubscribeRepos_Commit
	if err := lexutil.UnmarshalCBOR(body, &c); err != nil {
		return liveEvent{}, fmt.Errorf("decode #commit: %w", err)
	}
	ev := liveEvent{Seq: c.Seq, Repo: c.Repo, Rev: c.Rev, Commit: c.Commit.String()}
	if c.Since != nil {
		ev.Since = *c.Since
	}
	return ev, nil
}

// httpJSON makes a JSON request; status 0 means no response at all.
func httpJSON(hc *http.Client, method, url, token string, body, out any) (int, string) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err.Error()
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, err.Error()
		}
	}
	return resp.StatusCode, string(raw)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
