package relay

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/store"
)

func TestRejectionRing(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hs := newHostState("pds.example.com", now)

	// Like rejections within a minute share one entry.
	for i := range 5 {
		hs.rejected(now.Add(time.Duration(i)*time.Second), "#commit", reasonRateLimited, "", int64(i+1), "over the limit")
	}
	a := hs.activity(now)
	if len(a.Rejections) != 1 || a.Rejections[0].Count != 5 || a.Rejections[0].Seq != 5 {
		t.Fatalf("coalesced rejections = %+v", a.Rejections)
	}
	// Another DID, or a later minute, takes a new entry; replays none.
	hs.rejected(now.Add(5*time.Second), "#commit", "wrong-key", "did:plc:a", 6, "x")
	hs.rejected(now.Add(6*time.Second), "#commit", "wrong-key", "did:plc:b", 7, "x")
	hs.rejected(now.Add(7*time.Second), "#commit", "duplicate-rev", "did:plc:b", 8, "x")
	hs.rejected(now.Add(2*time.Minute), "#commit", reasonRateLimited, "", 9, "")
	a = hs.activity(now.Add(2 * time.Minute))
	var got []string
	for _, r := range a.Rejections {
		got = append(got, fmt.Sprintf("%s/%s/%d", r.Reason, r.DID, r.Count))
	}
	if fmt.Sprint(got) != "[rate-limited//1 wrong-key/did:plc:b/1 wrong-key/did:plc:a/1 rate-limited//5]" {
		t.Errorf("rejections, newest first = %v", got)
	}
	if a.Reasons[reasonRateLimited] != 6 || a.Reasons["wrong-key"] != 2 || a.Reasons["duplicate-rev"] != 1 {
		t.Errorf("counts by reason = %v", a.Reasons)
	}

	// The ring keeps the newest recentRejections.
	for i := range 2 * recentRejections {
		hs.rejected(now.Add(time.Hour), "#commit", "bad-cbor", fmt.Sprintf("did:plc:%d", i), int64(100+i), "")
	}
	a = hs.activity(now.Add(time.Hour))
	if len(a.Rejections) != recentRejections {
		t.Fatalf("%d rejections kept, want %d", len(a.Rejections), recentRejections)
	}
	for i, r := range a.Rejections {
		if want := int64(100 + 2*recentRejections - 1 - i); r.Seq != want {
			t.Fatalf("rejection %d has seq %d, want %d", i, r.Seq, want)
		}
	}
	if long := string(make([]byte, 1000)); len(truncate(long, rejectionDetail)) > rejectionDetail {
		t.Error("detail not bounded")
	}
}

// TestHostBehaviour feeds a host's state and checks what the policy
// makes of its window: faults hold it back, rate limiting does not, and
// the window forgets after a day.
func TestHostBehaviour(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := testPolicy()
	hs := newHostState("pds.example.com", start)
	hs.load(store.Host{Hostname: "pds.example.com", FirstSeen: start.Add(-40 * 24 * time.Hour)})
	if l := hs.recompute(p, start); l.Step != "veteran" || l.Rate != 500 {
		t.Fatalf("clean old host: %+v", l)
	}
	hs.accepted.Add(900)
	for range 1000 {
		hs.rejected(start, "#commit", reasonRateLimited, "", 0, "")
	}
	if l := hs.recompute(p, start); l.Step != "veteran" {
		t.Fatalf("rate limiting counted against the host: %+v", l)
	}
	for range 100 {
		hs.rejected(start, "#commit", "bad-signature", "did:plc:x", 0, "")
	}
	l := hs.recompute(p, start.Add(time.Hour))
	if l.Step != "new" || l.Rate != 50 {
		t.Fatalf("10%% faults: %+v", l)
	}
	// The rate limiter follows the limits.
	hs.bucket.mu.Lock()
	rate, burst := hs.bucket.rate, hs.bucket.burst
	hs.bucket.mu.Unlock()
	if rate != 50 || burst != 500 {
		t.Errorf("token bucket = %v/s, burst %v; want 50, 500", rate, burst)
	}
	a := hs.activity(start.Add(time.Hour))
	if a.Limited != 1000 || !a.LastLimited.Equal(start) {
		t.Errorf("rate limited in the window = %d, last %v", a.Limited, a.LastLimited)
	}
	if l := hs.recompute(p, start.Add(25*time.Hour)); l.Step != "veteran" {
		t.Fatalf("a day later: %+v", l)
	}
	if a := hs.activity(start.Add(25 * time.Hour)); a.Limited != 0 {
		t.Errorf("rate limited a day later = %d", a.Limited)
	}
}

// TestFirstSeen: the first accepted event starts the host's age, once.
func TestFirstSeen(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hs := newHostState("pds.example.com", now)
	hs.load(store.Host{Hostname: "pds.example.com"})
	if hs.seen.Load() {
		t.Fatal("seen before any event")
	}
	if !hs.markSeen(now) || hs.markSeen(now.Add(time.Hour)) {
		t.Fatal("markSeen must report the first call only")
	}
	// A later load from the store does not move it.
	hs.load(store.Host{Hostname: "pds.example.com", FirstSeen: now.Add(time.Hour)})
	if hs.activity(now).FirstSeen != now {
		t.Errorf("first seen moved")
	}
}

func TestTokenBucketSet(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &tokenBucket{last: now}
	if b.allow(now) {
		t.Fatal("an unset bucket allowed an event")
	}
	b.set(1, 3)
	for i := range 3 {
		if !b.allow(now) {
			t.Fatalf("event %d of the first burst refused", i)
		}
	}
	if b.allow(now) {
		t.Fatal("allowed beyond the burst")
	}
	b.set(10, 100) // raising the limits does not hand out tokens
	if b.allow(now) {
		t.Fatal("raising the limits filled the bucket")
	}
	if !b.allow(now.Add(time.Second)) {
		t.Fatal("the new rate did not refill")
	}
}

// TestAdmitAccounts: new accounts handled in parallel see each other, so
// a host cannot pass its account limit by sending them at once.
func TestAdmitAccounts(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hs := newHostState("pds.example.com", now)
	hs.load(store.Host{Hostname: "pds.example.com", AccountLimit: 3})
	hs.recompute(testPolicy(), now)
	stored := int64(1)
	count := func() (int64, error) { return stored, nil }

	var wg sync.WaitGroup
	var mu sync.Mutex
	var admitted []func()
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, release, err := hs.admit(syntax.DID(fmt.Sprintf("did:plc:%024d", i)), count)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				admitted = append(admitted, release)
				mu.Unlock()
			} else {
				release()
			}
		}()
	}
	wg.Wait()
	if len(admitted) != 2 {
		t.Fatalf("%d accounts admitted beside 1 stored, limit 3", len(admitted))
	}
	// One is stored and released: still full. One fails and is released:
	// a place opens.
	stored++
	admitted[0]()
	if ok, _, _ := hs.admit("did:plc:x", count); ok {
		t.Fatal("admitted past the limit")
	}
	admitted[1]()
	ok, release, _ := hs.admit("did:plc:y", count)
	if !ok {
		t.Fatal("a released place was not reused")
	}
	release()

	// Hosts without a limit are not counted.
	hs.load(store.Host{Hostname: "pds.example.com", Trusted: true})
	hs.recompute(testPolicy(), now)
	ok, _, err := hs.admit("did:plc:z", func() (int64, error) { return 0, errors.New("must not count") })
	if !ok || err != nil {
		t.Errorf("trusted host: %v, %v", ok, err)
	}
}
