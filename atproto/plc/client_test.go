package plc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// fakeDirectory is a minimal PLC directory built on this package's own
// rules, serving the reference directory's routes.
type fakeDirectory struct {
	mu    sync.Mutex
	logs  map[syntax.DID][]AuditEntry
	order []AuditEntry // every entry, in acceptance order
	clock time.Time
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeDirectory) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/export" {
		f.export(w, r)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	did := syntax.DID(parts[0])
	rest := ""
	if len(parts) == 2 {
		rest = parts[1]
	}
	if r.Method == http.MethodPost && rest == "" {
		f.submit(w, r, did)
		return
	}
	log := f.logs[did]
	if len(log) == 0 {
		writeErr(w, 404, "DID not registered: "+string(did))
		return
	}
	var active []Op
	for _, e := range log {
		if !e.Nullified {
			active = append(active, e.Operation)
		}
	}
	last := active[len(active)-1]
	switch rest {
	case "", "data":
		d, err := DataForOp(did, last)
		if err != nil {
			writeErr(w, 404, "DID not available: "+string(did))
			return
		}
		if rest == "" {
			writeJSON(w, d.Document())
		} else {
			writeJSON(w, d)
		}
	case "log":
		writeJSON(w, active)
	case "log/audit":
		writeJSON(w, log)
	case "log/last":
		writeJSON(w, last)
	default:
		writeErr(w, 404, "not found")
	}
}

func (f *fakeDirectory) submit(w http.ResponseWriter, r *http.Request, did syntax.DID) {
	body, _ := io.ReadAll(r.Body)
	op, err := ParseOperationJSON(body)
	if err == nil {
		err = CheckNewOpLimits(op)
	}
	if err != nil {
		writeErr(w, 400, err.Error())
		return
	}
	f.clock = f.clock.Add(time.Second)
	res, err := AssimilateOp(did, f.logs[did], op, f.clock)
	if err != nil {
		writeErr(w, 400, err.Error())
		return
	}
	log := f.logs[did]
	for i := range log {
		for _, n := range res.Nullified {
			if log[i].CID == n.String() {
				log[i].Nullified = true
			}
		}
	}
	e := AuditEntry{DID: did, Operation: op, CID: res.CID.String(), CreatedAt: f.clock}
	f.logs[did] = append(log, e)
	f.order = append(f.order, e)
}

func (f *fakeDirectory) export(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	count, _ := strconv.Atoi(r.URL.Query().Get("count"))
	w.Header().Set("Content-Type", "application/jsonlines")
	for i := after; i < len(f.order) && i < after+count; i++ {
		e := f.order[i]
		opJSON, _ := e.Operation.MarshalJSON()
		line, _ := json.Marshal(map[string]any{
			"type": "sequenced_op", "seq": i + 1, "did": e.DID, "cid": e.CID,
			"operation": json.RawMessage(opJSON), "createdAt": e.CreatedAt.Format(createdAtLayout),
		})
		if i > after {
			_, _ = w.Write([]byte("\n"))
		}
		_, _ = w.Write(line)
	}
}

