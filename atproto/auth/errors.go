package auth

import (
	"errors"
	"net/http"
)

// Sentinel errors. Every error returned by a verifier is an *Error that
// matches exactly one of these with errors.Is.
var (
	// ErrBadJwt: the token is malformed, or a claim is missing or invalid.
	ErrBadJwt = errors.New("auth: malformed jwt")
	// ErrBadJwtType: the typ header names another kind of token (a session
	// access or refresh token, or a DPoP proof).
	ErrBadJwtType = errors.New("auth: wrong jwt type")
	// ErrBadJwtSignature: the signature does not verify with the issuer's
	// key, or alg does not match the key type.
	ErrBadJwtSignature = errors.New("auth: bad jwt signature")
	// ErrBadJwtAudience: aud is not this service.
	ErrBadJwtAudience = errors.New("auth: bad jwt audience")
	// ErrBadJwtLexiconMethod: lxm is missing or names another method.
	ErrBadJwtLexiconMethod = errors.New("auth: bad jwt lexicon method")
	// ErrJwtExpired: exp is in the past.
	ErrJwtExpired = errors.New("auth: jwt expired")
	// ErrJwtReplayed: the jti was already used within the token lifetime.
	ErrJwtReplayed = errors.New("auth: jwt replayed")
	// ErrUnresolvableIssuer: the issuer DID (or its key) could not be
	// resolved.
	ErrUnresolvableIssuer = errors.New("auth: could not resolve jwt issuer")

	// ErrExpiredToken: a session token is past its exp, or a refresh token
	// has been revoked or rotated away.
	ErrExpiredToken = errors.New("auth: expired token")
	// ErrInvalidToken: a session token failed verification.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrTokenRevoked: a refresh token is no longer in the store. It is
	// reported to clients as ExpiredToken, like the reference PDS does.
	ErrTokenRevoked = errors.New("auth: token revoked")
)

// Error is an authentication failure. Name is the XRPC error name and
// HTTPStatus the status code the xrpc layer should answer with.
type Error struct {
	Name       string
	HTTPStatus int
	Message    string
	kind       error
	cause      error
}

// ErrorName returns the XRPC error name, e.g. "BadJwtSignature".
func (e *Error) ErrorName() string { return e.Name }

// Status returns the HTTP status code.
func (e *Error) Status() int { return e.HTTPStatus }

// PublicMessage returns the message fit to send to the client: Message,
// without the underlying cause (which may name internal hosts or keys).
func (e *Error) PublicMessage() string { return e.Message }

func (e *Error) Error() string {
	s := e.Name + ": " + e.Message
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap exposes the sentinel and the underlying cause, if any.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func svcErr(kind error, msg string, cause error) *Error {
	name := "BadJwt"
	switch kind {
	case ErrBadJwtType:
		name = "BadJwtType"
	case ErrBadJwtSignature:
		name = "BadJwtSignature"
	case ErrBadJwtAudience:
		name = "BadJwtAudience"
	case ErrBadJwtLexiconMethod:
		name = "BadJwtLexiconMethod"
	case ErrJwtExpired:
		name = "JwtExpired"
	}
	return &Error{Name: name, HTTPStatus: http.StatusUnauthorized, Message: msg, kind: kind, cause: cause}
}

func sessErr(kind error, msg string, cause error) *Error {
	name := "InvalidToken"
	if kind == ErrExpiredToken || kind == ErrTokenRevoked {
		name = "ExpiredToken"
	}
	return &Error{Name: name, HTTPStatus: http.StatusBadRequest, Message: msg, kind: kind, cause: cause}
}
