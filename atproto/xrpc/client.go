package xrpc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// Limits of the client.
const (
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 64 << 10
	// DefaultMaxResponse bounds a JSON response body.
	DefaultMaxResponse = 64 << 20
)

// AuthProvider adds credentials to outgoing requests. BearerAuth,
// AdminAuth and SessionAuth are the usual ones; an OAuth/DPoP provider fits
// the same interface.
type AuthProvider interface {
	Authorize(ctx context.Context, req *http.Request, nsid string) error
}

// Refresher is an AuthProvider that can renew expired credentials. When a
// call fails with 400 ExpiredToken the client calls Refresh once, with the
// request that failed, and repeats the call.
type Refresher interface {
	Refresh(ctx context.Context, c *Client, failed *http.Request) error
}

// BearerAuth sends a fixed bearer token.
type BearerAuth struct{ Token string }

// Authorize implements AuthProvider.
func (a BearerAuth) Authorize(_ context.Context, req *http.Request, _ string) error {
	req.Header.Set("Authorization", "Bearer "+a.Token)
	return nil
}

// AdminAuth sends HTTP basic credentials with the user "admin", as the
// reference services expect for administrative calls.
type AdminAuth struct{ Password string }

// Authorize implements AuthProvider.
func (a AdminAuth) Authorize(_ context.Context, req *http.Request, _ string) error {
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+a.Password)))
	return nil
}

// RefreshSessionNSID is the procedure SessionAuth refreshes with.
const RefreshSessionNSID = "com.atproto.server.refreshSession"

// SessionAuth holds a legacy (JWT) session: the access token is sent on
// every call, and the refresh token renews both through
// com.atproto.server.refreshSession when the access token expires. It is
// safe for concurrent use.
type SessionAuth struct {
	refreshing sync.Mutex // one refresh at a time
	mu         sync.Mutex
	access     string
	refresh    string
	// OnRefresh, when set, is called with the new tokens after a refresh,
	// to store them.
	OnRefresh func(access, refresh string)
}

// NewSessionAuth returns a SessionAuth holding the given tokens.
func NewSessionAuth(access, refresh string) *SessionAuth {
	return &SessionAuth{access: access, refresh: refresh}
}

// Tokens returns the current tokens.
func (a *SessionAuth) Tokens() (access, refresh string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.access, a.refresh
}

