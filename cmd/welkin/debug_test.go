package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestStartDebug(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	stop, err := startDebug("", logger)
	if err != nil || stop == nil {
		t.Fatalf("startDebug with no address: %v", err)
	}
	stop()

	var out strings.Builder
	stop, err = startDebug("127.0.0.1:0", slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	_, after, ok := strings.Cut(out.String(), "addr=")
	if !ok {
		t.Fatalf("the listener's address was not logged: %q", out.String())
	}
	addr := strings.Fields(after)[0]
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "HeapAlloc") {
		t.Errorf("heap profile: %d %.200s", resp.StatusCode, body)
	}
}
