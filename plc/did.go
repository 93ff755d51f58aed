package plc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/plc/store"
)

// parsePLCDID checks that s is a did:plc: "did:plc:" and 24 characters of
// the lower-case base32 alphabet.
func parsePLCDID(s string) (syntax.DID, error) {
	did, err := syntax.ParseDID(s)
	if err != nil {
		return "", fmt.Errorf("invalid DID %q: %v", s, err)
	}
	if did.Method() != "plc" {
		return "", fmt.Errorf("not a did:plc: %s", s)
	}
	id := did.Identifier()
	if len(id) != 24 {
		return "", fmt.Errorf("invalid did:plc %q: identifier must be 24 characters", s)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return "", fmt.Errorf("invalid did:plc %q: identifier must be lower-case base32", s)
		}
	}
	return did, nil
}

// pathDID reads and checks the {did} segment, answering 400 if it is bad.
func pathDID(w http.ResponseWriter, r *http.Request) (syntax.DID, bool) {
	did, err := parsePLCDID(r.PathValue("did"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	return did, true
}

func notRegistered(w http.ResponseWriter, did syntax.DID) {
	writeError(w, http.StatusNotFound, "DID not registered: "+string(did))
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "Internal Server Error")
}

// currentData loads the DID's latest active operation and answers 404, 410
// or 500 itself when there is no current state.
func (s *Server) currentData(w http.ResponseWriter, r *http.Request) (*plc.DocumentData, bool) {
	did, ok := pathDID(w, r)
	if !ok {
		return nil, false
	}
	op, _, err := s.st.LastOp(r.Context(), did)
	if errors.Is(err, store.ErrNotFound) {
		notRegistered(w, did)
		return nil, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return nil, false
	}
	if op.Type() == plc.TypeTombstone {
		writeError(w, http.StatusGone, "DID not available: "+string(did))
		return nil, false
	}
	d, err := plc.DataForOp(did, op)
	if err != nil {
		s.internalError(w, r, err)
		return nil, false
	}
	return d, true
}

func (s *Server) handleDocument(w http.ResponseWriter, r *http.Request) {
	d, ok := s.currentData(w, r)
	if !ok {
		return
	}
	b, err := json.Marshal(d.Document())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeBody(w, http.StatusOK, "application/did+ld+json; charset=utf-8", b)
}

func (s *Server) handleData(w http.ResponseWriter, r *http.Request) {
	if d, ok := s.currentData(w, r); ok {
		writeJSON(w, http.StatusOK, d)
	}
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	log, ok := s.registeredLog(w, r)
	if !ok {
		return
	}
	ops := make([]plc.Op, 0, len(log))
	for _, e := range log {
		if !e.Nullified {
			ops = append(ops, e.Operation)
		}
	}
	writeJSON(w, http.StatusOK, ops)
}

func (s *Server) handleAuditLog(w http.ResponseWriter, r *http.Request) {
	if log, ok := s.registeredLog(w, r); ok {
		writeJSON(w, http.StatusOK, log)
	}
}

// registeredLog reads the audit log of the DID in the request path. It
// answers the request itself (bad DID, not registered, store failure) and
// returns false when there is no log to serve.
func (s *Server) registeredLog(w http.ResponseWriter, r *http.Request) ([]plc.AuditEntry, bool) {
	did, ok := pathDID(w, r)
	if !ok {
		return nil, false
	}
	log, err := s.st.AuditLog(r.Context(), did)
	if err != nil {
		s.internalError(w, r, err)
		return nil, false
	}
	if len(log) == 0 {
		notRegistered(w, did)
		return nil, false
	}
	return log, true
}

func (s *Server) handleLastOp(w http.ResponseWriter, r *http.Request) {
	did, ok := pathDID(w, r)
	if !ok {
		return
	}
	op, _, err := s.st.LastOp(r.Context(), did)
	if errors.Is(err, store.ErrNotFound) {
		notRegistered(w, did)
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, op)
}

// submitError is a refusal with its HTTP status.
type submitError struct {
	status int
	msg    string
}

func (e *submitError) Error() string { return e.msg }

func badRequest(format string, args ...any) *submitError {
	return &submitError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	did, ok := pathDID(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("request body too large (max %d bytes)", MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "could not read request body: "+err.Error())
		return
	}
	op, err := plc.ParseOperationJSON(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Not a valid operation: "+err.Error())
		return
	}
	if err := plc.CheckNewOpLimits(op); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	seq, err := s.submit(r, did, op)
	if err != nil {
		var se *submitError
		if errors.As(err, &se) {
			writeError(w, se.status, se.msg)
			return
		}
		s.internalError(w, r, err)
		return
	}
	s.log.Info("operation accepted", "did", string(did), "type", op.Type(), "seq", seq)
	s.hub.notify()
	writeBody(w, http.StatusOK, "text/plain; charset=utf-8", []byte("OK"))
}

// submit validates op against the DID's log and stores it. It holds the
// DID's lock from reading the log to writing the operation; the store
// refuses the write should another process have written in between.
func (s *Server) submit(r *http.Request, did syntax.DID, op plc.Op) (int64, error) {
	unlock := s.locks.lock(string(did))
	defer unlock()
	ctx := r.Context()

	log, err := s.st.AuditLog(ctx, did)
	if err != nil {
		return 0, err
	}
	// The directory's clock, in the millisecond precision createdAt is
	// served in, and never behind the DID's latest entry: an operation
	// arriving in the same millisecond as its predecessor gets the next one.
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	if n := len(log); n > 0 && !now.After(log[n-1].CreatedAt) {
		now = log[n-1].CreatedAt.Add(time.Millisecond)
	}
	res, err := plc.AssimilateOp(did, log, op, now)
	if err != nil {
		return 0, badRequest("%v", err)
	}
	// Recovery operations are exempt, so that an attacker holding a lesser
	// key cannot use up the rate limit to block a recovery.
	if len(res.Nullified) == 0 {
		if err := s.checkRate(log, now); err != nil {
			return 0, err
		}
	}
	entry := plc.AuditEntry{DID: did, Operation: op, CID: res.CID.String(), CreatedAt: now}
	seq, err := s.st.Append(ctx, did, entry, res.Nullified, len(log))
	if errors.Is(err, store.ErrConflict) {
		return 0, &submitError{http.StatusConflict, "operation conflicts with a concurrent update of " + string(did) + "; fetch the latest operation and retry"}
	}
	return seq, err
}

// checkRate applies the per-DID limits to the active operations in log.
func (s *Server) checkRate(log []plc.AuditEntry, now time.Time) error {
	windows := []struct {
		name  string
		dur   time.Duration
		limit int
	}{
		{"hour", time.Hour, s.cfg.OpsPerHour},
		{"day", 24 * time.Hour, s.cfg.OpsPerDay},
		{"week", 7 * 24 * time.Hour, s.cfg.OpsPerWeek},
	}
	for _, win := range windows {
		if win.limit < 0 {
			continue
		}
		since := now.Add(-win.dur)
		n := 0
		for _, e := range log {
			if !e.Nullified && e.CreatedAt.After(since) {
				n++
			}
		}
		if n >= win.limit {
			return badRequest("Too many operations within last %s (max %d)", win.name, win.limit)
		}
	}
	return nil
}
