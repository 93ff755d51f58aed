package pds

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	l := newLimiter(3, time.Minute, clock.Now)
	for i := 0; i < 3; i++ {
		rl, ok := l.take("k", 1)
		if !ok || rl.Remaining != 2-i || rl.Limit != 3 || rl.Policy != "3;w=60" {
			t.Fatalf("take %d: %+v %v", i, rl, ok)
		}
	}
	rl, ok := l.take("k", 1)
	if ok || rl.Remaining != 0 || !rl.Reset.Equal(clock.Now().Add(time.Minute)) {
		t.Fatalf("over the limit: %+v %v", rl, ok)
	}
	if _, ok := l.take("other", 1); !ok {
		t.Error("another key is limited too")
	}
	// A charge that does not fit is refused whole and charges nothing.
	if _, ok := l.take("big", 4); ok {
		t.Error("a charge above the limit was taken")
	}
	if rl, ok := l.take("big", 3); !ok || rl.Remaining != 0 {
		t.Errorf("a charge at the limit: %+v %v", rl, ok)
	}
	clock.Advance(time.Minute)
	if rl, ok := l.take("k", 1); !ok || rl.Remaining != 2 {
		t.Errorf("after the window: %+v %v", rl, ok)
	}

	// Ended windows are swept as new keys arrive.
	for i := 0; i < limiterSweepEvery; i++ {
		l.take(strconv.Itoa(i), 1)
	}
	clock.Advance(2 * time.Minute)
	for i := 0; i < limiterSweepEvery; i++ {
		l.take("new"+strconv.Itoa(i), 1)
	}
	if n := l.size(); n > limiterSweepEvery+1 {
		t.Errorf("%d keys held after a sweep", n)
	}
}

func TestChargeWrite(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	p := newTestPDS(t, func(c *Config) { c.Now = clock.Now; c.RateLimits = true })
	ctx := context.Background()
	did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	if err := p.srv.chargeWrite(ctx, did, 1666, 0, 0); err != nil { // 4998 points
		t.Fatal(err)
	}
	if err := p.srv.chargeWrite(ctx, did, 0, 0, 1); err != nil { // 4999
		t.Fatal(err)
	}
	err := p.srv.chargeWrite(ctx, did, 0, 1, 0) // 5001: over the hour's 5000
	var xe *xrpc.Error
	if !errors.As(err, &xe) || xe.Status != 429 || xe.Name != "RateLimitExceeded" || xe.Header.Get("RateLimit-Limit") != "5000" || xe.Header.Get("RateLimit-Policy") != "5000;w=3600" {
		t.Fatalf("over the hourly write limit: %v", err)
	}
	if err := p.srv.chargeWrite(ctx, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", 0, 1, 0); err != nil {
		t.Errorf("another account limited: %v", err)
	}
	clock.Advance(time.Hour)
	if err := p.srv.chargeWrite(ctx, did, 0, 1, 0); err != nil {
		t.Errorf("after an hour: %v", err)
	}
	// The daily limit holds across hours.
	for h := 0; h < 6; h++ {
		clock.Advance(time.Hour)
		if err := p.srv.chargeWrite(ctx, did, 1666, 0, 0); err != nil {
			t.Fatalf("hour %d: %v", h, err)
		}
	}
	// The day's window holds 4998+1+2 (the refused update was charged to
	// the day before the hour refused it, as with the reference) + 2 +
	// 6*4998 = 34991 points: 9 more fit, then nothing.
	clock.Advance(time.Hour)
	if err := p.srv.chargeWrite(ctx, did, 3, 0, 0); err != nil {
		t.Fatalf("up to the daily limit: %v", err)
	}
	err = p.srv.chargeWrite(ctx, did, 0, 0, 1)
	if !errors.As(err, &xe) || xe.Header.Get("RateLimit-Limit") != "35000" {
		t.Errorf("over the daily limit: %v", err)
	}

	off := newTestPDS(t, nil)
	if err := off.srv.chargeWrite(ctx, did, 100000, 0, 0); err != nil {
		t.Errorf("limits off: %v", err)
	}
}

func TestRateLimitedMethods(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	p := newTestPDS(t, func(c *Config) { c.Now = clock.Now; c.RateLimits = true })
	newAccount(t, p, "alice.test")

	// createSession: 30 per 5 minutes per identifier and IP. The first 29
	// are charged directly, which is what 29 failed logins would do.
	short := p.srv.acct().limits.session[1]
	short.take("alice.test-127.0.0.1", sessionShortLimit-1)
	if _, status, name := createSession(t, p, "alice.test", "password"); status != 200 {
		t.Fatalf("30th login: %d %s", status, name)
	}
	status, h, body := callRaw(t, p, "POST", "com.atproto.server.createSession", nil,
		map[string]string{"identifier": "alice.test", "password": "password"})
	if status != 429 || h.Get("RateLimit-Limit") != "30" || h.Get("RateLimit-Remaining") != "0" ||
		h.Get("RateLimit-Policy") != "30;w=300" || h.Get("RateLimit-Reset") == "" {
		t.Fatalf("31st login: %d %v %s", status, h, body)
	}
	// Another identifier is not limited.
	if _, status, _ := createSession(t, p, "bob.test", "password"); status != 401 {
		t.Errorf("another identifier: %d", status)
	}
	clock.Advance(5 * time.Minute)
	if _, status, name := createSession(t, p, "alice.test", "password"); status != 200 {
		t.Errorf("after the window: %d %s", status, name)
	}

	// createAccount: 100 per 5 minutes per IP.
	p.srv.acct().limits.createAccount.take("127.0.0.1", createAccountLimit)
	if status, name := p.call("POST", "com.atproto.server.createAccount", "", nil,
		map[string]any{"handle": "carol.test", "email": "carol@example.com", "password": "password"}, nil); status != 429 || name != "RateLimitExceeded" {
		t.Errorf("createAccount over the limit: %d %s", status, name)
	}
}

func TestRateLimitMiddleware(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	p := newTestPDS(t, func(c *Config) { c.Now = clock.Now; c.RateLimits = true })
	h := p.srv.rateLimitMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	get := func(path, addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := 0; i < globalIPLimit; i++ {
		if rec := get("/xrpc/com.atproto.server.describeServer", "192.0.2.1:1234"); rec.Code != http.StatusNoContent {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
	rec := get("/xrpc/com.atproto.server.describeServer", "192.0.2.1:999")
	if rec.Code != 429 || rec.Header().Get("RateLimit-Limit") != "3000" || rec.Header().Get("RateLimit-Policy") != "3000;w=300" {
		t.Fatalf("request over the limit: %d %v", rec.Code, rec.Header())
	}
	if get("/xrpc/com.atproto.server.describeServer", "192.0.2.2:1").Code != http.StatusNoContent {
		t.Error("another IP is limited")
	}
	if get("/xrpc/com.atproto.sync.subscribeRepos", "192.0.2.1:1").Code != http.StatusNoContent {
		t.Error("subscribeRepos is limited")
	}
	if get("/robots.txt", "192.0.2.1:1").Code != http.StatusNoContent {
		t.Error("a non-XRPC path is limited")
	}
	clock.Advance(globalIPWindow)
	if get("/xrpc/com.atproto.server.describeServer", "192.0.2.1:1").Code != http.StatusNoContent {
		t.Error("still limited after the window")
	}

	off := newTestPDS(t, nil)
	inner := http.NotFoundHandler()
	if got := off.srv.rateLimitMiddleware(inner); got == nil {
		t.Error("nil handler")
	}
}
