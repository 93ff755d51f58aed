package pds

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/pds/store"
	"github.com/welkin-atproto/welkin/plc"
	plcstore "github.com/welkin-atproto/welkin/plc/store"
)

// testPDS is a PDS on a loopback port, with a PLC directory of its own.
type testPDS struct {
	t      testing.TB
	srv    *Server
	url    string // the PDS's base URL, http://localhost:PORT
	plcURL string
	dir    string
	cancel context.CancelFunc
	done   chan error
}

// newTestPDS starts a PLC directory and a PDS (hostname localhost, handle
// domain ".test") on free loopback ports. edit, if not nil, adjusts the
// configuration before start. Both stop when the test ends.
func newTestPDS(t testing.TB, edit func(*Config)) *testPDS {
	t.Helper()
	plcURL := startTestPLC(t)
	return startPDS(t, t.TempDir(), plcURL, edit)
}

// startPDS starts a PDS on dir (reused across restarts) against plcURL.
func startPDS(t testing.TB, dir, plcURL string, edit func(*Config)) *testPDS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := Config{
		Hostname:             "localhost",
		Host:                 "127.0.0.1",
		Port:                 port,
		DataDir:              dir,
		PLCURL:               plcURL,
		HandleDomains:        []string{".test"},
		AdminPassword:        "admin-secret",
		AllowPrivateNetworks: true,
		Logger:               slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &testPDS{t: t, srv: srv, url: fmt.Sprintf("http://localhost:%d", port), plcURL: plcURL,
		dir: dir, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(p.stop)
	return p
}

// stop shuts the PDS down; it may be called more than once.
func (p *testPDS) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	if err := <-p.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		p.t.Errorf("pds serve: %v", err)
	}
	if err := p.srv.Close(); err != nil {
		p.t.Errorf("pds close: %v", err)
	}
}

// startTestPLC starts a Welkin PLC directory with an SQLite store on a
// loopback port and returns its URL.
func startTestPLC(t testing.TB) string {
	t.Helper()
	db := sqldbtest.OpenSQLite(t, sqldb.Config{})
	st, err := plcstore.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	srv := plc.NewServer(plc.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return ts.URL
}

// seedAccount creates an account directly in the stores, without the PLC
// directory or the XRPC API: a random did:plc, the handle given, password
// "password", and an initialized repository. For tests of the repository
// and sync endpoints; account-creation tests go through createAccount.
func seedAccount(t testing.TB, p *testPDS, handle string) (syntax.DID, crypto.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 15)
	rand.Read(b)
	did := syntax.DID("did:plc:" + strings.ToLower(base32.StdEncoding.EncodeToString(b)))
	hash, err := store.HashPassword("password")
	if err != nil {
		t.Fatal(err)
	}
	acct := store.Account{
		DID:          did,
		Handle:       syntax.Handle(handle),
		Email:        handle + "@example.com",
		PasswordHash: hash,
		SigningKey:   key.Bytes(),
		Status:       store.StatusActive,
		CreatedAt:    time.Now().UTC(),
	}
	if err := p.srv.accounts.CreateAccount(ctx, acct, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := p.srv.initRepo(ctx, did, key); err != nil {
		t.Fatal(err)
	}
	return did, key
}

// call makes an XRPC call to the PDS and decodes a JSON response into out
// (when not nil). token, when set, is sent as a bearer token. It returns
// the HTTP status and, for errors, the XRPC error name.
func (p *testPDS) call(method, nsid, token string, params map[string]string, body any, out any) (int, string) {
	p.t.Helper()
	u := p.url + "/xrpc/" + nsid
	if len(params) > 0 {
		q := make([]string, 0, len(params))
		for k, v := range params {
			q = append(q, k+"="+v)
		}
		u += "?" + strings.Join(q, "&")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return resp.StatusCode, e.Error
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatalf("%s: decode %s: %v", nsid, raw, err)
		}
	}
	return resp.StatusCode, ""
}

// login creates a session for an account made by seedAccount and returns
// its access token. It needs com.atproto.server.createSession.
func (p *testPDS) login(identifier string) string {
	p.t.Helper()
	var out struct {
		AccessJwt string `json:"accessJwt"`
	}
	status, name := p.call("POST", "com.atproto.server.createSession", "", nil,
		map[string]string{"identifier": identifier, "password": "password"}, &out)
	if status != http.StatusOK {
		p.t.Fatalf("createSession %s: %d %s", identifier, status, name)
	}
	return out.AccessJwt
}
