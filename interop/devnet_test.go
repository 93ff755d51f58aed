package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// devnetStartTimeout bounds a devnet's start, seeding included; it is a
// deadline for a wait, not a speed requirement.
const devnetStartTimeout = 2 * time.Minute

// devnetServices is how many consecutive ports a devnet takes.
const devnetServices = 3

// devnetManifest is the part of devnet.json the test reads.
type devnetManifest struct {
	Services map[string]string `json:"services"`
	Accounts []struct {
		Handle   string `json:"handle"`
		DID      string `json:"did"`
		Password string `json:"password"`
	} `json:"accounts"`
}

// devnetRecord is what devnet.js prints.
type devnetRecord struct {
	Handle string         `json:"handle"`
	DID    string         `json:"did"`
	URI    string         `json:"uri"`
	CID    string         `json:"cid"`
	Value  map[string]any `json:"value"`
}

// TestDevnetWithOfficialClient runs "welkin devnet --seed" as a separate
// process, posts as alice with the official TypeScript client, stops the
// devnet with SIGINT, restarts it on the same data and reads the post
// back with the same client.
func TestDevnetWithOfficialClient(t *testing.T) {
	requireNode(t)
	bin := welkinBinary(t)
	dataDir := t.TempDir()
	manifestPath := filepath.Join(dataDir, "devnet.json")
	base := freePortBase(t, devnetServices)
	args := []string{"devnet", "--seed", "--data-dir", dataDir, "--port-base", strconv.Itoa(base)}

	// First run: wait for the manifest, which is written once the network
	// is healthy and seeded.
	dn := startDevnet(t, bin, args)
	var raw []byte
	waitFor(t, dn, "devnet.json", func() error {
		b, err := os.ReadFile(manifestPath)
		raw = b
		return err
	})
	var m devnetManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("devnet.json: %v\n%s", err, raw)
	}
	wantServices := map[string]string{
		"plc":   fmt.Sprintf("http://localhost:%d", base),
		"pds":   fmt.Sprintf("http://localhost:%d", base+1),
		"relay": fmt.Sprintf("http://localhost:%d", base+2),
	}
	if !reflect.DeepEqual(m.Services, wantServices) {
		t.Fatalf("services %v, want %v", m.Services, wantServices)
	}
	var handles []string
	for _, a := range m.Accounts {
		handles = append(handles, a.Handle)
		if a.DID == "" || a.Password == "" {
			t.Fatalf("account %+v lacks a DID or password", a)
		}
	}
	if !reflect.DeepEqual(handles, []string{"alice.test", "bob.test", "carol.test"}) {
		t.Fatalf("accounts %v, want alice.test, bob.test, carol.test", handles)
	}
	alice := m.Accounts[0]

	const text = "posted by @atproto/api through a Welkin devnet"
	posted := runDevnetJS(t, dn, raw, "post", text)
	if posted.Handle != alice.Handle || posted.DID != alice.DID {
		t.Fatalf("session is %s %s, want %s %s", posted.Handle, posted.DID, alice.Handle, alice.DID)
	}
	if posted.Value["text"] != text || posted.Value["$type"] != "app.bsky.feed.post" {
		t.Fatalf("record read back: %v", posted.Value)
	}
	if posted.CID == "" {
		t.Fatal("getRecord returned no CID")
	}
	dn.stopCleanly(t)

	// Second run on the same data: the post and the accounts are still
	// there. The manifest exists already, so wait for the PDS instead.
	dn = startDevnet(t, bin, args)
	waitFor(t, dn, "the PDS's health check", func() error {
		return healthOK(m.Services["pds"] + "/xrpc/_health")
	})
	read := runDevnetJS(t, dn, raw, "read", posted.URI)
	if read.CID != posted.CID || !reflect.DeepEqual(read.Value, posted.Value) {
		t.Fatalf("after the restart the post is %s %v, want %s %v", read.CID, read.Value, posted.CID, posted.Value)
	}
	dn.stopCleanly(t)

	after, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var m2 devnetManifest
	if err := json.Unmarshal(after, &m2); err != nil {
		t.Fatalf("devnet.json after the restart: %v\n%s", err, after)
	}
	if !reflect.DeepEqual(m2, m) {
		t.Fatalf("the restart changed devnet.json:\nbefore %s\nafter  %s", raw, after)
	}
}

// devnetProcess is a running "welkin devnet".
type devnetProcess struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan error
	err    error // once exited
	done   bool
}

func startDevnet(t *testing.T, bin string, args []string) *devnetProcess {
	t.Helper()
	p := &devnetProcess{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, exited: make(chan error, 1)}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting welkin devnet: %v", err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.done {
			p.cmd.Process.Kill()
			<-p.exited
			p.done = true
		}
		if t.Failed() {
			t.Logf("welkin devnet output:\n%s", p.out.String())
		}
	})
	return p
}

// stopCleanly sends SIGINT and checks that the devnet exits with status 0
// within the shutdown deadline.
func (p *devnetProcess) stopCleanly(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("signalling welkin devnet: %v", err)
	}
	select {
	case err := <-p.exited:
		p.done = true
		if err != nil {
			t.Fatalf("welkin devnet did not exit cleanly after SIGINT: %v\n%s", err, p.out.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatalf("welkin devnet did not exit within %s of SIGINT:\n%s", shutdownTimeout+5*time.Second, p.out.String())
	}
}

// waitFor polls check until it succeeds, failing the test when the
// devnet exits first or the start deadline passes.
func waitFor(t *testing.T, p *devnetProcess, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(devnetStartTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: no success within %s (last: %v):\n%s", what, devnetStartTimeout, err, p.out.String())
		}
		select {
		case werr := <-p.exited:
			p.done = true
			t.Fatalf("welkin devnet exited (%v) while waiting for %s:\n%s", werr, what, p.out.String())
		case <-tick.C:
		}
	}
}

func healthOK(url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return nil
}

func runDevnetJS(t *testing.T, p *devnetProcess, manifest []byte, mode, arg string) devnetRecord {
	t.Helper()
	out, err := runNode(t, manifest, "devnet.js", mode, arg)
	if err != nil {
		t.Fatalf("%v\nwelkin devnet output:\n%s", err, p.out.String())
	}
	var rec devnetRecord
	if err := json.Unmarshal(bytes.TrimSpace(out), &rec); err != nil {
		t.Fatalf("devnet.js %s: %v\n%s", mode, err, out)
	}
	return rec
}

// freePortBase finds n consecutive free ports on 127.0.0.1 by asking the
// kernel for one and probing the ones after it. Another process may take
// one before the devnet binds it; the devnet then fails with a clear
// error naming the port.
func freePortBase(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 20; attempt++ {
		base := freePort(t)
		if base+n-1 > 65535 {
			continue
		}
		var held []net.Listener
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal(errors.New("found no run of free consecutive ports on 127.0.0.1"))
	return 0
}
