package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleOutput = `goos: linux
goarch: amd64
cpu: Example CPU
BenchmarkParseHandle/impl=welkin-2         	 1000000	        20.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkParseHandle/impl=welkin-2         	 1000000	        30.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkParseHandle/impl=welkin-2         	 1000000	        25.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkParseHandle/impl=indigo-2         	 1000000	       100.0 ns/op	      16 B/op	       1 allocs/op
BenchmarkParseHandle/impl=indigo-2         	 1000000	        50.0 ns/op	      16 B/op	       1 allocs/op
BenchmarkUnrelated-2                       	 1000000	        50.0 ns/op
PASS
`

func TestParseAndRender(t *testing.T) {
	res, meta, err := parse(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(meta) != 3 {
		t.Fatalf("meta %q, want goos, goarch, cpu", meta)
	}
	if len(res) != 1 || len(res["ParseHandle"]) != 2 {
		t.Fatalf("results %v, want one benchmark with two impls", res)
	}
	table := render(res, meta)
	// welkin median 25, indigo median 75: ratio 3.00.
	want := "| ParseHandle | indigo | 25.0 | 75.0 | 0 | 1 | 3.00 |"
	if !strings.Contains(table, want) {
		t.Fatalf("table lacks %q:\n%s", want, table)
	}
}

func TestParseRejectsEmptyInput(t *testing.T) {
	if _, _, err := parse(strings.NewReader("PASS\n")); err == nil {
		t.Fatal("no error for input without benchmarks")
	}
}

func TestReplaceSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(p, []byte("head\n"+beginMark+"\nold\n"+endMark+"\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(p, "new\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if want := "head\n" + beginMark + "\nnew\n" + endMark + "\ntail\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if err := replaceSection(filepath.Join(t.TempDir(), "missing.md"), "x"); err == nil {
		t.Fatal("no error for a missing file")
	}
}
