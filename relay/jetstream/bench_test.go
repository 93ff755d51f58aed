package jetstream

import (
	"testing"
	"time"
)

// BenchmarkSpan measures what the relay's sequencer pays per event for
// the JSON stream's times.
func BenchmarkSpan(b *testing.B) {
	r := newTestRepo(b, testDID)
	frame, _ := r.commit(b, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(b, "hello")))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if Span(frame) != 1 {
			b.Fatal("wrong span")
		}
	}
}

// BenchmarkFromFrame measures converting a one-post commit.
func BenchmarkFromFrame(b *testing.B) {
	r := newTestRepo(b, testDID)
	frame, _ := r.commit(b, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(b, "hello")))
	at := time.Now()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if evs, err := FromFrame(at, frame); err != nil || len(evs) != 1 {
			b.Fatal(err)
		}
	}
}
