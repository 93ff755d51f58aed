package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// TestMain lets the test binary be the load side (or indigo's hosts) when
// the smoke test starts it as a child, as the command starts itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-role=") {
		if err := run(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "relayload load side:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseEventCounts(t *testing.T) {
	page := `# HELP welkin_relay_events_total Upstream events handled.
# TYPE welkin_relay_events_total counter
welkin_relay_events_total{outcome="accepted",reason="",type="#commit"} 1200
welkin_relay_events_total{outcome="accepted",reason="since-gap",type="#commit"} 3
welkin_relay_events_total{outcome="rejected",reason="bad-signature",type="#commit"} 2
welkin_relay_events_total{outcome="rejected",reason="wrong-key",type="#commit"} 0
other_metric 5
`
	c, err := parseEventCounts(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if c.accepted != 1203 || c.rejected != 2 || c.reasons["#commit bad-signature"] != 2 || len(c.reasons) != 1 {
		t.Errorf("counts %+v", c)
	}
	if _, err := parseEventCounts(strings.NewReader(`welkin_relay_events_total{outcome="accepted"} lots` + "\n")); err == nil {
		t.Error("a value that is not a number was accepted")
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12000: "-12,000"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestUpdateReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	os.WriteFile(path, []byte("intro\n"+beginMark+"\nold\n"+endMark+"\nrest\n"), 0o644)
	if err := updateReadme(path, "new table\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "intro\n" + beginMark + "\nnew table\n" + endMark + "\nrest\n"; string(b) != want {
		t.Errorf("README became %q", b)
	}
	os.WriteFile(path, []byte("no markers\n"), 0o644)
	if err := updateReadme(path, "x"); err == nil {
		t.Error("a README without markers was accepted")
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.w.hosts != 10 || o.consumers != 100 || o.readme != "README.md" {
		t.Errorf("defaults %+v", o)
	}
	for _, bad := range [][]string{{"-hosts", "0"}, {"-p256", "2"}, {"-role", "other"}, {"-role", "load"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted it", bad)
		}
	}
}

func TestPlcDID(t *testing.T) {
	a, b := plcDID("x"), plcDID("y")
	if a == b || len(a) != len("did:plc:")+24 || !strings.HasPrefix(string(a), "did:plc:") {
		t.Errorf("plcDID gave %q and %q", a, b)
	}
}

// TestSmallRun runs every phase on a tiny workload: the relay accepts
// every generated event, the consumers get every fanned-out one, and both
// verification paths accept the sample.
func TestSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a relay and a load-side process")
	}
	o, err := parseFlags([]string{"-hosts=2", "-accounts=3", "-records=20", "-events=4", "-fanout-events=2",
		"-tracked=10", "-consumers=3", "-idle-hosts=4", "-compare=12", "-rounds=1", "-readme=", "-timeout=2m"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := measure(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2 * 3 * 4, 2 * 3 * 2, 10}; fmt.Sprint(res.events) != fmt.Sprint(want) {
		t.Errorf("events by phase %v, want %v", res.events, want)
	}
	if res.delivered != 3*2*3*2 || res.consumers != 3 {
		t.Errorf("delivered %d to %d consumers", res.delivered, res.consumers)
	}
	if res.idleHosts != 4 || res.tracked != 10 || res.indigoPerHost == nil {
		t.Errorf("idle hosts %d (indigo's measured: %v), tracked accounts %d", res.idleHosts, res.indigoPerHost != nil, res.tracked)
	}
	if res.compare == nil || res.compare.events != 12 || res.compare.welkin.cpu <= 0 || res.compare.indigo.cpu <= 0 {
		t.Errorf("comparison %+v", res.compare)
	}
	if res.ingest.cpu <= 0 || res.ingest.wall <= 0 {
		t.Errorf("ingest span %+v", res.ingest)
	}
	table := res.markdown(o)
	for _, want := range []string{"| measure | Welkin | indigo | goal |", "verification alone", "memory per tracked account"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestClassify(t *testing.T) {
	sample := func(fns ...string) *profile.Sample {
		s := &profile.Sample{}
		for _, fn := range fns { // leaf first, as in profiles
			s.Location = append(s.Location, &profile.Location{Line: []profile.Line{{Function: &profile.Function{Name: fn}}}})
		}
		return s
	}
	for _, tc := range []struct {
		stack []string
		want  string
	}{
		{[]string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, ""},
		{[]string{"syscall.Syscall6", "modernc.org/sqlite/lib._walFrames", welkin + "relay/store.(*Store).PutAccount", welkin + "relay.(*subscriber).handleCommit"},
			"account state (relay/store, SQLite)"},
		{[]string{"crypto/sha256.block", welkin + "relay/verify.readCAR", welkin + "relay/verify.ParseCommit", welkin + "atproto/stream.(*Dispatcher).work"},
			"verification: parsing (event, CAR slice, commit)"},
		{[]string{"x.Mul", welkin + "relay/verify.verifySig", welkin + "relay/verify.VerifyCommit"}, "verification: signature"},
		{[]string{"syscall.write", welkin + "atproto/stream.(*batchConn).release", welkin + "atproto/stream.(*connState).run", welkin + "atproto/stream.(*Server).ServeHTTP"}, fanoutPart},
		{[]string{"net/http.(*conn).serve"}, otherPart},
	} {
		got, ok := classify(sample(tc.stack...))
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("%v: got %q, %v; want %q", tc.stack, got, ok, tc.want)
		}
	}
}
