package main

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestScaleProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })
	unset := func(string) string { return "" }
	if got := scaleProcs(2, unset); got != 2*orig || runtime.GOMAXPROCS(0) != 2*orig {
		t.Fatalf("scaleProcs(2) = %d, GOMAXPROCS %d; want %d", got, runtime.GOMAXPROCS(0), 2*orig)
	}
	runtime.GOMAXPROCS(orig)
	set := func(k string) string {
		if k == "GOMAXPROCS" {
			return "3"
		}
		return ""
	}
	if got := scaleProcs(2, set); got != orig || runtime.GOMAXPROCS(0) != orig {
		t.Fatalf("scaleProcs with GOMAXPROCS set = %d, GOMAXPROCS %d; want %d unchanged", got, runtime.GOMAXPROCS(0), orig)
	}
}

func TestSetGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	unset := func(string) string { return "" }
	if got := setGCPercent(200, unset); got != 200 || debug.SetGCPercent(100) != 200 {
		t.Fatalf("setGCPercent(200) = %d, or the runtime's target is not 200", got)
	}
	set := func(k string) string {
		if k == "GOGC" {
			return "150"
		}
		return ""
	}
	debug.SetGCPercent(150) // as the runtime reads GOGC=150 at start
	if got := setGCPercent(200, set); got != 150 || debug.SetGCPercent(150) != 150 {
		t.Fatalf("setGCPercent with GOGC set = %d, want 150 unchanged", got)
	}
}
