package identity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ResolveHandle implements Resolver. The DNS TXT record _atproto.<handle>
// and https://<handle>/.well-known/atproto-did are queried concurrently.
// Following the handle specification ("if the two methods return conflicting
// results, the DNS TXT result should be preferred") and the reference
// TypeScript resolver, a DID found through DNS always wins: the HTTPS result
// is used only when DNS yields no DID. DNS records naming two different DIDs
// make resolution fail with ErrHandleAmbiguous, as the specification
// requires, without falling back to HTTPS. When both methods fail the error
// is a *HandleError holding both causes; it matches ErrHandleResolutionFailed
// if either failure may be transient and ErrHandleNotFound otherwise.
func (r *BaseResolver) ResolveHandle(ctx context.Context, handle syntax.Handle) (syntax.DID, error) {
	h := handle.Normalize()
	if _, err := syntax.ParseHandle(string(h)); err != nil {
		return "", &HandleError{Handle: string(handle), Kind: ErrHandleNotFound, Err: err}
	}
	if h.IsInvalidHandle() || (!r.allowReserved && !h.AllowedTLD()) {
		return "", &HandleError{Handle: string(h), Kind: ErrHandleReservedTLD}
	}

	type result struct {
		did syntax.DID
		err error
	}
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	dnsCh := make(chan result, 1)
	httpCh := make(chan result, 1)
	go func() {
		did, err := r.resolveHandleDNS(sub, h)
		dnsCh <- result{did, err}
	}()
	go func() {
		did, err := r.resolveHandleHTTP(sub, h)
		httpCh <- result{did, err}
	}()

	dns := <-dnsCh
	if dns.err == nil || errors.Is(dns.err, ErrHandleAmbiguous) {
		cancel()
		<-httpCh // wait so no work outlives the call
		if dns.err != nil {
			return "", &HandleError{Handle: string(h), Kind: ErrHandleAmbiguous, DNSErr: dns.err}
		}
		return dns.did, nil
	}
	web := <-httpCh
	if web.err == nil {
		return web.did, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	kind := ErrHandleNotFound
	if errors.Is(dns.err, ErrHandleResolutionFailed) || errors.Is(web.err, ErrHandleResolutionFailed) {
		kind = ErrHandleResolutionFailed
	}
	return "", &HandleError{Handle: string(h), Kind: kind, DNSErr: dns.err, HTTPErr: web.err}
}

// methodErr classifies one resolution method's failure: kind is
// ErrHandleNotFound for definite absence and ErrHandleResolutionFailed for
// failures that may be transient.
type methodErr struct {
	kind error
	msg  string
	err  error
}

func (e *methodErr) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *methodErr) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

// resolveHandleDNS looks up _atproto.<handle>. Records not starting with
// "did=" are ignored, as are did= records whose value is not a valid DID.
// Exactly one distinct DID must remain.
func (r *BaseResolver) resolveHandleDNS(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	name := "_atproto." + string(h)
	if len(name) > 253 {
		return "", &methodErr{kind: ErrHandleNotFound, msg: "name too long for DNS"}
	}
	ctx, cancel := context.WithTimeout(ctx, r.dnsTimeout)
	defer cancel()
	records, err := r.txt.LookupTXT(ctx, name)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return "", &methodErr{kind: ErrHandleNotFound, msg: "no TXT record", err: err}
		}
		return "", &methodErr{kind: ErrHandleResolutionFailed, msg: "TXT lookup failed", err: err}
	}
	var (
		found   syntax.DID
		invalid int
	)
	for _, rec := range records {
		v, ok := strings.CutPrefix(rec, "did=")
		if !ok {
			continue
		}
		did, err := syntax.ParseDID(strings.TrimSpace(v))
		if err != nil {
			invalid++
			continue
		}
		if found != "" && found != did {
			return "", &methodErr{kind: ErrHandleAmbiguous, msg: fmt.Sprintf("TXT records name both %s and %s", found, did)}
		}
		found = did
	}
	if found == "" {
		if invalid > 0 {
			return "", &methodErr{kind: ErrHandleNotFound, msg: fmt.Sprintf("%d did= TXT record(s), none a valid DID", invalid)}
		}
		return "", &methodErr{kind: ErrHandleNotFound, msg: "no did= TXT record"}
	}
	return found, nil
}

// resolveHandleHTTP fetches /.well-known/atproto-did from the handle's host.
func (r *BaseResolver) resolveHandleHTTP(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	u := r.handleBase(h) + "/.well-known/atproto-did"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", &methodErr{kind: ErrHandleNotFound, msg: "bad URL", err: err}
	}
	req.Header.Set("Accept", "text/plain")
	req.Header.Set("User-Agent", r.userAgent)
	resp, err := r.client.Do(req)
	if err != nil {
		return "", &methodErr{kind: classifyHTTPError(err), msg: "request failed", err: err}
	}
	defer drainClose(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		kind := ErrHandleNotFound
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			kind = ErrHandleResolutionFailed
		}
		return "", &methodErr{kind: kind, msg: fmt.Sprintf("HTTP status %d", resp.StatusCode)}
	}
	body, err := readLimited(resp, MaxHandleResponseSize)
	if err != nil {
		kind := ErrHandleResolutionFailed
		if errors.Is(err, ErrResponseTooLarge) {
			kind = ErrHandleNotFound
		}
		return "", &methodErr{kind: kind, msg: "reading body", err: err}
	}
	did, err := syntax.ParseDID(strings.TrimSpace(string(body)))
	if err != nil {
		return "", &methodErr{kind: ErrHandleNotFound, msg: "body is not a DID", err: err}
	}
	return did, nil
}

// classifyHTTPError sorts transport errors into definite absence (no such
// host, connection refused, refused by policy) and possibly transient
// failures (timeouts, resets, TLS and server trouble).
func classifyHTTPError(err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, ErrForbiddenAddress), errors.Is(err, ErrRedirectRefused):
		return ErrHandleNotFound
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return ErrHandleNotFound
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrHandleNotFound
	default:
		return ErrHandleResolutionFailed
	}
}
