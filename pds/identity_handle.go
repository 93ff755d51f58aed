package pds

import (
	"context"
	"net/http"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// Limits on the first label of a handle under one of the PDS's own
// domains (the reference PDS's service-handle rules).
const (
	minHostedHandleLabel = 3
	maxHostedHandleLabel = 18
)

// reservedHandleLabels are names no user may take under the PDS's own
// domains, because they would pass for the operator or for a service of
// the host (they can still be assigned through the admin API).
var reservedHandleLabels = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`
		abuse account accounts admin administrator api app apps atproto
		auth billing blog bluesky bsky cdn contact dashboard dev developer
		developers did dns docs email feed feeds ftp help helpdesk home host
		hostmaster identity imap info invite invites ios labeler legal login
		logout mail mailer master media moderation moderator mod news noc
		noreply no-reply null official oauth operator owner password pds plc
		policy pop pop3 postmaster press privacy relay report reports root
		safety security server service services settings signup smtp staff
		static status support sysadmin system team terms test undefined user
		users verify webmaster welkin www xrpc`) {
		reservedHandleLabels[w] = true
	}
}

// isHostedHandle reports whether h is under one of the PDS's handle
// domains.
func (s *Server) isHostedHandle(h syntax.Handle) bool {
	return s.hostedDomain(h) != ""
}

// hostedDomain returns the handle domain (".example.com") h is under, or
// "".
func (s *Server) hostedDomain(h syntax.Handle) string {
	hs := string(h)
	for _, d := range s.cfg.HandleDomains {
		if strings.HasSuffix(hs, d) {
			return d
		}
	}
	return ""
}

// handleRules say what normalizeHandle accepts.
type handleRules struct {
	// did is the account that will hold the handle; "" while creating an
	// account, when only the PDS's own domains are allowed.
	did syntax.DID
	// admin lifts the reserved-name rule (com.atproto.admin.*).
	admin bool
}

// normalizeHandle parses raw, lower-cases it and applies the PDS's rules,
// answering with the reference's error names: InvalidHandle for a
// malformed or disallowed handle, HandleNotAvailable for a reserved one,
// UnsupportedDomain for another domain while creating an account; a handle
// of another domain must resolve to rules.did.
func (s *Server) normalizeHandle(ctx context.Context, raw string, rules handleRules) (syntax.Handle, error) {
	h, err := syntax.ParseHandle(raw)
	if err != nil {
		return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "%s", handleParseMessage(err))
	}
	h = h.Normalize()
	if !h.AllowedTLD() {
		return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "Handle TLD is invalid or disallowed")
	}
	if d := s.hostedDomain(h); d != "" {
		front := strings.TrimSuffix(string(h), d)
		switch {
		case strings.Contains(front, "."):
			return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "Invalid characters in handle")
		case len(front) < minHostedHandleLabel:
			return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "Handle too short")
		case len(front) > maxHostedHandleLabel:
			return "", xrpc.Errorf(http.StatusBadRequest, "InvalidHandle", "Handle too long")
		case !rules.admin && reservedHandleLabels[front]:
			return "", xrpc.Errorf(http.StatusBadRequest, "HandleNotAvailable", "Reserved handle")
		}
		return h, nil
	}
	if rules.did == "" {
		return "", xrpc.Errorf(http.StatusBadRequest, "UnsupportedDomain", "Not a supported handle domain")
	}
	// A handle of another domain must already point at the account; the
	// cached answer may be stale, so it is asked afresh.
	s.resolver.PurgeHandle(h)
	got, err := s.resolver.ResolveHandle(ctx, h)
	if err != nil || got != rules.did {
		e := xrpc.InvalidRequest("External handle did not resolve to DID")
		e.Err = err
		return "", e
	}
	return h, nil
}

// handleParseMessage turns a syntax error into the message a client sees.
func handleParseMessage(err error) string {
	return "Invalid handle: " + strings.TrimPrefix(err.Error(), "syntax: ")
}
