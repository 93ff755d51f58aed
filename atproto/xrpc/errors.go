package xrpc

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error names used by the reference implementation, with the HTTP status
// each one travels with. A lexicon may declare more names of its own; they
// are sent with status 400 unless a handler says otherwise.
const (
	NameInvalidRequest         = "InvalidRequest"         // 400
	NameExpiredToken           = "ExpiredToken"           // 400
	NameInvalidToken           = "InvalidToken"           // 400
	NameAuthenticationRequired = "AuthenticationRequired" // 401
	NameForbidden              = "Forbidden"              // 403
	NameNotFound               = "NotFound"               // 404
	NamePayloadTooLarge        = "PayloadTooLarge"        // 413
	NameRateLimitExceeded      = "RateLimitExceeded"      // 429
	NameInternalServerError    = "InternalServerError"    // 500
	NameMethodNotImplemented   = "MethodNotImplemented"   // 501
	NameUpstreamFailure        = "UpstreamFailure"        // 502
	NameNotEnoughResources     = "NotEnoughResources"     // 503
	NameUpstreamTimeout        = "UpstreamTimeout"        // 504
)

// Error is an XRPC error: an HTTP status and the {"error", "message"}
// envelope sent with it. Handlers return it (or wrap it) to choose what the
// client sees; any other error reaches the client as a bare 500
// InternalServerError. The client returns it for every non-2xx response.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Name is the "error" member of the envelope, such as "InvalidRequest"
	// or a name the endpoint's lexicon declares.
	Name string
	// Message is the human-readable "message" member; it may be empty.
	Message string
	// Header holds extra response headers: the RateLimit-* headers of a 429
	// on the server, every response header on the client.
	Header http.Header
	// Err is an underlying cause. It is never sent to a client.
	Err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("xrpc: %d %s", e.Status, e.Name)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Name (and the same
// Status, when target's is not zero), so that
// errors.Is(err, xrpc.ExpiredToken("")) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Name == e.Name && (t.Status == 0 || t.Status == e.Status)
}

// Errorf returns an *Error with the given status and name and a formatted
// message.
func Errorf(status int, name, format string, args ...any) *Error {
	return &Error{Status: status, Name: name, Message: fmt.Sprintf(format, args...)}
}

func newError(status int, name, msg string) *Error {
	return &Error{Status: status, Name: name, Message: msg}
}

// InvalidRequest is a 400 InvalidRequest.
func InvalidRequest(msg string) *Error { return newError(400, NameInvalidRequest, msg) }

// ExpiredToken is a 400 ExpiredToken: the client should refresh its session.
func ExpiredToken(msg string) *Error { return newError(400, NameExpiredToken, msg) }

// InvalidToken is a 400 InvalidToken.
func InvalidToken(msg string) *Error { return newError(400, NameInvalidToken, msg) }

// AuthRequired is a 401 AuthenticationRequired.
func AuthRequired(msg string) *Error { return newError(401, NameAuthenticationRequired, msg) }

// Forbidden is a 403 Forbidden.
func Forbidden(msg string) *Error { return newError(403, NameForbidden, msg) }

// NotFound is a 404 NotFound.
func NotFound(msg string) *Error { return newError(404, NameNotFound, msg) }

// PayloadTooLarge is a 413 PayloadTooLarge.
func PayloadTooLarge(msg string) *Error { return newError(413, NamePayloadTooLarge, msg) }

// InternalServerError is a 500 InternalServerError. Its message is sent to
// the client, so it must never hold internal details; put them in Err.
func InternalServerError(msg string) *Error {
	if msg == "" {
		msg = "Internal Server Error"
	}
	return newError(500, NameInternalServerError, msg)
}

// MethodNotImplemented is a 501 MethodNotImplemented.
func MethodNotImplemented(msg string) *Error {
	if msg == "" {
		msg = "Method Not Implemented"
	}
	return newError(501, NameMethodNotImplemented, msg)
}

// UpstreamFailure is a 502 UpstreamFailure.
func UpstreamFailure(msg string) *Error { return newError(502, NameUpstreamFailure, msg) }

