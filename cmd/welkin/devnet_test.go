package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/devnet"
)

// freePortRun finds n consecutive free loopback ports.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for range 20 {
		base := freeTCPPort(t)
		ok := base+n-1 <= 65535
		var held []net.Listener
		for i := 0; ok && i < n; i++ {
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
	t.Fatal("no run of free ports")
	return 0
}

func TestDevnetUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"now"}, 2, `unexpected argument "now"`},
		{[]string{"--port-base", "x"}, 2, "port-base"},
		{[]string{"--help"}, 0, "--seed"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(append([]string{"devnet"}, tt.args...), &out, &errOut)
		if code != tt.code || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("devnet %v: exit %d, stderr %q; want %d and %q", tt.args, code, errOut.String(), tt.code, tt.want)
		}
	}
}

func TestDevnetServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	base := freePortRun(t, 3)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	cfg := devnet.Config{DataDir: dir, PortBase: base, Logger: logger}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	exited := make(chan int, 1)
	go func() { exited <- serveDevnet(ctx, cfg, &stdout, logger) }()

	// The manifest appears once the network is healthy.
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(filepath.Join(dir, devnet.ManifestFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no devnet.json within the deadline; logs:\n%s", logs.String())
		}
		select {
		case code := <-exited:
			t.Fatalf("serveDevnet exited with %d; logs:\n%s", code, logs.String())
		case <-tick.C:
		}
	}
	pollHealth(t, "http://localhost:"+strconv.Itoa(base+1)+"/xrpc/_health", exited)
	pollHealth(t, "http://localhost:"+strconv.Itoa(base+2)+"/xrpc/_health", exited)
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d after cancel; logs:\n%s", code, logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("the devnet did not stop within a minute of cancel")
	}
	for _, want := range []string{"http://localhost:" + strconv.Itoa(base), "http://localhost:" + strconv.Itoa(base+1), "relay", "http://localhost:" + strconv.Itoa(base+2), "ws://localhost:" + strconv.Itoa(base+2) + "/xrpc/com.atproto.sync.subscribeRepos", "no accounts"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, stdout.String())
		}
	}
}
