package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadlines for the welkin subprocess. They bound waits; nothing asserts
// how fast anything is.
const (
	buildTimeout    = 5 * time.Minute
	startTimeout    = 30 * time.Second
	shutdownTimeout = 10 * time.Second
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
	buildLog  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// envBinary names a prebuilt welkin to test instead of building
// ../cmd/welkin (for example a release binary).
const envBinary = "WELKIN_INTEROP_BINARY"

// welkinBinary builds ../cmd/welkin once per test binary and returns its path.
func welkinBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envBinary); p != "" {
		return p
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "welkin-interop-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "welkin")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		// Built from the main module's own directory, so its go.mod and
		// go.sum decide the dependencies, not this module's.
		cmd := exec.CommandContext(ctx, "go", "build", "-o", buildPath, "./cmd/welkin")
		cmd.Dir = ".."
		buildLog, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building welkin: %v\n%s", buildErr, buildLog)
	}
	return buildPath
}

// lockedBuffer collects a subprocess's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before welkin binds it; startPLC retries once when that happens.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPLC runs "welkin plc" on a free loopback port with a fresh data
// directory, waits until /_health answers 200 and returns the base URL.
// The process is stopped in t.Cleanup.
func startPLC(t *testing.T) string {
	t.Helper()
	bin := welkinBinary(t)
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		url, err := tryStartPLC(t, bin)
		if err == nil {
			return url
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return ""
}

func tryStartPLC(t *testing.T, bin string) (string, error) {
	dataDir := t.TempDir()
	port := freePort(t)
	out := &lockedBuffer{}
	cmd := exec.Command(bin, "plc", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--data-dir", dataDir)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting welkin plc: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// A graceful stop first, so the server can close its database;
		// then a kill if it does not exit in time.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(shutdownTimeout):
			cmd.Process.Kill()
			<-exited
		}
	}

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(base + "/_health")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(func() {
					stop()
					if t.Failed() {
						t.Logf("welkin plc output:\n%s", out.String())
					}
				})
				return base, nil
			}
		}
		select {
		case werr := <-exited:
			exited <- werr
			stop()
			return "", fmt.Errorf("welkin plc exited before serving (%v):\n%s", werr, out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			stop()
			return "", errors.New("welkin plc did not answer /_health within " + startTimeout.String() + ":\n" + out.String())
		}
	}
}