// NotEnoughResources is a 503 NotEnoughResources.
func NotEnoughResources(msg string) *Error { return newError(503, NameNotEnoughResources, msg) }

// Unavailable is NotEnoughResources: a 503 telling the client to come back
// later.
func Unavailable(msg string) *Error { return NotEnoughResources(msg) }

// UpstreamTimeout is a 504 UpstreamTimeout.
func UpstreamTimeout(msg string) *Error { return newError(504, NameUpstreamTimeout, msg) }

// RateLimit describes the state of a rate limit, as sent in the RateLimit-*
// headers (IETF draft-ietf-httpapi-ratelimit-headers, as the reference
// services send them).
type RateLimit struct {
	Limit     int       // requests allowed per window
	Remaining int       // requests left in this window
	Reset     time.Time // when the window ends
	Policy    string    // such as "100;w=300"; optional
}

// Header returns the RateLimit-* headers of l: RateLimit-Reset is a Unix
// time in seconds, as the reference services send it.
func (l RateLimit) Header() http.Header {
	h := http.Header{}
	h.Set("RateLimit-Limit", strconv.Itoa(l.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(l.Remaining, 0)))
	if !l.Reset.IsZero() {
		h.Set("RateLimit-Reset", strconv.FormatInt(l.Reset.Unix(), 10))
	}
	if l.Policy != "" {
		h.Set("RateLimit-Policy", l.Policy)
	}
	return h
}

// RateLimitExceeded is a 429 RateLimitExceeded carrying the RateLimit-*
// headers of l.
func RateLimitExceeded(l RateLimit) *Error {
	e := newError(429, NameRateLimitExceeded, "Rate Limit Exceeded")
	e.Header = l.Header()
	return e
}

// statusNames names the statuses that arrive without an envelope.
var statusNames = map[int]string{
	400: NameInvalidRequest,
	401: NameAuthenticationRequired,
	403: NameForbidden,
	404: NameNotFound,
	406: "NotAcceptable",
	413: NamePayloadTooLarge,
	415: "UnsupportedMediaType",
	429: NameRateLimitExceeded,
	500: NameInternalServerError,
	501: NameMethodNotImplemented,
	502: NameUpstreamFailure,
	503: NameNotEnoughResources,
	504: NameUpstreamTimeout,
}

// nameForStatus returns the reference name of an HTTP status, or a generic
// one when it has none.
func nameForStatus(status int) string {
	if n, ok := statusNames[status]; ok {
		return n
	}
	if status >= 500 {
		return NameInternalServerError
	}
	if status >= 400 {
		return NameInvalidRequest
	}
	return "Unknown"
}

// NamedError is an error of another package that knows its XRPC name and
// status, such as atproto/auth's token errors (401 BadJwtSignature, 400
// ExpiredToken). A handler may return one as it is; the server answers
// with its name and status, and with its PublicMessage, if it has one,
// as the message (never the text of its cause).
type NamedError interface {
	error
	ErrorName() string
	Status() int
}

// asXRPCError turns any handler error into the *Error to send: an *Error
// found in the chain as is, a NamedError with its name and status, a body
// over the size limit as 413, anything else as a bare 500 whose text stays
// in Err.
func asXRPCError(err error) *Error {
	var xe *Error
	if errors.As(err, &xe) {
		if xe.Status < 400 || xe.Status > 599 {
			c := *xe
			c.Status = 500
			return &c
		}
		if xe.Name == "" {
			c := *xe
			c.Name = nameForStatus(xe.Status)
			return &c
		}
		return xe
	}
	var ne NamedError
	if errors.As(err, &ne) && ne.Status() >= 400 && ne.Status() <= 599 && ne.ErrorName() != "" {
		msg := ne.ErrorName()
		if pm, ok := ne.(interface{ PublicMessage() string }); ok && pm.PublicMessage() != "" {
			msg = pm.PublicMessage()
		}
		return &Error{Status: ne.Status(), Name: ne.ErrorName(), Message: msg, Err: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		e := PayloadTooLarge("request body is too large")
		e.Err = err
		return e
	}
	e := InternalServerError("")
	e.Err = err
	return e
}
