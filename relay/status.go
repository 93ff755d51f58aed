package relay

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/relay/store"
)

// The public status page: GET / is a landing page with a form, GET
// /status?host=NAME tells a PDS operator how the relay sees their host
// (connection, last seq, accounts and limits with their reasons, recent
// rejections), and GET /status.json?host=NAME says the same for scripts.
// No login: nothing on it is secret, and it is what the host's operator
// needs to know why their events are or are not relayed.

//go:embed status.html
var statusHTML string

var statusTemplates = template.Must(template.New("status").Funcs(template.FuncMap{
	"when":       func(t time.Time) string { return "" }, // replaced per request
	"until":      func(t time.Time) string { return "" },
	"count":      countText,
	"rate":       rateText,
	"accounts":   accountsText,
	"reasonText": reasonText,
}).Parse(statusHTML))

// maxStatusHost bounds the host parameter echoed back on the page.
const maxStatusHost = 300

func (s *Server) registerStatus(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.handleLanding)
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.HandleFunc("GET /status.json", s.handleStatusJSON)
}

// statusPage is the data of the "host" template.
type statusPage struct {
	Name  string // the host as normalized, or as typed
	Query string // as typed, for the form
	Error string // the hostname is invalid
	Host  *hostReport
}

func (s *Server) handleLanding(w http.ResponseWriter, r *http.Request) {
	s.renderPage(w, http.StatusOK, "landing", struct{ Version string }{s.cfg.Version})
}

// lookupStatus finds the host a status request names: the report, or
// the HTTP status and page data of why not.
func (s *Server) lookupStatus(r *http.Request) (int, statusPage) {
	q := strings.TrimSpace(r.URL.Query().Get("host"))
	page := statusPage{Query: truncate(q, maxStatusHost), Name: truncate(q, maxStatusHost)}
	addr, err := parseHostname(q, true)
	if err != nil {
		page.Error = truncate(err.Error(), maxStatusHost+100)
		return http.StatusBadRequest, page
	}
	page.Name = addr.Name
	h, err := s.st.Host(r.Context(), addr.Name)
	if errors.Is(err, store.ErrNotFound) {
		return http.StatusNotFound, page
	}
	if err == nil {
		var rep hostReport
		if rep, err = s.hostReport(r.Context(), h); err == nil {
			page.Host = &rep
			return http.StatusOK, page
		}
	}
	s.log.Error("status page: reading a host", "host", addr.Name, "err", err)
	page.Error = "the relay could not read this host's state; try again later"
	return http.StatusInternalServerError, page
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if strings.TrimSpace(r.URL.Query().Get("host")) == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	code, page := s.lookupStatus(r)
	s.renderPage(w, code, "host", page)
}

func (s *Server) handleStatusJSON(w http.ResponseWriter, r *http.Request) {
	code, page := s.lookupStatus(r)
	switch {
	case page.Host != nil:
		writeJSON(w, code, page.Host)
	case code == http.StatusNotFound:
		writeJSON(w, code, adminError{"HostNotFound", "this relay does not know the host " + page.Name})
	case code == http.StatusBadRequest:
		writeJSON(w, code, adminError{"InvalidRequest", page.Error})
	default:
		writeJSON(w, code, adminError{"InternalServerError", page.Error})
	}
}

// renderPage executes a template into a buffer first, so that a failure
// does not leave half a page.
func (s *Server) renderPage(w http.ResponseWriter, code int, name string, data any) {
	now := s.cfg.Now()
	t, err := statusTemplates.Clone()
	if err == nil {
		t = t.Funcs(template.FuncMap{
			"when":  func(at time.Time) string { return whenText(at, now) },
			"until": func(at time.Time) string { return untilText(at, now) },
		})
	}
	var b strings.Builder
	if err == nil {
		err = t.ExecuteTemplate(&b, name, data)
	}
	if err != nil {
		s.log.Error("status page: rendering", "template", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	w.Write([]byte(b.String()))
}

// whenText writes a past time for people: "2025-06-01 12:00:00 UTC (5 min
// ago)".
func whenText(at, now time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.UTC().Format("2006-01-02 15:04:05 UTC") + " (" + humanDuration(max(now.Sub(at), 0)) + " ago)"
}

// untilText writes a future time for people: "in 30 s".
func untilText(at, now time.Time) string {
	if !at.After(now) {
		return "now"
	}
	return "in " + humanDuration(at.Sub(now))
}

func countText(n any) string {
	switch v := n.(type) {
	case int:
		return groupDigits(int64(v))
	case int64:
		return groupDigits(v)
	}
	return "?"
}

// reasonText explains a rejection reason to the host's operator.
func reasonText(reason string) string {
	if t, ok := reasonTexts[reason]; ok {
		return t
	}
	return ""
}

var reasonTexts = map[string]string{
	reasonRateLimited:        "more events than the host's event rate limit allows; dropped",
	reasonAccountLimit:       "an event of an account new to the relay while the host is at its account limit",
	reasonBadFrame:           "a frame that is not a valid event-stream frame; the relay reconnected",
	reasonBadBody:            "an event whose body does not decode",
	"frame-too-large":        "a frame or event body larger than the sync specification allows",
	"blocks-too-large":       "a CAR slice larger than the sync specification allows",
	"record-too-large":       "a record block larger than the sync specification allows",
	"too-many-ops":           "a commit with more ops than the sync specification allows",
	"bad-cbor":               "an event body that is not DAG-CBOR of the right shape",
	"bad-did":                "an event whose repo or did field is not a DID",
	"bad-event":              "a required event field is missing or malformed",
	"bad-op":                 "a malformed op (action, path or CID)",
	"bad-car":                "a malformed CAR slice, or a block that does not match its CID",
	"missing-block":          "the commit or a written record is not in the CAR slice",
	"bad-commit":             "the commit block is not a valid signed version 3 commit",
	"commit-mismatch":        "the event's fields disagree with its signed commit",
	"bad-record":             "a record that is not a DAG-CBOR map with a $type",
	"no-identity":            "the account's DID could not be resolved",
	"no-signing-key":         "the account's DID document has no usable #atproto key",
	"no-pds-endpoint":        "the account's DID document names no PDS",
	"not-authoritative-host": "the account's DID document names another PDS than this host",
	"inactive-account":       "an event of an account that is not active",
	"rev-rollback":           "a rev lower than the last one accepted for the account",
	"duplicate-rev":          "a rev equal to the last one accepted (a replay)",
	"future-rev":             "a rev too far ahead of the relay's clock",
	"bad-signature":          "a malformed commit signature",
	"wrong-key":              "a signature the account's current key does not verify",
	"inversion-mismatch":     "undoing the commit's ops does not give its prevData (sync 1.1)",
	"missing-prev-data":      "a commit without prevData that is not the repository's first (sync 1.1)",
}
