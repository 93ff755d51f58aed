package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// The crash test runs "welkin relay" as a child process, built from this
// tree, in front of a PDS (in this process) whose accounts write all the
// time, and kills the relay with SIGKILL at random moments, restarting it
// on the same data directory each time. At the end it reads the relay's
// stream from cursor 0 and checks what a durable relay owes its
// consumers: seqs that start at 1 and go up by one, each once; every
// upstream commit exactly once (by DID and rev) and in its account's
// order; every event a consumer saw before a crash the same after it;
// and every account's state current.

// relayCrashKillsEnv sets the number of kills (default relayCrashKills;
// make test-long raises it).
const relayCrashKillsEnv = "WELKIN_RELAY_CRASH_KILLS"

const relayCrashKills = 5

// buildWelkin builds ./cmd/welkin into a temporary directory.
func buildWelkin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "welkin")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/welkin")
	cmd.Dir = ".." // the module root, from this package's directory
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building welkin: %v\n%s", err, out)
	}
	return bin
}

// tailBuffer keeps the last bytes a child process wrote, for failure
// messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 16 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*tailBytes {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailBytes:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// relayProcess is one run of "welkin relay".
type relayProcess struct {
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
}

// childEnv is this process's environment without WELKIN_RELAY_*
// variables, so that only the flags configure the child.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WELKIN_RELAY_") {
			env = append(env, kv)
		}
	}
	return env
}

