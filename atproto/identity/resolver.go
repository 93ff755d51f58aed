package identity

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Resolver resolves atproto identities. BaseResolver talks to the network;
// CachingResolver wraps any Resolver with a cache. Implementations are safe
// for concurrent use.
type Resolver interface {
	// ResolveDIDDocument fetches the current DID document of did and checks
	// that its id is did.
	ResolveDIDDocument(ctx context.Context, did syntax.DID) (*DIDDocument, error)
	// ResolveDID fetches the DID document and derives its Identity. The
	// Identity's Handle is the declared handle, not verified.
	ResolveDID(ctx context.Context, did syntax.DID) (*Identity, error)
	// ResolveHandle resolves a handle to a DID with the DNS TXT and HTTPS
	// well-known methods. The result is not verified against the DID
	// document.
	ResolveHandle(ctx context.Context, handle syntax.Handle) (syntax.DID, error)
	// Lookup resolves a DID or a handle to an Identity whose Handle has been
	// verified in both directions. For a DID, a handle that does not
	// resolve back to the DID leaves Identity.Handle as
	// syntax.HandleInvalid (this is not an error). For a handle, a DID
	// document that does not declare that handle is an error matching
	// ErrHandleMismatch.
	Lookup(ctx context.Context, id syntax.AtIdentifier) (*Identity, error)
}

// TXTResolver looks up DNS TXT records. *net.Resolver implements it.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// DefaultPLCURL is the public did:plc directory.
const DefaultPLCURL = "https://plc.directory"

// MaxHandleResponseSize bounds the body of an HTTPS handle resolution
// response (/.well-known/atproto-did).
const MaxHandleResponseSize = 1 << 10

// DefaultDNSTimeout bounds one DNS TXT lookup.
const DefaultDNSTimeout = 5 * time.Second

// Options configures a BaseResolver. The zero value resolves against the
// public network with the defaults.
type Options struct {
	// PLCURL is the did:plc directory base URL (default DefaultPLCURL).
	PLCURL string

	// HTTPClient is used for all HTTP requests. When nil, a client from
	// NewSafeHTTPClient is used, with AllowPrivateNetworks passed through.
	// A caller-supplied client is used as is: it is the caller's job to
	// make it safe.
	HTTPClient *http.Client

	// AllowPrivateNetworks lets the default HTTP client connect to loopback
	// and private addresses. Only for development networks and tests.
	AllowPrivateNetworks bool

	// AllowLocalhost allows did:web:localhost (with an optional port,
	// "did:web:localhost%3A8080"), fetched over plain http, as the DID
	// specification permits for testing and development. Fetching it also
	// needs a client that may reach loopback (AllowPrivateNetworks).
	AllowLocalhost bool

	// AllowReservedTLDs lets handles and did:web hosts with reserved
	// top-level domains (.local, .internal, .example, ...) be resolved.
	// Only for tests.
	AllowReservedTLDs bool

	// TXT performs DNS TXT lookups (default: a zero net.Resolver, which
	// uses the system configuration).
	TXT TXTResolver

	// DNSTimeout bounds each DNS TXT lookup (default DefaultDNSTimeout).
	DNSTimeout time.Duration

	// HandleHTTPBase returns the base URL (scheme://host[:port], no
	// trailing slash) at which a handle's /.well-known/atproto-did is
	// fetched. The default is "https://" + handle; tests override it to
	// point at a local server.
	HandleHTTPBase func(syntax.Handle) string

	// UserAgent is sent with HTTP requests (default "welkin-identity").
	UserAgent string
}

// BaseResolver resolves identities over the network, without caching:
// did:plc through a PLC directory, did:web over HTTPS, and handles through
// DNS and HTTPS. It is safe for concurrent use.
type BaseResolver struct {
	plcURL         string
	client         *http.Client
	txt            TXTResolver
	dnsTimeout     time.Duration
	allowLocalhost bool
	allowReserved  bool
	handleBase     func(syntax.Handle) string
	userAgent      string
}

