package relay

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/welkin-atproto/welkin/relay/store"
)

// maxAdminBody bounds an /admin/ request body.
const maxAdminBody = 16 << 10

// There are no relay administration lexicons, so the operator's routes are
// plain HTTP with JSON bodies, under basic auth (admin:PASSWORD):
//
//	POST /admin/hosts/add      {"hostname": "...", "trusted": false}
//	POST /admin/hosts/block    {"hostname": "..."}
//	POST /admin/hosts/unblock  {"hostname": "..."}
//	POST /admin/hosts/limits   {"hostname": "...", "accountLimit": 5000, "eventRate": 200, "eventBurst": 2000}
//	GET  /admin/hosts?cursor=...&limit=...
//
// The first three answer {"hostname": ..., "status": ...}. Adding does
// not check the host's describeServer: the operator vouches for it.
// /limits sets the operator's limits of a host: each field given sets
// one (0 hands it back to the host policy), each left out stays; it
// answers with the host's report, as listed. The listing pages through
// the hosts in the order they were added: for each its status, last seq,
// account count, counts of events and of rejections by reason, recent
// rejections, connection and reconnection state, and its effective limits
// with their reasons; "cursor" names the next page.
func (s *Server) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/hosts/add", s.admin(withHostBody(s.adminAddHost)))
	mux.HandleFunc("POST /admin/hosts/block", s.admin(withHostBody(s.adminSetStatus(store.HostBlocked))))
	mux.HandleFunc("POST /admin/hosts/unblock", s.admin(withHostBody(s.adminSetStatus(store.HostActive))))
	mux.HandleFunc("POST /admin/hosts/limits", s.admin(s.adminSetLimits))
	mux.HandleFunc("GET /admin/hosts", s.admin(s.adminListHosts))
}

type adminHostRequest struct {
	Hostname string `json:"hostname"`
	Trusted  bool   `json:"trusted"`
}