// Authorize implements AuthProvider; the refresh call itself carries the
// refresh token.
func (a *SessionAuth) Authorize(_ context.Context, req *http.Request, nsid string) error {
	a.mu.Lock()
	tok := a.access
	if nsid == RefreshSessionNSID {
		tok = a.refresh
	}
	a.mu.Unlock()
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

type refreshOutput struct {
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`
}

func (o *refreshOutput) UnmarshalJSON(b []byte) error {
	type plain refreshOutput
	return json.Unmarshal(b, (*plain)(o))
}

// Refresh implements Refresher. Concurrent calls that failed with the same
// expired token share one refresh: a call whose token has been replaced
// since it was sent just tries again.
func (a *SessionAuth) Refresh(ctx context.Context, c *Client, failed *http.Request) error {
	a.refreshing.Lock()
	defer a.refreshing.Unlock()
	if failed != nil {
		a.mu.Lock()
		cur := "Bearer " + a.access
		a.mu.Unlock()
		if sent := failed.Header.Get("Authorization"); sent != "" && sent != cur {
			return nil
		}
	}
	var out refreshOutput
	cc := *c
	cc.Auth = a
	if err := cc.do(ctx, Procedure, RefreshSessionNSID, nil, nil, &out, false); err != nil {
		return err
	}
	if out.AccessJwt == "" || out.RefreshJwt == "" {
		return errors.New("xrpc: refreshSession returned no tokens")
	}
	a.mu.Lock()
	a.access, a.refresh = out.AccessJwt, out.RefreshJwt
	f := a.OnRefresh
	a.mu.Unlock()
	if f != nil {
		f(out.AccessJwt, out.RefreshJwt)
	}
	return nil
}

// RetryPolicy says how queries are retried on 429, on 5xx other than 501
// and on network errors. Procedures are never retried: they may not be
// idempotent.
type RetryPolicy struct {
	// MaxAttempts counts the first try; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the first backoff, doubled on each retry, with jitter.
	BaseDelay time.Duration
	// MaxDelay bounds one wait, including one the server asks for with
	// Retry-After or RateLimit-Reset; a longer one is not waited for and
	// the error is returned.
	MaxDelay time.Duration
}

// DefaultRetryPolicy is used when Client.Retry is nil.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 3, BaseDelay: 250 * time.Millisecond, MaxDelay: 10 * time.Second}

// Client calls XRPC methods on one host. It implements lexutil.Client, so
// the generated client functions of package api take it. The zero value
// plus Host is usable; fields must not change while calls are under way.
type Client struct {
	// Host is the base URL, such as "https://bsky.social".
	Host string
	// HTTPClient performs requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Headers are added to every request.
	Headers http.Header
	// Auth adds credentials; nil sends none.
	Auth AuthProvider
	// UserAgent is sent as User-Agent when not empty.
	UserAgent string
	// Proxy, when set, is sent as the atproto-proxy header: the DID and
	// service ID ("did:web:api.bsky.app#bsky_appview") the PDS should
	// forward the call to.
	Proxy string
	// AcceptLabelers, when set, are sent as atproto-accept-labelers.
	AcceptLabelers []string
	// Retry is the retry policy of queries; nil means DefaultRetryPolicy.
	Retry *RetryPolicy
	// MaxResponse bounds a JSON response body; zero means
	// DefaultMaxResponse.
	MaxResponse int64
}

var _ lexutil.Client = (*Client)(nil)

// Do performs one call, as lexutil.Client asks: params are the query
// parameters; input is nil, a *lexutil.RawBody, a value with a MarshalJSON
// method or a generic data-model value; output is nil, an io.Writer (the
// raw body is copied to it), a json.Unmarshaler, or a *map[string]any or
// *any (the generic data model). A non-2xx response is an *Error.
func (c *Client) Do(ctx context.Context, kind Kind, nsid string, params url.Values, input any, output any) error {
	return c.do(ctx, kind, nsid, params, input, output, true)
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) retry() RetryPolicy {
	if c.Retry != nil {
		return *c.Retry
	}
	return DefaultRetryPolicy
}

// body is a request body that can be sent more than once.
type body struct {
	enc   string
	bytes []byte    // a JSON body
	r     io.Reader // a raw body
	sent  bool
}

// reader returns the body for one attempt, or false when it cannot be
// sent again.
func (b *body) reader() (io.Reader, bool) {
	if b == nil {
		return nil, true
	}
	if b.r == nil {
		return bytes.NewReader(b.bytes), true
	}
	if b.sent {
		s, ok := b.r.(io.Seeker)
		if !ok {
			return nil, false
		}
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			return nil, false
		}
	}
	b.sent = true
	return b.r, true
}

func encodeInput(input any) (*body, error) {
	switch v := input.(type) {
	case nil:
		return nil, nil
	case *lexutil.RawBody:
		if v == nil {
			return nil, nil
		}
		enc := v.Encoding
		if enc == "" {
			enc = "application/octet-stream"
		}
		if v.Body == nil {
			return &body{enc: enc, bytes: []byte{}}, nil
		}
		return &body{enc: enc, r: v.Body}, nil
	case json.Marshaler:
		b, err := v.MarshalJSON()
		if err != nil {
			return nil, err
		}
		return &body{enc: "application/json", bytes: b}, nil
	default:
		b, err := data.MarshalJSON(v)
		if err != nil {
			return nil, err
		}
		return &body{enc: "application/json", bytes: b}, nil
	}
}

func (c *Client) do(ctx context.Context, kind Kind, nsid string, params url.Values, input, output any, mayRefresh bool) error {
	in, err := encodeInput(input)
	if err != nil {
		return fmt.Errorf("xrpc: encoding input of %s: %w", nsid, err)
	}
	u := strings.TrimRight(c.Host, "/") + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	pol := c.retry()
	attempts := max(pol.MaxAttempts, 1)
	if kind != Query {
		attempts = 1
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		sent, err := c.once(ctx, kind, nsid, u, in, output)
		if err == nil {
			return nil
		}
		var xe *Error
		isX := errors.As(err, &xe)
		if isX && xe.Name == NameExpiredToken && mayRefresh && !refreshed {
			if r, ok := c.Auth.(Refresher); ok {
				if in != nil {
					if _, again := in.reader(); !again {
						return err
					}
					in.sent = false
				}
				if rerr := r.Refresh(ctx, c, sent); rerr != nil {
					return fmt.Errorf("xrpc: refreshing session: %w (after %w)", rerr, err)
				}
				refreshed = true
				attempt--
				continue
			}
		}
		if attempt >= attempts || ctx.Err() != nil {
			return err
		}
		var wait time.Duration
		switch {
		case isX && retryable(xe.Status):
			wait = backoff(pol, attempt)
			if d, ok := serverDelay(xe.Header, time.Now()); ok {
				wait = d
			}
		case !isX && !errors.Is(err, errNoRetry):
			wait = backoff(pol, attempt) // network error
		default:
			return err
		}
		if pol.MaxDelay > 0 && wait > pol.MaxDelay {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// errNoRetry marks client-side failures that repeating will not fix.
var errNoRetry = errors.New("xrpc: not retryable")

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status != http.StatusNotImplemented)
}

func backoff(p RetryPolicy, attempt int) time.Duration {
	d := p.BaseDelay << (attempt - 1)
	if p.MaxDelay > 0 && (d > p.MaxDelay || d <= 0) {
		d = p.MaxDelay
	}
	if d > 0 {
		d = d/2 + rand.N(d/2+1) // jitter
	}
	return d
}

// serverDelay reads how long the server asks the client to wait:
// Retry-After (seconds or an HTTP date), else RateLimit-Reset (a Unix time
// in seconds, as the reference services send it).
func serverDelay(h http.Header, now time.Time) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return time.Duration(min(n, 1<<30)) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if h.Get("RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64); err == nil && n >= 0 && n < 1<<40 {
			return max(time.Unix(n, 0).Sub(now), 0), true
		}
	}
	return 0, false
}

func (c *Client) once(ctx context.Context, kind Kind, nsid, u string, in *body, output any) (*http.Request, error) {
	method := http.MethodGet
	if kind == Procedure {
		method = http.MethodPost
	}
	var r io.Reader
	if in != nil {
		var ok bool
		if r, ok = in.reader(); !ok {
			return nil, fmt.Errorf("xrpc: %s: request body can not be sent again: %w", nsid, errNoRetry)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("xrpc: %s: %w: %w", nsid, err, errNoRetry)
	}
	if in != nil {
		req.Header.Set("Content-Type", in.enc)
	}
	for k, vs := range c.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Proxy != "" {
		req.Header.Set("atproto-proxy", c.Proxy)
	}
	if len(c.AcceptLabelers) > 0 {
		req.Header.Set("atproto-accept-labelers", strings.Join(c.AcceptLabelers, ", "))
	}
	if c.Auth != nil {
		if err := c.Auth.Authorize(ctx, req, nsid); err != nil {
			return nil, fmt.Errorf("xrpc: %s: authorizing: %w: %w", nsid, err, errNoRetry)
		}
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("xrpc: %s: %w", nsid, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return req, readError(resp)
	}
	if err := c.readOutput(resp, output); err != nil {
		return nil, fmt.Errorf("xrpc: %s: reading output: %w: %w", nsid, err, errNoRetry)
	}
	return req, nil
}

// readError turns a non-2xx response into an *Error.
func readError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, Header: resp.Header}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var env struct {
		Error   *string `json:"error"`
		Message *string `json:"message"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error != nil && *env.Error != "" {
		e.Name = *env.Error
		if env.Message != nil {
			e.Message = *env.Message
		}
	} else {
		e.Name = nameForStatus(resp.StatusCode)
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

func (c *Client) readOutput(resp *http.Response, output any) error {
	switch out := output.(type) {
	case nil:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	case io.Writer:
		_, err := io.Copy(out, resp.Body)
		return err
	}
	limit := c.MaxResponse
	if limit <= 0 {
		limit = DefaultMaxResponse
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > limit {
		return errors.New("response body is too large")
	}
	switch out := output.(type) {
	case json.Unmarshaler:
		return out.UnmarshalJSON(b)
	case *map[string]any:
		m, err := data.ParseJSON(b)
		if err != nil {
			return err
		}
		*out = m
		return nil
	case *any:
		v, err := data.DecodeJSON(b)
		if err != nil {
			return err
		}
		*out = v
		return nil
	}
	return fmt.Errorf("unsupported output type %T", output)
}
