package eventlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const testTimeout = 30 * time.Second

// testCtx returns a context that ends with the test or after testTimeout.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// fakeClock is an injectable clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// quietLogger drops the log's diagnostics (recovery warnings are expected
// in these tests).
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openLog opens a log in dir with test defaults: a quiet logger, no
// retention unless the test sets it, and no background pruning (tests
// call Prune themselves).
func openLog(t testing.TB, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.Retention == 0 {
		opts.Retention = -1
	}
	if opts.PruneInterval == 0 {
		opts.PruneInterval = -1
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// frameFor is the test frame of seq: its content and length depend on the
// seq alone, so any reader can check what it got.
func frameFor(seq int64) []byte {
	b := fmt.Appendf(nil, "frame %d|", seq)
	for i := range int(seq % 41) {
		b = append(b, byte('a'+(int(seq)+i)%26))
	}
	return b
}

// didFor is the test DID of seq; every fifth event has none.
func didFor(seq int64) syntax.DID {
	if seq%5 == 0 {
		return ""
	}
	return syntax.DID(fmt.Sprintf("did:plc:acct%04d", seq%7))
}

func build(_ int, seq int64) ([]byte, syntax.DID, error) {
	return frameFor(seq), didFor(seq), nil
}

// appendN appends n events in one batch and returns the first seq.
func appendN(t testing.TB, l *Log, n int) int64 {
	t.Helper()
	first, err := l.AppendBatch(n, build)
	if err != nil {
		t.Fatalf("AppendBatch(%d): %v", n, err)
	}
	return first
}

// checkRecord checks that r is the test event of seq.
func checkRecord(t testing.TB, r Record, seq int64) {
	t.Helper()
	if r.Seq != seq {
		t.Fatalf("got seq %d, want %d", r.Seq, seq)
	}
	if !bytes.Equal(r.Frame, frameFor(seq)) {
		t.Fatalf("seq %d: frame %q, want %q", seq, r.Frame, frameFor(seq))
	}
	if r.DID != didFor(seq) {
		t.Fatalf("seq %d: DID %q, want %q", seq, r.DID, didFor(seq))
	}
}

// readAll pages through the log from cursor with Read, checking that the
// seqs run on with no gap, and returns the records.
func readAll(t testing.TB, l *Log, cursor int64, page int) []Record {
	t.Helper()
	var out []Record
	for {
		rs, err := l.Read(testCtx(t), cursor, page)
		if err != nil {
			t.Fatalf("Read(%d, %d): %v", cursor, page, err)
		}
		for _, r := range rs {
			if len(out) > 0 && r.Seq != out[len(out)-1].Seq+1 {
				t.Fatalf("seq %d follows %d", r.Seq, out[len(out)-1].Seq)
			}
			checkRecord(t, r, r.Seq)
			out = append(out, r)
		}
		if len(rs) < page {
			return out
		}
		cursor = rs[len(rs)-1].Seq
	}
}

// checkRange checks that the log holds exactly the test events from..to.
func checkRange(t testing.TB, l *Log, from, to int64) {
	t.Helper()
	rs := readAll(t, l, 0, 97)
	if len(rs) == 0 {
		if from <= to {
			t.Fatalf("log is empty, want seqs %d..%d", from, to)
		}
		return
	}
	if rs[0].Seq != from || rs[len(rs)-1].Seq != to {
		t.Fatalf("log holds seqs %d..%d, want %d..%d", rs[0].Seq, rs[len(rs)-1].Seq, from, to)
	}
	ctx := testCtx(t)
	if got, err := l.OldestSeq(ctx); err != nil || got != from {
		t.Fatalf("OldestSeq = %d, %v; want %d", got, err, from)
	}
	if got, err := l.LatestSeq(ctx); err != nil || got != to {
		t.Fatalf("LatestSeq = %d, %v; want %d", got, err, to)
	}
}

// segFiles lists the segment files of dir, oldest first.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segExt))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// crash abandons the log as a killed process would: no final fsync, no
// sidecar for the active segment, file handles and the lock simply gone.
// What was written stays in the files (the OS did not crash); tests that
// want a torn write cut the files themselves.
func (l *Log) crash() {
	if l.stopPrune != nil {
		l.stopOnce.Do(func() { close(l.stopPrune) })
		<-l.pruneDone
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	l.smu.Lock()
	l.sclosed = true
	l.smu.Unlock()
	l.closeFiles()
	l.lock.Close()
}

// fileSize returns the size of a file.
func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
