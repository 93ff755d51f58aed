package pds

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// Rate limits, from the reference PDS. They apply only when
// Config.RateLimits is set. Windows are fixed: a key's window starts with
// its first request and its count starts again when the window ends.
const (
	// Every XRPC request, per client IP.
	globalIPLimit  = 3000
	globalIPWindow = 5 * time.Minute

	// com.atproto.server.createSession, per identifier and client IP.
	sessionShortLimit  = 30
	sessionShortWindow = 5 * time.Minute
	sessionDayLimit    = 300
	sessionDayWindow   = 24 * time.Hour

	// com.atproto.server.createAccount, per client IP.
	createAccountLimit  = 100
	createAccountWindow = 5 * time.Minute

	// Repository writes, in points per account: a create costs
	// writePointsCreate, an update writePointsUpdate, a delete
	// writePointsDelete.
	writeHourLimit    = 5000
	writeHourWindow   = time.Hour
	writeDayLimit     = 35000
	writeDayWindow    = 24 * time.Hour
	writePointsCreate = 3
	writePointsUpdate = 2
	writePointsDelete = 1

	// Methods that send email, per account (requestEmailConfirmation,
	// requestEmailUpdate, requestAccountDelete).
	emailHourLimit  = 5
	emailHourWindow = time.Hour
	emailDayLimit   = 15
	emailDayWindow  = 24 * time.Hour

	// com.atproto.server.requestPasswordReset, per client IP.
	resetRequestHourLimit  = 15
	resetRequestHourWindow = time.Hour
	resetRequestDayLimit   = 50
	resetRequestDayWindow  = 24 * time.Hour

	// com.atproto.server.resetPassword and deleteAccount, per client IP.
	tokenUseLimit  = 50
	tokenUseWindow = 5 * time.Minute

	// com.atproto.identity.updateHandle, per account.
	handleShortLimit  = 10
	handleShortWindow = 5 * time.Minute
	handleDayLimit    = 50
	handleDayWindow   = 24 * time.Hour
)

// limiterSweepEvery is how many new keys a limiter admits between sweeps
// of its expired windows, which keeps its memory bounded by the keys
// active within one window.
const limiterSweepEvery = 4096

// limiter counts points per key in fixed windows.
type limiter struct {
	limit  int
	window time.Duration
	policy string
	now    func() time.Time

	mu        sync.Mutex
	windows   map[string]*limitWindow
	sinceScan int
}

type limitWindow struct {
	start time.Time
	used  int
}

func newLimiter(limit int, window time.Duration, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{
		limit:   limit,
		window:  window,
		policy:  strconv.Itoa(limit) + ";w=" + strconv.Itoa(int(window/time.Second)),
		now:     now,
		windows: map[string]*limitWindow{},
	}
}

// take charges points to key. It reports false, charging nothing, when
// they do not fit in what is left of the key's window; the RateLimit
// describes the window either way.
func (l *limiter) take(key string, points int) (xrpc.RateLimit, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.windows[key]
	if !ok || !now.Before(w.start.Add(l.window)) {
		if !ok {
			l.sinceScan++
			if l.sinceScan >= limiterSweepEvery {
				l.sweepLocked(now)
			}
		}
		w = &limitWindow{start: now}
		l.windows[key] = w
	}
	rl := xrpc.RateLimit{Limit: l.limit, Reset: w.start.Add(l.window), Policy: l.policy}
	if w.used+points > l.limit {
		rl.Remaining = l.limit - w.used
		return rl, false
	}
	w.used += points
	rl.Remaining = l.limit - w.used
	return rl, true
}

// sweepLocked drops the windows that have ended.
func (l *limiter) sweepLocked(now time.Time) {
	for k, w := range l.windows {
		if !now.Before(w.start.Add(l.window)) {
			delete(l.windows, k)
		}
	}
	l.sinceScan = 0
}

// size returns the number of keys held.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.windows)
}

// rateLimits are the limiters of one server.
type rateLimits struct {
	global        *limiter
	createAccount *limiter
	session       []*limiter
	writes        []*limiter
	email         []*limiter
	resetRequest  []*limiter
	tokenUse      *limiter
	handle        []*limiter
}

func newRateLimits(now func() time.Time) *rateLimits {
	return &rateLimits{
		global:        newLimiter(globalIPLimit, globalIPWindow, now),
		createAccount: newLimiter(createAccountLimit, createAccountWindow, now),
		session: []*limiter{
			newLimiter(sessionDayLimit, sessionDayWindow, now),
			newLimiter(sessionShortLimit, sessionShortWindow, now),
		},
		writes: []*limiter{
			newLimiter(writeDayLimit, writeDayWindow, now),
			newLimiter(writeHourLimit, writeHourWindow, now),
		},
		email: []*limiter{
			newLimiter(emailDayLimit, emailDayWindow, now),
			newLimiter(emailHourLimit, emailHourWindow, now),
		},
		resetRequest: []*limiter{
			newLimiter(resetRequestDayLimit, resetRequestDayWindow, now),
			newLimiter(resetRequestHourLimit, resetRequestHourWindow, now),
		},
		tokenUse: newLimiter(tokenUseLimit, tokenUseWindow, now),
		handle: []*limiter{
			newLimiter(handleDayLimit, handleDayWindow, now),
			newLimiter(handleShortLimit, handleShortWindow, now),
		},
	}
}

// charge charges points to key in every limiter of ls, in order, and
// returns a 429 RateLimitExceeded error for the first that refuses. (The
// limiters before it keep their charge, as the reference's do.)
func (s *Server) charge(key string, points int, ls ...*limiter) error {
	if !s.cfg.RateLimits || points <= 0 {
		return nil
	}
	for _, l := range ls {
		if rl, ok := l.take(key, points); !ok {
			return xrpc.RateLimitExceeded(rl)
		}
	}
	return nil
}

// chargeWrite charges a repository write of the account did against the
// account's write limits (5,000 points an hour and 35,000 a day; a create
// costs 3, an update 2, a delete 1). It returns a 429 RateLimitExceeded
// error carrying the RateLimit-* headers when the write does not fit, and
// nil when rate limits are off.
func (s *Server) chargeWrite(ctx context.Context, did syntax.DID, creates, updates, deletes int) error {
	points := creates*writePointsCreate + updates*writePointsUpdate + deletes*writePointsDelete
	return s.charge(string(did), points, s.acct().limits.writes...)
}

// chargeIP charges one request of the calling client's IP to ls.
func (s *Server) chargeIP(ctx context.Context, ls ...*limiter) error {
	return s.charge(clientIP(httpRequest(ctx)), 1, ls...)
}

// chargeDID charges one request of the account did to ls.
func (s *Server) chargeDID(did syntax.DID, ls ...*limiter) error {
	return s.charge(string(did), 1, ls...)
}

// rateLimitMiddleware applies the global per-IP limit to every XRPC
// request except the subscribeRepos stream, whose one request lasts as
// long as the connection. With rate limits off it returns h itself.
func (s *Server) rateLimitMiddleware(h http.Handler) http.Handler {
	if !s.cfg.RateLimits {
		return h
	}
	global := s.acct().limits.global
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/xrpc/") && r.URL.Path != "/xrpc/com.atproto.sync.subscribeRepos" {
			if rl, ok := global.take(clientIP(r), 1); !ok {
				xrpc.WriteError(w, xrpc.RateLimitExceeded(rl))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// clientIP is the address of the peer of r. Forwarding headers are not
// trusted, since any client can send them.
func clientIP(r *http.Request) string {
	if r == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
