package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(d, 0.50); got != 50*time.Millisecond {
		t.Errorf("p50 = %s", got)
	}
	if got := percentile(d, 0.99); got != 99*time.Millisecond {
		t.Errorf("p99 = %s", got)
	}
	if got := percentile(d, 1); got != 100*time.Millisecond {
		t.Errorf("p100 = %s", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("empty p50 = %s", got)
	}
	if got := percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("single p99 = %s", got)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-duration", "5s", "-accounts", "20", "-clients", "1, 4,16"})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 5*time.Second || o.accounts != 20 || len(o.clients) != 3 || o.clients[2] != 16 {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{
		{"-clients", "0"},
		{"-clients", "a"},
		{"-accounts", "10", "-clients", "64"},
		{"-duration", "0s"},
		{"-only", "both"},
		{"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted it", bad)
		}
	}
}

func TestRenderAndReplace(t *testing.T) {
	o := options{duration: 10 * time.Second, accounts: 100, clients: []int{1, 16}, rest: time.Minute}
	mk := func(name string, perSec float64, p50 time.Duration, rss int64) *result {
		r := &result{name: name, accounts: 100, signup: 10 * time.Second, rssSignup: rss, rssLoad: 2 * rss}
		for _, n := range o.clients {
			r.steps = append(r.steps, stepResult{clients: n, ok: int(perSec * 10), elapsed: o.duration, p50: p50, p99: 2 * p50})
		}
		return r
	}
	table := render([]*result{mk("welkin", 400, 2*time.Millisecond, 50<<20), mk("reference", 100, 8*time.Millisecond, 200<<20)},
		o, "test CPU", "0.0.1")
	for _, want := range []string{
		"| measure | welkin | reference | Welkin's advantage |",
		"| createRecord, 1 client: writes | 400/s | 100/s | 4.00 |",
		"| createRecord, 16 clients: p50 latency | 2.0 ms | 8.0 ms | 4.00 |",
		"| resident memory at rest, 100 accounts, 1m0s after the sign-ups | 50 MB | 200 MB | 4.00 |",
		"| createAccount, 8 clients | 10/s | 10/s | 1.00 |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}

	path := filepath.Join(t.TempDir(), "README.md")
	before := "# x\n\n## PDS\n\n" + beginMark + "\nold\n" + endMark + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, table); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	got := string(raw)
	if strings.Contains(got, "old") || !strings.Contains(got, table) || !strings.HasSuffix(got, endMark+"\n\nafter\n") {
		t.Errorf("replaced README:\n%s", got)
	}
	if err := os.WriteFile(path, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, table); err == nil {
		t.Error("replaceSection accepted a file without markers")
	}
}

func TestProcessGone(t *testing.T) {
	if processGone(os.Getpid()) {
		t.Error("this process counts as gone")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no true(1): %v", err)
	}
	if !processGone(cmd.Process.Pid) {
		t.Errorf("pid %d of a reaped child counts as alive", cmd.Process.Pid)
	}
}

func TestWindows(t *testing.T) {
	// Two clients over 5 s in windows of 2 s: the first window has four
	// requests of 1 ms, the second two of 10 ms, the last (1 s long) one
	// of 30 ms.
	s := stepResult{elapsed: 5 * time.Second,
		lat: [][]time.Duration{
			{time.Millisecond, time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond},
			{time.Millisecond, time.Millisecond, 10 * time.Millisecond},
		},
		started: [][]time.Duration{
			{0, time.Second, 2 * time.Second, 4500 * time.Millisecond},
			{500 * time.Millisecond, 1999 * time.Millisecond, 3 * time.Second},
		},
	}
	got := strings.Split(strings.TrimSuffix(s.windows(2*time.Second), "\n"), "\n")
	want := []string{
		"      0s-2s           2/s  p50   1.0 ms  p99   1.0 ms",
		"      2s-4s           1/s  p50  10.0 ms  p99  10.0 ms",
		"      4s-5s           1/s  p50  30.0 ms  p99  30.0 ms",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("windows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.windows(0) != "" {
		t.Error("a zero window printed something")
	}
}
