package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// A phase's CPU time is split between the relay's parts by the CPU
// profile taken during it: each sample goes to the first part, in the
// order of parts, that a function of its stack belongs to. Samples whose
// stack is all runtime (garbage collection, the scheduler) belong to no
// part and are shared out in proportion, so that each part's share
// includes the garbage collection it causes, roughly.

// part is a share of the relay's work, named by the function name
// prefixes of its code.
type part struct {
	name     string
	prefixes []string
}

const welkin = "github.com/welkin-atproto/welkin/"

// parts are checked in order; the first that a stack contains wins.
var parts = []part{
	{"account state (relay/store, SQLite)", []string{welkin + "relay/store.", "database/sql.", "modernc.org/"}},
	{fanoutPart, []string{welkin + "atproto/stream.(*Server)."}},
	{"event log (relay/eventlog, frame re-encoding included)", []string{welkin + "relay/eventlog."}},
	{"identity resolution", []string{welkin + "atproto/identity."}},
	{"verification: signature", []string{welkin + "relay/verify.verifySig"}},
	{"verification: inversion", []string{welkin + "relay/verify.(*Commit).invert"}},
	{"verification: parsing (event, CAR slice, commit)", []string{welkin + "relay/verify."}},
	{"upstream reading (WebSocket, frame decoding, dispatch)", []string{welkin + "atproto/stream.subscribeOnce", welkin + "atproto/stream.(*Dispatcher).Dispatch"}},
	{"other relay code (handlers, sequencer, metrics)", []string{welkin + "relay."}},
}

// fanoutPart is the part of the relay's stream server.
const fanoutPart = "fan-out to consumers (atproto/stream server)"

// otherPart holds samples with code of no part (HTTP serving, metrics,
// the benchmark's own polling).
const otherPart = "other"

// breakdown is a phase's CPU time by part, as shares summing to 1.
type breakdown map[string]float64

// readBreakdown splits the CPU samples of the profile at path.
func readBreakdown(path string) (breakdown, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, fmt.Errorf("%s: not a CPU profile", path)
	}
	byPart := map[string]int64{}
	var attributed int64
	for _, s := range p.Sample {
		v := s.Value[vi]
		name, ok := classify(s)
		if !ok {
			continue
		}
		byPart[name] += v
		attributed += v
	}
	if attributed == 0 {
		return breakdown{}, nil // too short a phase to be sampled
	}
	b := breakdown{}
	for name, v := range byPart {
		b[name] = float64(v) / float64(attributed)
	}
	return b, nil
}

// classify names the part of a sample; ok is false for runtime-only
// stacks.
func classify(s *profile.Sample) (name string, ok bool) {
	var funcs []string
	runtimeOnly := true
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function == nil {
				continue
			}
			fn := l.Function.Name
			funcs = append(funcs, fn)
			if !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/runtime/") {
				runtimeOnly = false
			}
		}
	}
	if runtimeOnly {
		return "", false
	}
	for _, p := range parts {
		for _, fn := range funcs {
			for _, pre := range p.prefixes {
				if strings.HasPrefix(fn, pre) {
					return p.name, true
				}
			}
		}
	}
	return otherPart, true
}

// rows lists the shares of half a percent or more, largest first.
func (b breakdown) rows() []string {
	if len(b) == 0 {
		return []string{"not sampled (too short a phase)"}
	}
	names := make([]string, 0, len(b))
	for n := range b {
		names = append(names, n)
	}
	slices.SortFunc(names, func(x, y string) int {
		switch {
		case b[x] > b[y]:
			return -1
		case b[x] < b[y]:
			return 1
		}
		return strings.Compare(x, y)
	})
	out := make([]string, 0, len(names))
	for _, n := range names {
		if b[n] >= 0.005 {
			out = append(out, fmt.Sprintf("%s %.0f%%", n, b[n]*100))
		}
	}
	return out
}
