package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/pds"
)

// syncBuffer is a bytes.Buffer safe for a server's goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clearPDSEnv makes the test independent of WELKIN_PDS_* variables set
// where it runs.
func clearPDSEnv(t *testing.T) {
	for _, name := range []string{"HOSTNAME", "HOST", "PORT", "PUBLIC_URL", "DATA_DIR", "DATABASE_URL",
		"PLC_URL", "HANDLE_DOMAINS", "RELAY_HOSTS", "ADMIN_PASSWORD", "INVITE_REQUIRED",
		"MAX_BLOB_SIZE", "S3_URL", "SMTP_URL", "EMAIL_FROM", "RATE_LIMITS"} {
		t.Setenv(pds.EnvPrefix+name, "")
	}
}

func TestPDSUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"no hostname", nil, nil, 2, "--hostname"},
		{"bad env", []string{"--hostname", "localhost"}, map[string]string{"WELKIN_PDS_PORT": "eighty"}, 2, "WELKIN_PDS_PORT"},
		{"bad flag", []string{"--hostname", "localhost", "--max-blob-size", "huge"}, nil, 2, "max-blob-size"},
		{"extra argument", []string{"--hostname", "localhost", "serve"}, nil, 2, `unexpected argument "serve"`},
		{"help", []string{"--help"}, nil, 0, "--hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearPDSEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			code := run(append([]string{"pds"}, tt.args...), &out, &errOut)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("stderr lacks %q:\n%s", tt.want, errOut.String())
			}
		})
	}
}

func TestPDSHelpHidesPrivateNetworks(t *testing.T) {
	clearPDSEnv(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"pds", "-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := errOut.String()
	for _, f := range []string{"-hostname", "-plc-url", "-handle-domains", "-rate-limits", "-public-url"} {
		if !strings.Contains(help, f) {
			t.Errorf("help lacks %s", f)
		}
	}
	if strings.Contains(help, "allow-private-networks") {
		t.Errorf("help shows the hidden flag:\n%s", help)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pollHealth polls url until it answers 200 or the deadline passes.
func pollHealth(t *testing.T, url string, exited <-chan int) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within a minute (last error %v)", url, err)
		}
		select {
		case code := <-exited:
			t.Fatalf("the server exited with %d before answering", code)
		case <-tick.C:
		}
	}
}

func TestPDSServesUntilCancelled(t *testing.T) {
	port := freeTCPPort(t)
	cfg := pds.Config{
		Hostname:             "localhost",
		Host:                 "127.0.0.1",
		Port:                 port,
		DataDir:              t.TempDir(),
		PLCURL:               "http://127.0.0.1:1", // never called: no account is created
		HandleDomains:        []string{".test"},
		AllowPrivateNetworks: true,
	}
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan int, 1)
	go func() { exited <- servePDS(ctx, cfg, cfg.Logger) }()
	pollHealth(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/xrpc/_health", exited)
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d after cancel; logs:\n%s", code, logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("the PDS did not stop within a minute of cancel")
	}
	if !strings.Contains(logs.String(), "pds listening") || !strings.Contains(logs.String(), "http://localhost:"+strconv.Itoa(port)) {
		t.Fatalf("the logs do not say where the PDS listens:\n%s", logs.String())
	}
}

func TestPDSPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := pds.Config{Hostname: "localhost", Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, DataDir: t.TempDir()}
	logs := &syncBuffer{}
	if code := servePDS(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil))); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(logs.String(), "address already in use") {
		t.Fatalf("logs do not say why:\n%s", logs.String())
	}
}
