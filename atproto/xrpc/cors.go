package xrpc

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CORS is a cross-origin policy. The reference services allow every origin
// (they use the express cors middleware with its defaults and a one-day
// max age), since XRPC carries credentials in headers, never in cookies.
type CORS struct {
	// AllowOrigin is sent as Access-Control-Allow-Origin.
	AllowOrigin string
	// AllowMethods are the methods a preflight allows.
	AllowMethods []string
	// AllowHeaders are the request headers a preflight allows when the
	// request names none; when it names some, they are echoed back, as the
	// reference does.
	AllowHeaders []string
	// ExposeHeaders are the response headers scripts may read.
	ExposeHeaders []string
	// MaxAge is how long a browser may cache a preflight answer.
	MaxAge time.Duration
}

// DefaultCORS returns the policy of the reference services, exposing the
// RateLimit-* headers and the atproto response headers.
func DefaultCORS() CORS {
	return CORS{
		AllowOrigin:  "*",
		AllowMethods: []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"},
		AllowHeaders: []string{
			"Authorization", "Content-Type", "DPoP",
			"atproto-proxy", "atproto-accept-labelers", "X-Request-Id",
		},
		ExposeHeaders: []string{
			"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy",
			"atproto-repo-rev", "atproto-content-labelers", "DPoP-Nonce", "WWW-Authenticate",
			"X-Request-Id",
		},
		MaxAge: 24 * time.Hour,
	}
}

// apply sets the CORS headers of a response and answers a preflight
// request, reporting whether it did.
func (c *CORS) apply(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	if c.AllowOrigin != "" {
		h.Set("Access-Control-Allow-Origin", c.AllowOrigin)
		if c.AllowOrigin != "*" {
			h.Add("Vary", "Origin")
		}
	}
	if r.Method != http.MethodOptions {
		if len(c.ExposeHeaders) > 0 {
			h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ", "))
		}
		return false
	}
	if len(c.AllowMethods) > 0 {
		h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
	}
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	} else if len(c.AllowHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ", "))
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge/time.Second)))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}
