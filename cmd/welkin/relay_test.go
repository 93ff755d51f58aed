package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/relay"
)

// clearRelayEnv makes the test independent of WELKIN_RELAY_* variables set
// where it runs.
func clearRelayEnv(t *testing.T) {
	for _, name := range []string{"HOST", "PORT", "DATA_DIR", "DATABASE_URL", "PLC_URL", "HOSTS", "TRUSTED_HOSTS",
		"RETENTION", "ADMIN_PASSWORD", "ALLOW_INSECURE_HOSTS", "ACCOUNT_LIMIT", "WORKERS"} {
		t.Setenv(relay.EnvPrefix+name, "")
	}
}

func TestRelayFlags(t *testing.T) {
	clearRelayEnv(t)
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"extra"},
		{"--retention", "-1h"},
		{"--port", "x"},
	} {
		var stderr strings.Builder
		if code := runRelay(args, io.Discard, &stderr); code != 2 {
			t.Errorf("welkin relay %v = %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
	t.Setenv(relay.EnvPrefix+"PORT", "nope")
	if code := runRelay(nil, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad WELKIN_RELAY_PORT: exit %d, want 2", code)
	}
}

func TestRelayBadHost(t *testing.T) {
	clearRelayEnv(t)
	cfg := relay.Config{Host: "127.0.0.1", Port: 0, DataDir: t.TempDir(), Hosts: []string{"localhost:1234"}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Without --allow-insecure-hosts a loopback upstream is refused.
	if code := serveRelay(context.Background(), cfg, logger); code != 1 {
		t.Fatalf("serveRelay with an insecure host = %d, want 1", code)
	}
}

func TestServeRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := relay.Config{Host: "127.0.0.1", Port: port, DataDir: t.TempDir(), PLCURL: "http://127.0.0.1:1", AllowInsecureHosts: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- serveRelay(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	u := "http://127.0.0.1:" + strconv.Itoa(port) + "/xrpc/_health"
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("relay never became healthy: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serveRelay exit %d", code)
	}
}