var _ Resolver = (*BaseResolver)(nil)

// NewResolver returns a BaseResolver configured by opts.
func NewResolver(opts Options) *BaseResolver {
	r := &BaseResolver{
		plcURL:         strings.TrimRight(opts.PLCURL, "/"),
		client:         opts.HTTPClient,
		txt:            opts.TXT,
		dnsTimeout:     opts.DNSTimeout,
		allowLocalhost: opts.AllowLocalhost,
		allowReserved:  opts.AllowReservedTLDs,
		handleBase:     opts.HandleHTTPBase,
		userAgent:      opts.UserAgent,
	}
	if r.plcURL == "" {
		r.plcURL = DefaultPLCURL
	}
	if r.client == nil {
		r.client = NewSafeHTTPClient(SafeHTTPOptions{AllowPrivateNetworks: opts.AllowPrivateNetworks})
	}
	if r.txt == nil {
		r.txt = &net.Resolver{}
	}
	if r.dnsTimeout <= 0 {
		r.dnsTimeout = DefaultDNSTimeout
	}
	if r.handleBase == nil {
		r.handleBase = func(h syntax.Handle) string { return "https://" + string(h) }
	}
	if r.userAgent == "" {
		r.userAgent = "welkin-identity"
	}
	return r
}

// ResolveDID implements Resolver.
func (r *BaseResolver) ResolveDID(ctx context.Context, did syntax.DID) (*Identity, error) {
	doc, err := r.ResolveDIDDocument(ctx, did)
	if err != nil {
		return nil, err
	}
	return NewIdentity(doc)
}

// Lookup implements Resolver.
func (r *BaseResolver) Lookup(ctx context.Context, id syntax.AtIdentifier) (*Identity, error) {
	return lookup(ctx, r, id)
}

// didHandleResolver is the part of Resolver that lookup builds on.
type didHandleResolver interface {
	ResolveDID(ctx context.Context, did syntax.DID) (*Identity, error)
	ResolveHandle(ctx context.Context, handle syntax.Handle) (syntax.DID, error)
}

// lookup performs bidirectional verification on top of r.
func lookup(ctx context.Context, r didHandleResolver, id syntax.AtIdentifier) (*Identity, error) {
	if id.IsDID() {
		did, err := id.AsDID()
		if err != nil {
			return nil, err
		}
		ident, err := r.ResolveDID(ctx, did)
		if err != nil {
			return nil, err
		}
		return verifyDeclaredHandle(ctx, r, ident)
	}
	h, err := id.AsHandle()
	if err != nil {
		return nil, err
	}
	h = h.Normalize()
	did, err := r.ResolveHandle(ctx, h)
	if err != nil {
		return nil, err
	}
	ident, err := r.ResolveDID(ctx, did)
	if err != nil {
		return nil, err
	}
	if ident.DeclaredHandle() != h {
		return nil, &HandleError{
			Handle: string(h),
			Kind:   ErrHandleMismatch,
			Err:    fmt.Errorf("handle resolves to %s, whose DID document declares handle %q", did, ident.DeclaredHandle()),
		}
	}
	out := ident.clone()
	out.Handle = h
	return out, nil
}

// verifyDeclaredHandle resolves the document's declared handle and keeps it
// only if it points back at the same DID. Resolution failures other than
// the caller's own cancellation mark the handle invalid.
func verifyDeclaredHandle(ctx context.Context, r didHandleResolver, ident *Identity) (*Identity, error) {
	out := ident.clone()
	out.Handle = syntax.HandleInvalid
	decl := ident.DeclaredHandle()
	if decl.IsInvalidHandle() {
		return out, nil
	}
	did, err := r.ResolveHandle(ctx, decl)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return out, nil
	}
	if did == ident.DID {
		out.Handle = decl
	}
	return out, nil
}
