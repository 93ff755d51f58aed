package pds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb/faultvfs"
)

// The power-loss test is the crash test (crash_test.go) with the page
// cache taken away: the child PDS opens every SQLite database through the
// fault-injecting VFS of package faultvfs, and after each SIGKILL the
// parent rolls the files back to what had been fsynced before restarting
// it. A missing or misplaced fsync that SIGKILL alone cannot show (the
// kernel would still write the data out) loses acknowledged writes here.
// The checks after the last power loss are those of the crash test.

// powerLossKillsEnv sets the number of power losses (default
// powerLossKills).
const powerLossKillsEnv = "WELKIN_POWERLOSS_KILLS"

const powerLossKills = 10

const powerLossChildEnv = "WELKIN_PDS_POWERLOSS_CHILD"

// powerLossVFS is the name the child registers the fault VFS under.
const powerLossVFS = "welkin-powerloss"

// TestPowerLossChild is the child process of TestPowerLossDurability: it
// serves a PDS, with all its SQLite files behind the fault VFS, on the data
// dir, port and journal given in its environment until killed. Run
// directly, it skips.
func TestPowerLossChild(t *testing.T) {
	spec := os.Getenv(powerLossChildEnv)
	if spec == "" {
		t.Skip("child process of TestPowerLossDurability")
	}
	parts := strings.SplitN(spec, "|", 4)
	if len(parts) != 4 {
		t.Fatalf("bad %s=%q", powerLossChildEnv, spec)
	}
	port, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("bad port in %s=%q", powerLossChildEnv, spec)
	}
	j, err := faultvfs.OpenJournal(parts[3])
	if err != nil {
		t.Fatal(err)
	}
	if err := faultvfs.Register(powerLossVFS, j); err != nil {
		t.Fatal(err)
	}
	if err := faultvfs.MakeDefault(powerLossVFS); err != nil {
		t.Fatal(err)
	}
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

// powerLossChild is one run of the child process.
type powerLossChild struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startPowerLossChild(t *testing.T, dir string, port int, plcURL, journal string) *powerLossChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerLossChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d|%s|%s", powerLossChildEnv, dir, port, plcURL, journal))
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
			t.Fatalf("power-loss child exited before ready:\n%s", stderr)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("power-loss child not ready within a minute:\n%s", stderr)
	}
	return &powerLossChild{cmd: cmd, out: stderr}
}

// powerLoss kills the child and throws away everything it had not synced.
func (c *powerLossChild) powerLoss(t *testing.T, journal string) faultvfs.Result {
	t.Helper()
	c.cmd.Process.Kill()
	c.cmd.Wait()
	res, err := faultvfs.Rollback(journal)
	if err != nil {
		t.Fatalf("simulate power loss: %v\nchild:\n%s", err, c.out)
	}
	return res
}

func TestPowerLossDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("power-loss test skipped in -short mode")
	}
	kills := powerLossKills
	if v := os.Getenv(powerLossKillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", powerLossKillsEnv, v)
		}
		kills = n
	}
	plcURL := startTestPLC(t)
	dir := t.TempDir()
	journal := filepath.Join(t.TempDir(), "journal")
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	hc := &http.Client{Timeout: 10 * time.Second}

	// Accounts are created through the API on the first run; their
	// creation is acknowledged too, and must survive the power losses.
	const nAccounts = 6
	child := startPowerLossChild(t, dir, port, plcURL, journal)
	accounts := make([]*crashAccount, nAccounts)
	for i := range accounts {
		handle := fmt.Sprintf("power%d.test", i)
		var out struct {
			DID       string          `json:"did"`
			AccessJwt string          `json:"accessJwt"`
			DidDoc    json.RawMessage `json:"didDoc"`
		}
		status, body := httpJSON(hc, "POST", base+"/xrpc/com.atproto.server.createAccount", "",
			map[string]string{"handle": handle, "email": handle + "@example.com", "password": "password"}, &out)
		if status != http.StatusOK {
			child.cmd.Process.Kill()
			child.cmd.Wait()
			t.Fatalf("createAccount %s: %d %s\n%s", handle, status, body, child.out)
		}
		accounts[i] = &crashAccount{DID: syntax.DID(out.DID), Handle: handle, Token: out.AccessJwt, Doc: out.DidDoc}
	}

	// A firehose consumer runs for the whole test, across restarts: an
	// event it saw must not be lost to a power loss, since the sequencer
	// publishes only what is durable.
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

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	journaled := map[string]bool{}
	var total faultvfs.Result
	replays := 0 // starts that restored commits from the log
	crashes := 0 // cycles that ended in a crash without a power loss
	for cycle := 0; cycle < kills; cycle++ {
		if cycle > 0 {
			child = startPowerLossChild(t, dir, port, plcURL, journal)
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
		// Cut the power at a random moment, after a random number of
		// acknowledged writes, while the writers are still going.
		target := 1 + rng.IntN(60)
		deadline := time.Now().Add(time.Minute)
		for ackedTotal(accounts) < startAcks+target {
			if time.Now().After(deadline) {
				child.cmd.Process.Kill()
				child.cmd.Wait()
				t.Fatalf("cycle %d: fewer than %d writes acknowledged within a minute:\n%s", cycle, target, child.out)
			}
			time.Sleep(time.Millisecond)
		}
		// Some cycles end in a crash only (SIGKILL, the page cache kept,
		// the journal going on into the next run), so that a later power
		// loss also throws away what a run after a crash left unsynced.
		// The last cycle is always a power loss.
		var res faultvfs.Result
		if cycle < kills-1 && rng.IntN(3) == 0 {
			child.cmd.Process.Kill()
			child.cmd.Wait()
			crashes++
		} else {
			res = child.powerLoss(t, journal)
		}
		// The child has exited: its output is complete.
		if strings.Contains(child.out.String(), replayLogMessage) {
			replays++
		}
		close(stop)
		wg.Wait()
		total.Records += res.Records
		total.Undone += res.Undone
		total.Removed += res.Removed
		total.Restored += res.Restored
		for _, p := range res.Paths {
			journaled[p] = true
		}
	}

	// Every SQLite database of the PDS went through the fault VFS.
	var dbs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".sqlite") {
			dbs = append(dbs, p)
		}
		return nil
	})
	if len(dbs) < 2+nAccounts {
		t.Errorf("found only %d SQLite databases under the data dir: %v", len(dbs), dbs)
	}
	for _, p := range dbs {
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		if !journaled[p] && !journaled[resolved] {
			t.Errorf("%s was never written through the fault VFS", p)
		}
	}
	t.Logf("%d power losses and %d crashes: %d journal records, %d unsynced writes undone, %d files removed, %d restored; %d starts restored commits from the firehose log",
		kills-crashes, crashes, total.Records, total.Undone, total.Removed, total.Restored, replays)
	// Writes are acknowledged once their events are durable in the log,
	// and the account databases are synced only about once a second, so
	// a power loss in the middle of writing nearly always takes commits
	// that the next start must restore from the log.
	if kills-crashes >= 3 && replays == 0 {
		t.Errorf("no start after %d power losses restored a commit from the firehose log; that path went untested", kills)
	}

	// Stop the live consumer, then start the PDS a last time, in this
	// process and without the fault VFS, and check that everything is in
	// order.
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

	acked := 0
	for _, a := range accounts {
		acked += len(a.acked)
	}
	if acked == 0 {
		t.Fatal("no write was acknowledged in any cycle; the test proves nothing")
	}
	t.Logf("%d acknowledged writes over %d accounts", acked, nAccounts)

	for _, a := range accounts {
		// The account survived: it still logs in with its password.
		var sess struct {
			DID string `json:"did"`
		}
		if status, body := httpJSON(hc, "POST", base+"/xrpc/com.atproto.server.createSession", "",
			map[string]string{"identifier": a.Handle, "password": "password"}, &sess); status != http.StatusOK || sess.DID != string(a.DID) {
			t.Errorf("%s: createSession after the power losses: %d %s", a.DID, status, body)
		}
	}
	checkRecovered(t, hc, base, accounts, latest, live, "the power losses")
}
