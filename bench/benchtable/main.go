// Command benchtable turns the output of "go test -bench" in this module
// into the comparison table of bench/README.md.
//
// Benchmarks name their implementation in a sub-benchmark,
// BenchmarkX/impl=welkin and BenchmarkX/impl=indigo. For each benchmark the
// table gives the median ns/op and allocs/op of each implementation over
// the -count runs, and the ratio of the other implementation's time to
// Welkin's (above 1 means Welkin is faster).
//
//	go test -run '^$' -bench . -benchmem -count 5 | go run ./benchtable -readme README.md
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

const (
	beginMark = "<!-- benchtable:begin -->"
	endMark   = "<!-- benchtable:end -->"
)

type sample struct{ ns, allocs []float64 }

func main() {
	readme := flag.String("readme", "", "replace the table between the benchtable markers in this file instead of printing it")
	flag.Parse()
	results, meta, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	table := render(results, meta)
	if *readme == "" {
		fmt.Print(table)
		return
	}
	if err := replaceSection(*readme, table); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// parse reads benchmark lines such as
// "BenchmarkParseHandle/impl=welkin-2  1000000  52.1 ns/op  0 B/op  0 allocs/op".
func parse(r io.Reader) (map[string]map[string]*sample, []string, error) {
	results := map[string]map[string]*sample{}
	var meta []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "cpu:") || strings.HasPrefix(line, "goos:") || strings.HasPrefix(line, "goarch:") {
			if !contains(meta, line) {
				meta = append(meta, line)
			}
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name, impl, ok := strings.Cut(fields[0], "/impl=")
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(impl, '-'); i > 0 {
			impl = impl[:i] // drop the GOMAXPROCS suffix
		}
		name = strings.TrimPrefix(name, "Benchmark")
		s := results[name][impl]
		if s == nil {
			if results[name] == nil {
				results[name] = map[string]*sample{}
			}
			s = &sample{}
			results[name][impl] = s
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("bad value %q in %q", fields[i], line)
			}
			switch fields[i+1] {
			case "ns/op":
				s.ns = append(s.ns, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if len(results) == 0 {
		return nil, nil, fmt.Errorf("no impl= benchmarks in the input")
	}
	return results, meta, nil
}

func render(results map[string]map[string]*sample, meta []string) string {
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, m := range meta {
		fmt.Fprintf(&b, "`%s`  \n", m)
	}
	b.WriteString("\n| operation | other | Welkin ns/op | other ns/op | Welkin allocs | other allocs | other time / Welkin time |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	for _, n := range names {
		w := results[n]["welkin"]
		others := make([]string, 0, len(results[n]))
		for impl := range results[n] {
			if impl != "welkin" {
				others = append(others, impl)
			}
		}
		sort.Strings(others)
		for _, o := range others {
			s := results[n][o]
			if w == nil || len(w.ns) == 0 || len(s.ns) == 0 {
				continue
			}
			wn, on := median(w.ns), median(s.ns)
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %s | %s | %.2f |\n",
				n, o, wn, on, fmtAllocs(w.allocs), fmtAllocs(s.allocs), on/wn)
		}
	}
	return b.String()
}

func fmtAllocs(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return strconv.FormatFloat(median(v), 'f', 0, 64)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func replaceSection(path, table string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin := bytes.Index(raw, []byte(beginMark))
	end := bytes.Index(raw, []byte(endMark))
	if begin < 0 || end < begin {
		return fmt.Errorf("%s has no %s ... %s section", path, beginMark, endMark)
	}
	var out bytes.Buffer
	out.Write(raw[:begin+len(beginMark)])
	out.WriteString("\n")
	out.WriteString(table)
	out.Write(raw[end:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
