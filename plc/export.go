package plc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/welkin-atproto/welkin/plc/store"
)

// MaxExportCount is the largest page /export returns (did:plc spec v0.3,
// "Bulk Export": at most 1000 lines per request); it is also the default.
const MaxExportCount = 1000

// createdAtLayout is how the directory writes createdAt.
const createdAtLayout = "2006-01-02T15:04:05.000Z"

// TypeSequencedOp is the "type" of every sequenced export line and stream
// event (did:plc spec v0.3).
const TypeSequencedOp = "sequenced_op"

// sequencedLine is one line of /export?after=<seq>, and one
// /export/stream message.
type sequencedLine struct {
	Seq       int64           `json:"seq"`
	Type      string          `json:"type"`
	DID       string          `json:"did"`
	Operation json.RawMessage `json:"operation"`
	CID       string          `json:"cid"`
	CreatedAt string          `json:"createdAt"`
}

// legacyLine is one line of /export in the legacy format.
type legacyLine struct {
	DID       string          `json:"did"`
	Operation json.RawMessage `json:"operation"`
	CID       string          `json:"cid"`
	Nullified bool            `json:"nullified"`
	CreatedAt string          `json:"createdAt"`
}

func encodeSequenced(e store.Entry) ([]byte, error) {
	return json.Marshal(sequencedLine{
		Seq: e.Seq, Type: TypeSequencedOp, DID: string(e.DID), Operation: e.Operation,
		CID: e.CID, CreatedAt: e.CreatedAt.UTC().Format(createdAtLayout),
	})
}

func encodeLegacy(e store.Entry) ([]byte, error) {
	return json.Marshal(legacyLine{
		DID: string(e.DID), Operation: e.Operation, CID: e.CID, Nullified: e.Nullified,
		CreatedAt: e.CreatedAt.UTC().Format(createdAtLayout),
	})
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// parseTimestamp reads a legacy export cursor: an RFC 3339 timestamp
// (the directory's own createdAt form included) or a bare date.
func parseTimestamp(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// handleExport serves /export. The spec (v0.3, "Bulk Export") tells the
// two formats apart by the after cursor: an integer selects the sequenced
// format (lines with type "sequenced_op" and seq, ordered by seq); a
// timestamp, or no cursor at all, the legacy format (lines with nullified,
// ordered by createdAt).
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	count := MaxExportCount
	if c := q.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "Invalid count parameter")
			return
		}
		count = min(n, MaxExportCount)
	}
	var (
		entries []store.Entry
		encode  func(store.Entry) ([]byte, error)
		err     error
	)
	after := q.Get("after")
	switch {
	case digits.MatchString(after):
		seq, perr := strconv.ParseInt(after, 10, 64)
		if perr != nil {
			writeError(w, http.StatusBadRequest, "Invalid after parameter")
			return
		}
		entries, err = s.st.ExportSeq(r.Context(), seq, count)
		encode = encodeSequenced
	default:
		var t time.Time
		if after != "" {
			var ok bool
			if t, ok = parseTimestamp(after); !ok {
				writeError(w, http.StatusBadRequest, "Invalid after parameter")
				return
			}
		}
		entries, err = s.st.ExportLegacy(r.Context(), t, count)
		encode = encodeLegacy
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var buf bytes.Buffer
	for i, e := range entries {
		if i > 0 {
			buf.WriteByte('\n')
		}
		line, err := encode(e)
		if err != nil {
			s.internalError(w, r, err)
			return
		}
		buf.Write(line)
	}
	writeBody(w, http.StatusOK, "application/jsonlines", buf.Bytes())
}