func TestClient(t *testing.T) {
	dir := &fakeDirectory{logs: map[syntax.DID][]AuditEntry{}, clock: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(dir)
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/", HTTPClient: srv.Client(), UserAgent: "welkin-test"}
	ctx := context.Background()

	did, keys, rot, g := chain(t)
	if _, err := c.Resolve(ctx, did); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown DID: %v", err)
	} else {
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != 404 || !strings.Contains(he.Message, "DID not registered") {
			t.Fatalf("HTTPError %+v", err)
		}
	}
	if err := c.Submit(ctx, did, g); err != nil {
		t.Fatal(err)
	}
	op1 := newOp(t, keys[1], strp(cidStr(t, g)), rot)
	op1.AlsoKnownAs = []string{"at://bob.test"}
	if err := op1.Sign(keys[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, did, op1); err != nil {
		t.Fatal(err)
	}
	// Refused: signed by a stranger. The server's reason comes back.
	bad := newOp(t, fixedKey(t, 99), strp(cidStr(t, op1)), rot)
	err := c.Submit(ctx, did, bad)
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 400 || !strings.Contains(he.Message, "invalid operation signature") {
		t.Fatalf("bad submit: %v", err)
	}
	if err := c.Submit(ctx, did, &Operation{}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned submit: %v", err)
	}

	doc, err := c.Resolve(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if doc.ID != did || doc.AlsoKnownAs[0] != "at://bob.test" || doc.Service[0].ServiceEndpoint != "https://pds.example.com" {
		t.Fatalf("doc %+v", doc)
	}
	data, err := c.Data(ctx, did)
	if err != nil || data.RotationKeys[2] != rot[2] {
		t.Fatalf("data %+v %v", data, err)
	}
	ops, err := c.Log(ctx, did)
	if err != nil || len(ops) != 2 {
		t.Fatalf("log %v %v", ops, err)
	}
	if _, err := ValidateOperationLog(did, ops); err != nil {
		t.Fatal(err)
	}
	last, err := c.LastOp(ctx, did)
	if err != nil || cidStr(t, last) != cidStr(t, op1) {
		t.Fatalf("last %v", err)
	}

	// Recovery by the top key nullifies op1.
	rec := newOp(t, keys[0], strp(cidStr(t, g)), rot)
	if err := c.Submit(ctx, did, rec); err != nil {
		t.Fatal(err)
	}
	audit, err := c.AuditLog(ctx, did)
	if err != nil || len(audit) != 3 || !audit[1].Nullified {
		t.Fatalf("audit %+v %v", audit, err)
	}
	if err := ValidateAuditLog(did, audit); err != nil {
		t.Fatal(err)
	}

	// Tombstone: the document is gone.
	ts := &Tombstone{Prev: cidStr(t, rec)}
	if err := ts.Sign(keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, did, ts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Data(ctx, did); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tombstoned data: %v", err)
	}

	page, err := c.Export(ctx, "0", 2)
	if err != nil || len(page) != 2 || page[0].Seq != 1 || page[1].Seq != 2 || page[0].Type != "sequenced_op" {
		t.Fatalf("export %+v %v", page, err)
	}
	page, err = c.Export(ctx, "2", 10)
	if err != nil || len(page) != 2 || page[1].Operation.Type() != TypeTombstone {
		t.Fatalf("export page 2 %+v %v", page, err)
	}

	if _, err := c.Resolve(ctx, "not a did"); err == nil {
		t.Fatal("bad DID accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Data(cctx, did); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestClientBadResponses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/data"):
			_, _ = w.Write([]byte(`{"did": 5`))
		case strings.HasSuffix(r.URL.Path, "/log"):
			_, _ = w.Write([]byte(`[{"type":"plc_weird"}]`))
		case r.URL.Path == "/export":
			_, _ = w.Write([]byte("{\"did\":\"did:plc:x\"}\nnot json"))
		default:
			w.WriteHeader(503)
			_, _ = w.Write([]byte("upstream down"))
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, HTTPClient: srv.Client()}
	ctx := context.Background()
	did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	if _, err := c.Data(ctx, did); !errors.Is(err, ErrBadResponse) {
		t.Errorf("data: %v", err)
	}
	if _, err := c.Log(ctx, did); !errors.Is(err, ErrMalformedOp) {
		t.Errorf("log: %v", err)
	}
	if _, err := c.Export(ctx, "", 0); err == nil {
		t.Errorf("export accepted garbage")
	}
	_, err := c.Resolve(ctx, did)
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 503 || he.Message != "upstream down" || errors.Is(err, ErrNotFound) {
		t.Errorf("503: %v", err)
	}
}

func TestExportEntryJSON(t *testing.T) {
	v := vecTombstone()
	e := ExportEntry{AuditEntry: v.audit(t)[1], Type: "sequenced_op", Seq: 42}
	js, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"type":"sequenced_op","seq":42`) || strings.Contains(string(js), "nullified") {
		t.Fatalf("sequenced line %s", js)
	}
	var back ExportEntry
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Seq != 42 || back.CID != e.CID || back.Operation.Signature() != e.Operation.Signature() {
		t.Fatalf("back %+v", back)
	}
	legacy, _ := json.Marshal(ExportEntry{AuditEntry: v.audit(t)[0]})
	if !strings.Contains(string(legacy), `"nullified":false`) || strings.Contains(string(legacy), "seq") {
		t.Fatalf("legacy line %s", legacy)
	}
}
