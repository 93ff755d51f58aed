package main

import (
	"runtime"
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
