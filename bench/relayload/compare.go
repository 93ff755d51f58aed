package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"

	"github.com/welkin-atproto/welkin/bench/internal/relayverify"
)

// sample is the comparison's input: #commit frames as the hosts send
// them, each with the index of its host, and the DID documents of their
// accounts. Every account's frames are in its commit order.
type sample struct {
	Frames    [][]byte                   `json:"frames"`
	FrameHost []int                      `json:"frameHost"`
	Hosts     []string                   `json:"hosts"`
	Docs      map[string]json.RawMessage `json:"docs"`
}

func readSample(path string) (*sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var s sample
	if err := json.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("reading the comparison sample: %w", err)
	}
	if len(s.Frames) != len(s.FrameHost) {
		return nil, errors.New("comparison sample: frames and hosts differ in number")
	}
	return &s, nil
}

// comparison is the outcome of the verification comparison.
type comparison struct {
	events int
	rounds int
	// Median spans of one pass over the sample, by implementation.
	welkin, indigo span
}

// compareVerifiers runs each implementation over the sample rounds times,
// alternating, and keeps the median pass of each. profile, when set,
// receives a CPU profile of Welkin's passes.
func compareVerifiers(s *sample, rounds int, profile string) (comparison, error) {
	w, err := relayverify.NewWelkin(s.Docs)
	if err != nil {
		return comparison{}, err
	}
	in, err := relayverify.NewIndigo(s.Docs)
	if err != nil {
		return comparison{}, err
	}
	var prof *os.File
	if profile != "" {
		if prof, err = os.Create(profile); err != nil {
			return comparison{}, err
		}
		defer prof.Close()
	}
	pass := func(v relayverify.Verifier) (span, error) {
		v.Reset()
		runtime.GC()
		if prof != nil && v == relayverify.Verifier(w) {
			if err := pprof.StartCPUProfile(prof); err != nil {
				return span{}, err
			}
			defer pprof.StopCPUProfile()
		}
		m := startMeter()
		for i, f := range s.Frames {
			if err := v.Verify(f, s.Hosts[s.FrameHost[i]]); err != nil {
				return span{}, fmt.Errorf("%s, event %d: %w", v.Name(), i, err)
			}
		}
		return m.stop(), nil
	}
	var ws, is []span
	for r := range rounds {
		order := []relayverify.Verifier{w, in}
		if r%2 == 1 {
			order = []relayverify.Verifier{in, w}
		}
		for _, v := range order {
			sp, err := pass(v)
			if err != nil {
				return comparison{}, err
			}
			if v == relayverify.Verifier(w) {
				ws = append(ws, sp)
				prof = nil // one profiled pass is enough
			} else {
				is = append(is, sp)
			}
		}
	}
	return comparison{events: len(s.Frames), rounds: rounds, welkin: medianSpan(ws), indigo: medianSpan(is)}, nil
}

// medianSpan is the span of median CPU time.
func medianSpan(s []span) span {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b span) int { return int(a.cpu - b.cpu) })
	return s[len(s)/2]
}