type adminError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// adminAuthorized checks the admin's basic auth, answering 401 when it
// fails.
func (s *Server) adminAuthorized(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if s.cfg.AdminPassword == "" || !ok || user != "admin" ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.AdminPassword)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="relay admin"`)
		writeJSON(w, http.StatusUnauthorized, adminError{"AuthenticationRequired", "admin basic auth required"})
		return false
	}
	return true
}

// admin checks basic auth before calling fn.
func (s *Server) admin(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.adminAuthorized(w, r) {
			return
		}
		fn(w, r)
	}
}

// readAdminBody reads a bounded request body.
func readAdminBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err == nil && len(body) > maxAdminBody {
		err = errors.New("body too large")
	}
	return body, err
}

// decodeAdminBody decodes a bounded JSON request body into v.
func decodeAdminBody(r *http.Request, v any) error {
	body, err := readAdminBody(r)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// withHostBody decodes {"hostname": ..., "trusted": ...} before calling fn.
func withHostBody(fn func(http.ResponseWriter, *http.Request, adminHostRequest)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req adminHostRequest
		if err := decodeAdminBody(r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", "body must be JSON {\"hostname\": ...}: " + err.Error()})
			return
		}
		fn(w, r, req)
	}
}

func (s *Server) adminAddHost(w http.ResponseWriter, r *http.Request, req adminHostRequest) {
	addr, err := parseHostname(req.Hostname, s.cfg.AllowInsecureHosts)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", err.Error()})
		return
	}
	h, _, err := s.st.AddHost(r.Context(), store.Host{Hostname: addr.Name, NoTLS: addr.NoTLS, Trusted: req.Trusted})
	if err != nil {
		s.log.Error("admin: adding a host", "host", addr.Name, "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "adding the host failed"})
		return
	}
	s.syncHost(h) // a known host may have become trusted
	s.startHost(h)
	writeJSON(w, http.StatusOK, map[string]string{"hostname": h.Hostname, "status": h.Status})
}

func (s *Server) adminSetStatus(status string) func(http.ResponseWriter, *http.Request, adminHostRequest) {
	return func(w http.ResponseWriter, r *http.Request, req adminHostRequest) {
		addr, err := parseHostname(req.Hostname, true)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", err.Error()})
			return
		}
		ctx := r.Context()
		if err := s.st.SetHostStatus(ctx, addr.Name, status); errors.Is(err, store.ErrNotFound) {
			writeJSON(w, http.StatusNotFound, adminError{"HostNotFound", "unknown host: " + addr.Name})
			return
		} else if err != nil {
			s.log.Error("admin: setting a host's status", "host", addr.Name, "err", err)
			writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "updating the host failed"})
			return
		}
		if status == store.HostBlocked {
			s.stopHost(addr.Name)
		}
		h, err := s.st.Host(ctx, addr.Name)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "reading the host failed"})
			return
		}
		if status == store.HostActive {
			s.startHost(h)
		}
		s.log.Info("admin: host status changed", "host", h.Hostname, "status", h.Status)
		writeJSON(w, http.StatusOK, map[string]string{"hostname": h.Hostname, "status": h.Status})
	}
}

// limitsRequest is the body of /admin/hosts/limits; a nil field leaves
// that limit as it is.
type limitsRequest struct {
	Hostname     string   `json:"hostname"`
	AccountLimit *int64   `json:"accountLimit"`
	EventRate    *float64 `json:"eventRate"`
	EventBurst   *int64   `json:"eventBurst"`
}

// maxEventRate bounds an operator's event rate, far above any host.
const maxEventRate = 1e9

// parseLimitsRequest decodes and checks a /admin/hosts/limits body.
func parseLimitsRequest(body []byte) (limitsRequest, error) {
	var req limitsRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("body must be JSON {\"hostname\": ..., \"accountLimit\": ..., \"eventRate\": ..., \"eventBurst\": ...}: %w", err)
	}
	if dec.More() {
		return req, errors.New("body holds more than one JSON value")
	}
	if req.Hostname == "" {
		return req, errors.New("hostname is required")
	}
	if req.AccountLimit == nil && req.EventRate == nil && req.EventBurst == nil {
		return req, errors.New("give at least one of accountLimit, eventRate and eventBurst (0 hands a limit back to the host policy)")
	}
	if req.AccountLimit != nil && *req.AccountLimit < 0 {
		return req, errors.New("accountLimit must not be negative")
	}
	if req.EventRate != nil && (!(*req.EventRate >= 0) || *req.EventRate > maxEventRate) {
		return req, fmt.Errorf("eventRate must be between 0 and %g events a second", float64(maxEventRate))
	}
	if req.EventBurst != nil && (*req.EventBurst < 0 || *req.EventBurst > 1<<31) {
		return req, errors.New("eventBurst must be between 0 and 2^31")
	}
	return req, nil
}

func (s *Server) adminSetLimits(w http.ResponseWriter, r *http.Request) {
	body, err := readAdminBody(r)
	var req limitsRequest
	if err == nil {
		req, err = parseLimitsRequest(body)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", err.Error()})
		return
	}
	addr, err := parseHostname(req.Hostname, true)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", err.Error()})
		return
	}
	ctx := r.Context()
	h, err := s.st.Host(ctx, addr.Name)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, adminError{"HostNotFound", "unknown host: " + addr.Name})
		return
	} else if err != nil {
		s.log.Error("admin: reading a host", "host", addr.Name, "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "reading the host failed"})
		return
	}
	if req.AccountLimit != nil {
		h.AccountLimit = *req.AccountLimit
	}
	if req.EventRate != nil {
		h.EventRate = *req.EventRate
	}
	if req.EventBurst != nil {
		h.EventBurst = *req.EventBurst
	}
	if err := s.st.SetHostLimits(ctx, h.Hostname, h.AccountLimit, h.EventRate, h.EventBurst); err != nil {
		s.log.Error("admin: setting a host's limits", "host", h.Hostname, "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "updating the host failed"})
		return
	}
	s.syncHost(h)
	rep, err := s.hostReport(ctx, h)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "reading the host failed"})
		return
	}
	s.log.Info("admin: host limits changed", "host", h.Hostname, "account_limit", rep.Limits.AccountLimit,
		"event_rate", rep.Limits.EventRate, "event_burst", rep.Limits.EventBurst)
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) adminListHosts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxListLimit {
			writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", fmt.Sprintf("limit must be between 1 and %d", store.MaxListLimit)})
			return
		}
		limit = n
	}
	ctx := r.Context()
	hosts, next, err := s.st.ListHosts(ctx, q.Get("cursor"), limit)
	if errors.Is(err, store.ErrInvalidCursor) {
		writeJSON(w, http.StatusBadRequest, adminError{"InvalidRequest", "malformed cursor"})
		return
	}
	out := struct {
		Hosts  []hostReport `json:"hosts"`
		Cursor string       `json:"cursor,omitempty"`
	}{Hosts: make([]hostReport, 0, len(hosts)), Cursor: next}
	for _, h := range hosts {
		if err != nil {
			break
		}
		var rep hostReport
		rep, err = s.hostReport(ctx, h)
		out.Hosts = append(out.Hosts, rep)
	}
	if err != nil {
		s.log.Error("admin: listing hosts", "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "listing the hosts failed"})
		return
	}
	writeJSON(w, http.StatusOK, out)
}
