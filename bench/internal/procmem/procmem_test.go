package procmem

import (
	"os"
	"strings"
	"testing"
)

func TestParseRSS(t *testing.T) {
	status := "Name:\twelkin\nVmPeak:\t  900 kB\nVmRSS:\t   123456 kB\nThreads:\t7\n"
	got, err := ParseRSS(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(123456) << 10; got != want {
		t.Errorf("ParseRSS = %d, want %d", got, want)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n", "VmRSS:\t-4 kB\n", ""} {
		if _, err := ParseRSS(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseRSS(%q) accepted it", bad)
		}
	}
}

func TestRSSOfThisProcess(t *testing.T) {
	for _, pid := range []int{0, os.Getpid()} {
		rss, err := RSS(pid)
		if err != nil {
			t.Skipf("no /proc here: %v", err)
		}
		if rss <= 0 {
			t.Errorf("RSS(%d) = %d", pid, rss)
		}
	}
}
