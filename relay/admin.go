package relay

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"

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
//
// Each answers {"hostname": ..., "status": ...}. Adding does not check
// the host's describeServer: the operator vouches for it.
func (s *Server) registerAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/hosts/add", s.admin(s.adminAddHost))
	mux.HandleFunc("POST /admin/hosts/block", s.admin(s.adminSetStatus(store.HostBlocked)))
	mux.HandleFunc("POST /admin/hosts/unblock", s.admin(s.adminSetStatus(store.HostActive)))
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

// readAdminBody decodes an /admin/ request's JSON body, of at most
// maxAdminBody bytes, into v.
func readAdminBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err == nil && len(body) > maxAdminBody {
		err = errors.New("body too large")
	}
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	return err
}

// admin checks basic auth and decodes the body before calling fn.
func (s *Server) admin(fn func(http.ResponseWriter, *http.Request, adminHostRequest)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.adminAuthorized(w, r) {
			return
		}
		var req adminHostRequest
		if err := readAdminBody(r, &req); err != nil {
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
	limit := s.cfg.AccountLimit
	if req.Trusted {
		limit = TrustedAccountLimit
	}
	h, _, err := s.st.AddHost(r.Context(), store.Host{Hostname: addr.Name, NoTLS: addr.NoTLS, Trusted: req.Trusted, AccountLimit: limit})
	if err != nil {
		s.log.Error("admin: adding a host", "host", addr.Name, "err", err)
		writeJSON(w, http.StatusInternalServerError, adminError{"InternalServerError", "adding the host failed"})
		return
	}
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
