package plc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	atplc "github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/plc/store"
)

// clock is an adjustable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testDir struct {
	t     testing.TB
	srv   *Server
	ts    *httptest.Server
	st    store.Store
	clock *clock
}

// newTestDir starts a directory on a loopback port with an SQLite store
// and a test clock; cfg may adjust limits.
func newTestDir(t testing.TB, cfg Config) *testDir {
	t.Helper()
	db := sqldbtest.OpenSQLite(t, sqldb.Config{})
	st, err := store.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Version = "test-version"
	srv := NewServer(cfg, st)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return &testDir{t: t, srv: srv, ts: ts, st: st, clock: c}
}

func (d *testDir) client() *atplc.Client {
	return &atplc.Client{BaseURL: d.ts.URL, HTTPClient: d.ts.Client()}
}

// post submits body for did and returns the status and error message.
func (d *testDir) post(did syntax.DID, body []byte) (int, string) {
	d.t.Helper()
	resp, err := d.ts.Client().Post(d.ts.URL+"/"+string(did), "application/json", bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
		d.t.Fatalf("status %d with a body that is not {\"message\": ...}: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, e.Message
}

func (d *testDir) submit(did syntax.DID, op atplc.Op) (int, string) {
	d.t.Helper()
	b, err := op.MarshalJSON()
	if err != nil {
		d.t.Fatal(err)
	}
	return d.post(did, b)
}

func (d *testDir) mustSubmit(did syntax.DID, op atplc.Op) {
	d.t.Helper()
	if code, msg := d.submit(did, op); code != http.StatusOK {
		d.t.Fatalf("submit %s: %d %s", op.Type(), code, msg)
	}
}

func (d *testDir) get(path string) (int, string, []byte) {
	d.t.Helper()
	resp, err := d.ts.Client().Get(d.ts.URL + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func key(t testing.TB, seed byte) crypto.PrivateKey {
	t.Helper()
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed + byte(i)
	}
	k, err := crypto.ParsePrivateBytesK256(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func didKeys(keys ...crypto.PrivateKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Public().DIDKey()
	}
	return out
}

// newOp builds an operation with rotation keys rot, signed by signer.
func newOp(t testing.TB, signer crypto.PrivateKey, rot []string, prev *string, handle string) *atplc.Operation {
	t.Helper()
	op := &atplc.Operation{
		RotationKeys:        rot,
		VerificationMethods: map[string]string{"atproto": signer.Public().DIDKey()},
		AlsoKnownAs:         []string{"at://" + handle},
		Services:            map[string]atplc.Service{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://pds.example.com"}},
		Prev:                prev,
	}
	if err := op.Sign(signer); err != nil {
		t.Fatal(err)
	}
	return op
}

func cidOf(t testing.TB, op atplc.Op) *string {
	t.Helper()
	c, err := op.CID()
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	return &s
}

func didOf(t testing.TB, op atplc.Op) syntax.DID {
	t.Helper()
	did, err := atplc.DIDForGenesis(op)
	if err != nil {
		t.Fatal(err)
	}
	return did
}

func lines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\n")
}
