package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ResolveDIDDocument implements Resolver for did:plc and did:web.
func (r *BaseResolver) ResolveDIDDocument(ctx context.Context, did syntax.DID) (*DIDDocument, error) {
	var u string
	switch did.Method() {
	case "plc":
		if err := checkPLCIdentifier(did.Identifier()); err != nil {
			return nil, didErr(string(did), ErrUnsupportedDIDMethod, err)
		}
		u = r.plcURL + "/" + string(did)
	case "web":
		var err error
		u, err = r.didWebURL(did)
		if err != nil {
			return nil, didErr(string(did), ErrUnsupportedDIDMethod, err)
		}
	default:
		return nil, didErr(string(did), ErrUnsupportedDIDMethod, fmt.Errorf("method %q", did.Method()))
	}
	return r.fetchDIDDocument(ctx, did, u)
}

// checkPLCIdentifier checks the did:plc identifier form: 24 characters of
// lower-case base32 (a-z, 2-7).
func checkPLCIdentifier(id string) error {
	if len(id) != 24 {
		return fmt.Errorf("did:plc identifier must be 24 characters, got %d", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z') && !(c >= '2' && c <= '7') {
			return fmt.Errorf("did:plc identifier has invalid character %q", c)
		}
	}
	return nil
}

// didWebURL maps a hostname-level did:web to its document URL. Path-based
// did:web DIDs are refused, as atproto requires. A port (percent-encoded
// colon) is allowed only on localhost, and localhost only with
// AllowLocalhost, in which case the URL is plain http.
func (r *BaseResolver) didWebURL(did syntax.DID) (string, error) {
	id := did.Identifier()
	if strings.Contains(id, ":") {
		return "", errors.New("path-based did:web is not supported by atproto")
	}
	host, port := id, ""
	if i := strings.Index(strings.ToLower(id), "%3a"); i >= 0 {
		host, port = id[:i], id[i+3:]
		if port == "" || len(port) > 5 {
			return "", errors.New("did:web port is malformed")
		}
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return "", errors.New("did:web port is malformed")
			}
		}
	}
	if strings.Contains(host, "%") {
		return "", errors.New("did:web hostname contains percent-encoding")
	}
	host = strings.ToLower(host)
	if host == "localhost" {
		if !r.allowLocalhost {
			return "", errors.New("did:web:localhost is only allowed in testing and development")
		}
		if port != "" {
			return "http://localhost:" + port + "/.well-known/did.json", nil
		}
		return "http://localhost/.well-known/did.json", nil
	}
	if port != "" {
		return "", errors.New("did:web ports are only allowed for localhost")
	}
	h, err := syntax.ParseHandle(host)
	if err != nil {
		return "", fmt.Errorf("did:web hostname: %w", err)
	}
	if !r.allowReserved && !h.AllowedTLD() {
		return "", fmt.Errorf("did:web hostname %q has a reserved top-level domain", host)
	}
	return "https://" + host + "/.well-known/did.json", nil
}

func (r *BaseResolver) fetchDIDDocument(ctx context.Context, did syntax.DID, u string) (*DIDDocument, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, didErr(string(did), ErrDIDResolutionFailed, err)
	}
	req.Header.Set("Accept", "application/did+ld+json, application/did+json, application/json")
	req.Header.Set("User-Agent", r.userAgent)
	resp, err := r.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, didErr(string(did), ErrDIDResolutionFailed, err)
	}
	defer drainClose(resp.Body)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, didErr(string(did), ErrDIDNotFound, nil)
	case resp.StatusCode == http.StatusGone:
		return nil, didErr(string(did), ErrDIDDeactivated, nil)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, didErr(string(did), ErrDIDResolutionFailed, fmt.Errorf("HTTP status %d from %s", resp.StatusCode, u))
	}
	body, err := readLimited(resp, MaxDIDDocumentSize)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, didErr(string(did), ErrDIDResolutionFailed, err)
	}
	doc, err := ParseDIDDocument(body)
	if err != nil {
		return nil, didErr(string(did), ErrDIDResolutionFailed, err)
	}
	if doc.ID != string(did) {
		return nil, didErr(string(did), ErrDIDDocumentMismatch, fmt.Errorf("document id is %q", truncate(doc.ID, 128)))
	}
	return doc, nil
}