// startRelayProcess runs bin with args and waits until base answers
// /xrpc/_health.
func startRelayProcess(t *testing.T, bin, base string, args []string) *relayProcess {
	t.Helper()
	p := &relayProcess{cmd: exec.Command(bin, args...), out: &tailBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = childEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := hc.Get(base + "/xrpc/_health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("welkin relay exited before it was healthy:\n%s", p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("welkin relay not healthy within a minute:\n%s", p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *relayProcess) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// freeLoopbackPort returns a port that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, port := listen(t)
	ln.Close()
	return port
}

// crashWriter writes posts as one account until stop is closed and
// returns the rev of its last acknowledged commit.
func crashWriter(t *testing.T, c *xrpc.Client, did string, stop <-chan struct{}) string {
	last := ""
	for i := 0; ; i++ {
		select {
		case <-stop:
			return last
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := atproto.RepoCreateRecord(ctx, c, &atproto.RepoCreateRecord_Input{
			Repo: did, Collection: "app.bsky.feed.post",
			Record: map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("post %d", i), "createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z")},
		})
		cancel()
		if err != nil {
			t.Errorf("createRecord of %s: %v", did, err)
			return last
		}
		if out.Commit != nil {
			last = out.Commit.Rev
		}
	}
}

// commitRef names a #commit or #sync by its account and rev.
func commitRef(m stream.Message) (string, bool) {
	key := "did"
	switch m.Header.T {
	case "#commit":
		key = "repo"
	case "#sync":
	default:
		return "", false
	}
	did, _, _ := stream.BodyString(m.Body, key)
	rev, _, _ := stream.BodyString(m.Body, "rev")
	return did + " " + rev, true
}

func hasCommit(msgs []stream.Message, did, rev string) bool {
	for _, m := range msgs {
		if ref, ok := commitRef(m); ok && m.Header.T == "#commit" && ref == did+" "+rev {
			return true
		}
	}
	return false
}

func TestRelayCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	kills := relayCrashKills
	if v := os.Getenv(relayCrashKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", relayCrashKillsEnv, v)
		}
		kills = n
	}
	bin := buildWelkin(t)
	plcURL := startPLC(t)
	pdsURL, pdsHost := startPDS(t, plcURL)

	const nAccounts = 4
	type account struct {
		did    string
		client *xrpc.Client
		last   string
	}
	accounts := make([]*account, nAccounts)
	for i := range accounts {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		email, password := fmt.Sprintf("crash%d@example.com", i), "crash-password"
		out, err := atproto.ServerCreateAccount(ctx, &xrpc.Client{Host: pdsURL}, &atproto.ServerCreateAccount_Input{
			Handle: fmt.Sprintf("crash%d.test", i), Email: &email, Password: &password})
		cancel()
		if err != nil {
			t.Fatalf("createAccount: %v", err)
		}
		accounts[i] = &account{did: out.Did, client: &xrpc.Client{Host: pdsURL, Auth: xrpc.NewSessionAuth(out.AccessJwt, out.RefreshJwt)}}
	}
	upstream := follow(t, pdsURL, 0)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range accounts {
		wg.Go(func() { a.last = crashWriter(t, a.client, a.did, stop) })
	}
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopWriters()

	dir := t.TempDir()
	port := freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"relay", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--data-dir", dir,
		"--plc-url", plcURL, "--trusted-hosts", pdsHost, "--allow-insecure-hosts"}
	// A consumer follows the relay across its crashes.
	live := follow(t, base, 0)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for cycle := range kills {
		p := startRelayProcess(t, bin, base, args)
		// Kill at a random moment: after a random number of new events
		// reached the consumer, while the writers go on.
		target := len(live.snapshot()) + 1 + rng.IntN(80)
		deadline := time.Now().Add(time.Minute)
		for len(live.snapshot()) < target {
			if time.Now().After(deadline) {
				p.kill()
				t.Fatalf("cycle %d: the consumer got %d of %d events within a minute:\n%s", cycle, len(live.snapshot()), target, p.out)
			}
			time.Sleep(time.Millisecond)
		}
		p.kill()
	}
	stopWriters()

	// Every account's last acknowledged commit is in the PDS's stream;
	// the last seq there is what the relay must reach.
	waitFor(t, "the PDS's stream to hold every acknowledged commit", func() bool {
		up := upstream.snapshot()
		for _, a := range accounts {
			if a.last == "" || !hasCommit(up, a.did, a.last) {
				return false
			}
		}
		return true
	})
	up := upstream.snapshot()
	upLast := up[len(up)-1].Seq

	// A last start, left running: it must catch up with the PDS.
	p := startRelayProcess(t, bin, base, args)
	waitFor(t, "the relay to reach the PDS's last event", func() bool { return hostSeq(t, base, pdsHost) == upLast })
	// One more commit after everything else is the last event of the
	// relay's log, so a reader that has it has the whole log.
	marker := accounts[0]
	writePost(t, marker.client, marker.did, "marker")
	var latest atproto.SyncGetLatestCommit_Output
	getJSON(t, pdsURL+"/xrpc/com.atproto.sync.getLatestCommit?did="+marker.did, &latest)
	marker.last = latest.Rev
	all := follow(t, base, 0)
	waitFor(t, "the relay's stream from cursor 0 to reach the marker", func() bool { return hasCommit(all.snapshot(), marker.did, marker.last) })
	got := all.snapshot()
	up = upstream.snapshot()
	if ref, _ := commitRef(got[len(got)-1]); ref != marker.did+" "+marker.last {
		t.Fatalf("the marker is not the last event of the relay's stream (%s is)", ref)
	}

	// Seqs start at 1 and go up by one.
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("event %d of the relay's stream has seq %d (a gap or a repeat)", i, m.Seq)
		}
	}
	// What the consumer saw live is what the log holds.
	for _, m := range live.snapshot() {
		if m.Seq < 1 || m.Seq > int64(len(got)) {
			t.Errorf("the live consumer saw seq %d, which the log does not hold", m.Seq)
			continue
		}
		if g := got[m.Seq-1]; g.Header.T != m.Header.T || !bytes.Equal(g.Body, m.Body) {
			t.Errorf("seq %d: the live consumer saw %s, the log holds %s", m.Seq, m.Header.T, g.Header.T)
		}
	}

	// Every upstream commit exactly once, in its account's order; no
	// other commit or #sync.
	wantOrder := map[string][]string{}
	wanted := map[string]bool{}
	lastRev := map[string]string{}
	for _, m := range up {
		ref, ok := commitRef(m)
		if !ok {
			continue
		}
		did, rev, _ := strings.Cut(ref, " ")
		if rev <= lastRev[did] {
			continue // a #sync at the rev of the account's first commit
		}
		lastRev[did] = rev
		wantOrder[did] = append(wantOrder[did], m.Header.T+" "+rev)
		wanted[m.Header.T+" "+ref] = true
	}
	gotOrder := map[string][]string{}
	count := map[string]int{}
	for _, m := range got {
		ref, ok := commitRef(m)
		if !ok {
			continue
		}
		k := m.Header.T + " " + ref
		count[k]++
		if count[k] == 2 {
			t.Errorf("%s relayed twice", k)
		}
		if !wanted[k] {
			t.Errorf("%s relayed, but the PDS never sent it", k)
		}
		did, rev, _ := strings.Cut(ref, " ")
		gotOrder[did] = append(gotOrder[did], m.Header.T+" "+rev)
	}
	for k := range wanted {
		if count[k] == 0 {
			t.Errorf("%s never relayed", k)
		}
	}
	for did, w := range wantOrder {
		if fmt.Sprint(gotOrder[did]) != fmt.Sprint(w) {
			t.Errorf("%s: relayed in the order %v, sent %v", did, gotOrder[did], w)
		}
	}
	// Identity and account events all made it (a crash may repeat one).
	for _, m := range up {
		if m.Header.T != "#identity" && m.Header.T != "#account" {
			continue
		}
		did, _, _ := stream.BodyString(m.Body, "did")
		found := false
		for _, g := range got {
			if g.Header.T == m.Header.T {
				if d, _, _ := stream.BodyString(g.Body, "did"); d == did {
					found = true
					break
				}
			}
		}
		if !found {
			t.Errorf("%s of %s never relayed", m.Header.T, did)
		}
	}
	// The relay's state of each account is current and in sync.
	for _, a := range accounts {
		rs := repoStatus(t, base, syntax.DID(a.did))
		if !rs.Active || rs.Status != nil || rs.Rev == nil || *rs.Rev != a.last {
			t.Errorf("%s: getRepoStatus = %s, rev %v; want active at %s", a.did, statusOf(rs), rs.Rev, a.last)
		}
	}
	if t.Failed() {
		t.Logf("relay output:\n%s", p.out)
	}
	t.Logf("%d kills, %d events relayed, %d from the PDS", kills, len(got), len(up))
}
