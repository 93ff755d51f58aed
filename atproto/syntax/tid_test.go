package syntax

import (
	"sync"
	"testing"
	"time"
)

func TestTIDRoundTrip(t *testing.T) {
	tests := []struct {
		micros int64
		clock  uint
	}{
		{0, 0},
		{1, 1},
		{1700000000123456, 1023},
		{1<<53 - 1, 512},
		{time.Date(2023, 5, 1, 12, 0, 0, 0, time.UTC).UnixMicro(), 7},
	}
	for _, tt := range tests {
		tid := NewTID(tt.micros, tt.clock)
		if len(tid) != TIDLength {
			t.Fatalf("NewTID(%d, %d) = %q: wrong length", tt.micros, tt.clock, tid)
		}
		parsed, err := ParseTID(tid.String())
		if err != nil {
			t.Fatalf("NewTID(%d, %d) = %q does not parse: %v", tt.micros, tt.clock, tid, err)
		}
		if got := parsed.Time().UnixMicro(); got != tt.micros {
			t.Errorf("%q: Time = %d µs, want %d", tid, got, tt.micros)
		}
		if parsed.ClockID() != tt.clock {
			t.Errorf("%q: ClockID = %d, want %d", tid, parsed.ClockID(), tt.clock)
		}
		if want := uint64(tt.micros)<<10 | uint64(tt.clock); parsed.Integer() != want {
			t.Errorf("%q: Integer = %d, want %d", tid, parsed.Integer(), want)
		}
	}
}

func TestTIDKnownValues(t *testing.T) {
	if got := NewTID(0, 0); got != "2222222222222" {
		t.Errorf("zero TID = %q", got)
	}
	if got := TID("2222222222223").Integer(); got != 1 {
		t.Errorf("Integer(…3) = %d", got)
	}
	// The largest value the syntax admits (first character 'j') is all ones.
	if got := TID("jzzzzzzzzzzzz").Integer(); got != ^uint64(0) {
		t.Errorf("Integer(jzzz…) = %x", got)
	}
	// Clock IDs beyond 10 bits are masked.
	if got := NewTID(5, 1024+3).ClockID(); got != 3 {
		t.Errorf("ClockID = %d, want 3", got)
	}
	// TIDs sort like their integers.
	a, b := NewTID(1000, 5), NewTID(1001, 0)
	if !(a < b) || !(a.Integer() < b.Integer()) {
		t.Errorf("ordering broken: %q vs %q", a, b)
	}
}

func TestNewTIDNow(t *testing.T) {
	before := time.Now().Add(-time.Second)
	tid := NewTIDNow(9)
	if _, err := ParseTID(tid.String()); err != nil {
		t.Fatal(err)
	}
	if tid.Time().Before(before) || tid.Time().After(time.Now().Add(time.Second)) {
		t.Errorf("NewTIDNow time %v is not now", tid.Time())
	}
	if tid.ClockID() != 9 {
		t.Errorf("ClockID = %d", tid.ClockID())
	}
}

func TestTIDClockConcurrent(t *testing.T) {
	const goroutines, per = 16, 2000
	c := NewTIDClock(77)
	results := make([][]TID, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]TID, per)
			for i := range out {
				out[i] = c.Next()
			}
			results[g] = out
		}()
	}
	wg.Wait()

	seen := make(map[TID]bool, goroutines*per)
	for g, out := range results {
		for i, tid := range out {
			if seen[tid] {
				t.Fatalf("duplicate TID %q", tid)
			}
			seen[tid] = true
			if i > 0 && tid <= out[i-1] {
				t.Fatalf("goroutine %d: %q after %q is not increasing", g, tid, out[i-1])
			}
			if tid.ClockID() != 77 {
				t.Fatalf("clock ID %d", tid.ClockID())
			}
			if _, err := ParseTID(tid.String()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != goroutines*per {
		t.Fatalf("got %d distinct TIDs, want %d", len(seen), goroutines*per)
	}
}

func TestTIDClockWallClockStepsBack(t *testing.T) {
	c := NewTIDClock(1)
	fake := int64(1_700_000_000_000_000)
	c.now = func() int64 { return fake }

	first := c.Next()
	if got := first.Time().UnixMicro(); got != fake {
		t.Fatalf("first TID time %d, want %d", got, fake)
	}
	// Same microsecond: must still advance.
	second := c.Next()
	if second <= first {
		t.Fatalf("%q not after %q", second, first)
	}
	// The wall clock jumps back a whole minute.
	fake -= int64(time.Minute / time.Microsecond)
	third := c.Next()
	if third <= second {
		t.Fatalf("clock went backwards: %q after %q", third, second)
	}
	if third.Time().UnixMicro() != second.Time().UnixMicro()+1 {
		t.Errorf("expected the timestamp to advance by one microsecond, got %v -> %v", second.Time(), third.Time())
	}
	// Once the wall clock passes the last timestamp it is used again.
	fake += 2 * int64(time.Minute/time.Microsecond)
	fourth := c.Next()
	if fourth.Time().UnixMicro() != fake {
		t.Errorf("fourth TID time %d, want %d", fourth.Time().UnixMicro(), fake)
	}
	if c.ClockID() != 1 || fourth.ClockID() != 1 {
		t.Errorf("clock ID lost")
	}
}
