package pds

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/internal/sqldb/sqldbtest"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/store"
)

// acctClock is a settable clock for tests of expiry and rate limits.
type acctClock struct {
	mu sync.Mutex
	t  time.Time
}

func newAcctClock() *acctClock { return &acctClock{t: time.Now()} }

func (c *acctClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *acctClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// mailbox captures the emails a test PDS sends.
type mailbox struct {
	mu   sync.Mutex
	msgs []mailMessage
}

func captureMail(p *testPDS) *mailbox {
	mb := &mailbox{}
	p.srv.acct().setMailer(mailerFunc(func(_ context.Context, m mailMessage) error {
		mb.mu.Lock()
		defer mb.mu.Unlock()
		mb.msgs = append(mb.msgs, m)
		return nil
	}))
	return mb
}

// last returns the newest message for purpose, failing the test if there
// is none.
func (mb *mailbox) last(t testing.TB, purpose string) mailMessage {
	t.Helper()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	for i := len(mb.msgs) - 1; i >= 0; i-- {
		if mb.msgs[i].Purpose == purpose {
			return mb.msgs[i]
		}
	}
	t.Fatalf("no %s email sent", purpose)
	return mailMessage{}
}

type accountOut struct {
	AccessJwt  string         `json:"accessJwt"`
	RefreshJwt string         `json:"refreshJwt"`
	Handle     string         `json:"handle"`
	Did        string         `json:"did"`
	DidDoc     map[string]any `json:"didDoc"`
}

// newAccount creates an account through com.atproto.server.createAccount
// with password "password" and email <first label>@example.com.
func newAccount(t testing.TB, p *testPDS, handle string) accountOut {
	t.Helper()
	var out accountOut
	email := strings.SplitN(handle, ".", 2)[0] + "@example.com"
	status, name := p.call("POST", "com.atproto.server.createAccount", "", nil,
		map[string]any{"handle": handle, "email": email, "password": "password"}, &out)
	if status != http.StatusOK {
		t.Fatalf("createAccount %s: %d %s", handle, status, name)
	}
	return out
}

// callRaw makes an XRPC call with extra headers and returns the response
// status, headers and body.
func callRaw(t testing.TB, p *testPDS, method, nsid string, header http.Header, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.url+"/xrpc/"+nsid, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// events returns the firehose events sequenced so far, decoded, after
// waiting for the outbox of did to be sequenced.
func firehoseEvents(t testing.TB, p *testPDS) []any {
	t.Helper()
	ctx := context.Background()
	evs, err := p.srv.seq.Since(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, ev := range evs {
		out = append(out, decodeFrame(t, ev))
	}
	return out
}

func decodeFrame(t testing.TB, ev stream.Event) any {
	t.Helper()
	hdr, body, err := stream.DecodeFrame(ev.Frame)
	if err != nil {
		t.Fatal(err)
	}
	var v interface {
		lexutil.Unmarshaler
	}
	switch hdr.T {
	case "#identity":
		v = &atproto.SyncSubscribeRepos_Identity{}
	case "#account":
		v = &atproto.SyncSubscribeRepos_Account{}
	case "#commit":
		v = &atproto.SyncSubscribeRepos_Commit{}
	case "#sync":
		v = &atproto.SyncSubscribeRepos_Sync{}
	default:
		t.Fatalf("unexpected frame type %q", hdr.T)
	}
	if err := lexutil.UnmarshalCBOR(body, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// eventKinds lists the kinds of the events of did, in order.
func eventKinds(t testing.TB, p *testPDS, did string) []string {
	t.Helper()
	var kinds []string
	for _, ev := range firehoseEvents(t, p) {
		switch e := ev.(type) {
		case *atproto.SyncSubscribeRepos_Identity:
			if e.Did == did {
				kinds = append(kinds, "identity")
			}
		case *atproto.SyncSubscribeRepos_Account:
			if e.Did == did {
				st := "active"
				if !e.Active {
					st = deref(e.Status)
				}
				kinds = append(kinds, "account:"+st)
			}
		case *atproto.SyncSubscribeRepos_Commit:
			if e.Repo == did {
				kinds = append(kinds, "commit")
			}
		case *atproto.SyncSubscribeRepos_Sync:
			if e.Did == did {
				kinds = append(kinds, "sync")
			}
		}
	}
	return kinds
}

func TestCreateAccountWithPLC(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := context.Background()
	recovery, err := crypto.GenerateP256()
	if err != nil {
		t.Fatal(err)
	}

	alice := newAccount(t, p, "alice.test")
	var bob accountOut
	status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, map[string]any{
		"handle": "Bob.TEST", "email": "Bob@Example.com", "password": "hunter22",
		"recoveryKey": recovery.Public().DIDKey(),
	}, &bob)
	if status != http.StatusOK {
		t.Fatalf("createAccount bob: %d %s", status, name)
	}
	if bob.Handle != "bob.test" {
		t.Errorf("handle %q, want it normalized to bob.test", bob.Handle)
	}
	if alice.Did == bob.Did || !strings.HasPrefix(alice.Did, "did:plc:") || alice.AccessJwt == "" || alice.RefreshJwt == "" {
		t.Fatalf("bad outputs: %+v %+v", alice, bob)
	}
	if alice.DidDoc["id"] != alice.Did {
		t.Errorf("didDoc id = %v, want %s", alice.DidDoc["id"], alice.Did)
	}

	client := &plc.Client{BaseURL: p.plcURL}
	for _, a := range []accountOut{alice, bob} {
		did := syntax.DID(a.Did)
		doc, err := client.Resolve(ctx, did)
		if err != nil {
			t.Fatalf("resolve %s: %v", did, err)
		}
		if len(doc.AlsoKnownAs) != 1 || doc.AlsoKnownAs[0] != "at://"+a.Handle {
			t.Errorf("%s alsoKnownAs = %v", a.Handle, doc.AlsoKnownAs)
		}
		if len(doc.Service) != 1 || doc.Service[0].ServiceEndpoint != p.srv.cfg.PublicURL || doc.Service[0].Type != "AtprotoPersonalDataServer" {
			t.Errorf("%s services = %+v, want the PDS at %s", a.Handle, doc.Service, p.srv.cfg.PublicURL)
		}
		acct, err := p.srv.accounts.AccountByDID(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		key, err := crypto.ParsePrivateBytesK256(acct.SigningKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(doc.VerificationMethod) != 1 || "did:key:"+doc.VerificationMethod[0].PublicKeyMultibase != key.Public().DIDKey() {
			t.Errorf("%s verification methods = %+v, want %s", a.Handle, doc.VerificationMethod, key.Public().DIDKey())
		}
		if acct.Status != store.StatusActive {
			t.Errorf("%s status %s", a.Handle, acct.Status)
		}
		// The repository exists with its first commit.
		st, release, err := p.srv.actors.get(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		_, _, ok, err := st.Head(ctx)
		release()
		if err != nil || !ok {
			t.Errorf("%s has no repository head (%v)", a.Handle, err)
		}
	}
	data, err := client.Data(ctx, syntax.DID(bob.Did))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{recovery.Public().DIDKey(), p.srv.keys.rotation.Public().DIDKey()}
	if strings.Join(data.RotationKeys, ",") != strings.Join(want, ",") {
		t.Errorf("rotation keys %v, want %v (user's recovery key first)", data.RotationKeys, want)
	}
	acct, err := p.srv.accounts.AccountByDID(ctx, syntax.DID(bob.Did))
	if err != nil {
		t.Fatal(err)
	}
	if acct.Email != "bob@example.com" {
		t.Errorf("email stored as %q", acct.Email)
	}

	// The firehose announces the account: #identity and #account before
	// the first commit, #sync after it.
	if err := p.srv.seq.Flush(ctx, syntax.DID(alice.Did)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(eventKinds(t, p, alice.Did), " ")
	if got != "identity account:active commit sync" {
		t.Errorf("events of a new account: %s", got)
	}

	// The tokens work.
	var sess struct {
		Did    string `json:"did"`
		Handle string `json:"handle"`
		Active bool   `json:"active"`
	}
	if status, name := p.call("GET", "com.atproto.server.getSession", alice.AccessJwt, nil, nil, &sess); status != 200 {
		t.Fatalf("getSession: %d %s", status, name)
	}
	if sess.Did != alice.Did || sess.Handle != "alice.test" || !sess.Active {
		t.Errorf("session %+v", sess)
	}
}

func TestCreateAccountBadInput(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	newAccount(t, p, "taken.test")
	valid := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{"handle": "newbie.test", "email": "newbie@example.com", "password": "password"}
		edit(m)
		return m
	}
	long := strings.Repeat("x", 257)
	cases := []struct {
		name   string
		body   map[string]any
		status int
		error  string
	}{
		{"no email", valid(func(m map[string]any) { delete(m, "email") }), 400, "InvalidRequest"},
		{"bad email", valid(func(m map[string]any) { m["email"] = "not an email" }), 400, "InvalidRequest"},
		{"no handle", valid(func(m map[string]any) { delete(m, "handle") }), 400, "InvalidRequest"},
		{"malformed handle", valid(func(m map[string]any) { m["handle"] = "bad_handle.test" }), 400, "InvalidRequest"},
		{"short handle", valid(func(m map[string]any) { m["handle"] = "ab.test" }), 400, "InvalidHandle"},
		{"long handle", valid(func(m map[string]any) { m["handle"] = "abcdefghijklmnopqrs.test" }), 400, "InvalidHandle"},
		{"dotted handle", valid(func(m map[string]any) { m["handle"] = "a.bcd.test" }), 400, "InvalidHandle"},
		{"reserved handle", valid(func(m map[string]any) { m["handle"] = "admin.test" }), 400, "HandleNotAvailable"},
		{"disallowed tld", valid(func(m map[string]any) { m["handle"] = "newbie.local" }), 400, "InvalidHandle"},
		{"other domain", valid(func(m map[string]any) { m["handle"] = "newbie.example.com" }), 400, "UnsupportedDomain"},
		{"taken handle", valid(func(m map[string]any) { m["handle"] = "TAKEN.test" }), 400, "InvalidRequest"},
		{"taken email", valid(func(m map[string]any) { m["email"] = "Taken@example.com" }), 400, "InvalidRequest"},
		{"long password", valid(func(m map[string]any) { m["password"] = long }), 400, "InvalidRequest"},
		{"plcOp", valid(func(m map[string]any) { m["plcOp"] = map[string]any{"x": "y"} }), 400, "InvalidRequest"},
		{"bad recovery key", valid(func(m map[string]any) { m["recoveryKey"] = "did:key:nope" }), 400, "InvalidRequest"},
		{"did without auth", valid(func(m map[string]any) { m["did"] = "did:plc:abcdefghijklmnopqrstuvwx" }), 401, "AuthenticationRequired"},
		{"unknown invite", valid(func(m map[string]any) { m["inviteCode"] = "localhost-aaaaa-bbbbb" }), 400, "InvalidInviteCode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, tc.body, nil)
			if status != tc.status || name != tc.error {
				t.Errorf("got %d %s, want %d %s", status, name, tc.status, tc.error)
			}
		})
	}
	// A session token is not a service token: createAccount with one is
	// refused, as by the reference.
	tok := p.login("taken.test")
	status, name := p.call("POST", "com.atproto.server.createAccount", tok, nil,
		valid(func(map[string]any) {}), nil)
	if status != 401 || name == "" {
		t.Errorf("createAccount with a session token: %d %s", status, name)
	}
	// Nothing of the refused attempts was kept.
	if n, err := p.srv.accounts.CountAccounts(context.Background()); err != nil || n != 1 {
		t.Errorf("%d accounts (%v), want 1", n, err)
	}
}

func TestInviteCodes(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, func(c *Config) { c.InviteRequired = true })
	var desc atproto.ServerDescribeServer_Output
	if status, name := p.call("GET", "com.atproto.server.describeServer", "", nil, nil, &desc); status != 200 {
		t.Fatalf("describeServer: %d %s", status, name)
	}
	if desc.InviteCodeRequired == nil || !*desc.InviteCodeRequired || desc.Did != p.srv.cfg.ServiceDID ||
		len(desc.AvailableUserDomains) != 1 || desc.AvailableUserDomains[0] != ".test" {
		t.Errorf("describeServer %+v", desc)
	}

	body := map[string]any{"handle": "carol.test", "email": "carol@example.com", "password": "password"}
	if status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, body, nil); status != 400 || name != "InvalidInviteCode" {
		t.Fatalf("createAccount without invite: %d %s", status, name)
	}

	// createInviteCode is for the admin only.
	if status, _ := p.call("POST", "com.atproto.server.createInviteCode", "", nil, map[string]any{"useCount": 1}, nil); status != 401 {
		t.Errorf("createInviteCode without admin auth: %d", status)
	}
	code := adminCreateInvite(t, p, 1, "")
	if !regexp.MustCompile(`^localhost-[a-z2-7]{5}-[a-z2-7]{5}$`).MatchString(code) {
		t.Errorf("invite code %q", code)
	}
	body["inviteCode"] = code
	var carol accountOut
	if status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, body, &carol); status != 200 {
		t.Fatalf("createAccount with invite: %d %s", status, name)
	}
	body2 := map[string]any{"handle": "dave.test", "email": "dave@example.com", "password": "password", "inviteCode": code}
	if status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, body2, nil); status != 400 || name != "InvalidInviteCode" {
		t.Fatalf("createAccount with a used-up invite: %d %s", status, name)
	}

	// Codes made for an account are listed for it.
	var many atproto.ServerCreateInviteCodes_Output
	status, _ := callAdmin(t, p, "com.atproto.server.createInviteCodes",
		map[string]any{"codeCount": 2, "useCount": 3, "forAccounts": []string{carol.Did}}, &many)
	if status != 200 || len(many.Codes) != 1 || len(many.Codes[0].Codes) != 2 || many.Codes[0].Account != carol.Did {
		t.Fatalf("createInviteCodes: %d %+v", status, many)
	}
	var list atproto.ServerGetAccountInviteCodes_Output
	if status, name := p.call("GET", "com.atproto.server.getAccountInviteCodes", carol.AccessJwt, nil, nil, &list); status != 200 {
		t.Fatalf("getAccountInviteCodes: %d %s", status, name)
	}
	if len(list.Codes) != 2 || list.Codes[0].Available != 3 || list.Codes[0].ForAccount != carol.Did || list.Codes[0].CreatedBy != "admin" {
		t.Errorf("getAccountInviteCodes %+v", list.Codes)
	}
	body2["inviteCode"] = many.Codes[0].Codes[0]
	if status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, body2, nil); status != 200 {
		t.Fatalf("createAccount with an account's invite: %d %s", status, name)
	}
	if status, _ := p.call("GET", "com.atproto.server.getAccountInviteCodes", carol.AccessJwt, nil, nil, &list); status != 200 {
		t.Fatalf("getAccountInviteCodes: %d", status)
	}
	uses := 0
	for _, c := range list.Codes {
		for _, u := range c.Uses {
			if c.Code != many.Codes[0].Codes[0] || u.UsedBy == "" {
				t.Errorf("use %+v listed on code %s", u, c.Code)
			}
			uses++
		}
	}
	if uses != 1 {
		t.Errorf("%d uses listed, want 1", uses)
	}
	// Without includeUsed, used-up codes are left out (this one has uses
	// left).
	if status, _ := p.call("GET", "com.atproto.server.getAccountInviteCodes", carol.AccessJwt,
		map[string]string{"includeUsed": "false"}, nil, &list); status != 200 || len(list.Codes) != 2 {
		t.Errorf("includeUsed=false: %d codes", len(list.Codes))
	}

	// Disabled codes stop working and are no longer listed.
	if status, name := callAdmin(t, p, "com.atproto.admin.disableInviteCodes", map[string]any{"accounts": []string{carol.Did}}, nil); status != 200 {
		t.Fatalf("disableInviteCodes: %d %s", status, name)
	}
	body3 := map[string]any{"handle": "erin.test", "email": "erin@example.com", "password": "password", "inviteCode": many.Codes[0].Codes[1]}
	if status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, body3, nil); status != 400 || name != "InvalidInviteCode" {
		t.Errorf("createAccount with a disabled invite: %d %s", status, name)
	}
	if status, _ := p.call("GET", "com.atproto.server.getAccountInviteCodes", carol.AccessJwt, nil, nil, &list); status != 200 || len(list.Codes) != 0 {
		t.Errorf("disabled codes listed: %+v", list.Codes)
	}
}

// callAdmin makes a procedure call with the admin password.
func callAdmin(t testing.TB, p *testPDS, nsid string, body, out any) (int, string) {
	t.Helper()
	h := adminAuthHeader()
	method := "POST"
	if body == nil {
		method = "GET"
	}
	status, _, raw := callRaw(t, p, method, nsid, h, body)
	if status != 200 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return status, e.Error
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v", nsid, err)
		}
	}
	return status, ""
}

// adminAuthHeader is the Authorization header of the test PDS's admin.
func adminAuthHeader() http.Header {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:admin-secret")))
	return h
}

func adminCreateInvite(t testing.TB, p *testPDS, uses int, forAccount string) string {
	t.Helper()
	body := map[string]any{"useCount": uses}
	if forAccount != "" {
		body["forAccount"] = forAccount
	}
	var out struct {
		Code string `json:"code"`
	}
	if status, name := callAdmin(t, p, "com.atproto.server.createInviteCode", body, &out); status != 200 {
		t.Fatalf("createInviteCode: %d %s", status, name)
	}
	return out.Code
}

func TestDeactivateActivate(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := context.Background()
	a := newAccount(t, p, "alice.test")
	if status, name := p.call("POST", "com.atproto.server.deactivateAccount", a.AccessJwt, nil,
		map[string]any{"deleteAfter": "2030-01-01T00:00:00Z"}, nil); status != 200 {
		t.Fatalf("deactivateAccount: %d %s", status, name)
	}
	acct, err := p.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did))
	if err != nil {
		t.Fatal(err)
	}
	if acct.Status != store.StatusDeactivated || acct.DeleteAfter == nil || acct.DeleteAfter.Year() != 2030 {
		t.Errorf("after deactivate: %+v", acct)
	}
	var sess struct {
		Active *bool   `json:"active"`
		Status *string `json:"status"`
	}
	if status, name := p.call("GET", "com.atproto.server.getSession", a.AccessJwt, nil, nil, &sess); status != 200 {
		t.Fatalf("getSession of a deactivated account: %d %s", status, name)
	}
	if sess.Active == nil || *sess.Active || sess.Status == nil || *sess.Status != "deactivated" {
		t.Errorf("getSession of a deactivated account: %+v", sess)
	}
	// Methods that need an active account refuse it.
	if status, name := p.call("POST", "com.atproto.server.createAppPassword", a.AccessJwt, nil, map[string]any{"name": "x"}, nil); status != 401 || name != "AccountDeactivated" {
		t.Errorf("createAppPassword while deactivated: %d %s", status, name)
	}
	// Login still works, and says the account is not active.
	var login struct {
		AccessJwt string  `json:"accessJwt"`
		Active    *bool   `json:"active"`
		Status    *string `json:"status"`
	}
	if status, name := p.call("POST", "com.atproto.server.createSession", "", nil,
		map[string]string{"identifier": "alice.test", "password": "password"}, &login); status != 200 {
		t.Fatalf("createSession of a deactivated account: %d %s", status, name)
	}
	if login.Active == nil || *login.Active || deref(login.Status) != "deactivated" {
		t.Errorf("createSession of a deactivated account: %+v", login)
	}

	var st atproto.ServerCheckAccountStatus_Output
	if status, name := p.call("GET", "com.atproto.server.checkAccountStatus", a.AccessJwt, nil, nil, &st); status != 200 {
		t.Fatalf("checkAccountStatus: %d %s", status, name)
	}
	if st.Activated || !st.ValidDid || st.RepoRev == "" || st.RepoCommit == "" || st.RepoBlocks < 2 || st.IndexedRecords != 0 {
		t.Errorf("checkAccountStatus %+v", st)
	}

	if status, name := p.call("POST", "com.atproto.server.activateAccount", a.AccessJwt, nil, nil, nil); status != 200 {
		t.Fatalf("activateAccount: %d %s", status, name)
	}
	if acct, err = p.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did)); err != nil || acct.Status != store.StatusActive {
		t.Fatalf("after activate: %+v %v", acct, err)
	}
	if err := p.srv.seq.Flush(ctx, syntax.DID(a.Did)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(eventKinds(t, p, a.Did), " ")
	want := "identity account:active commit sync account:deactivated account:active identity sync"
	if got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}

func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := context.Background()
	mb := captureMail(p)
	a := newAccount(t, p, "alice.test")
	b := newAccount(t, p, "bobby.test")
	did := syntax.DID(a.Did)

	if status, name := p.call("POST", "com.atproto.server.requestAccountDelete", a.AccessJwt, nil, nil, nil); status != 200 {
		t.Fatalf("requestAccountDelete: %d %s", status, name)
	}
	msg := mb.last(t, "delete_account")
	if msg.To != "alice@example.com" || !strings.Contains(msg.Text, msg.Token) || !regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}$`).MatchString(msg.Token) {
		t.Errorf("delete email %+v", msg)
	}
	cases := []struct {
		name, did, password, token string
		status                     int
		error                      string
	}{
		{"wrong password", a.Did, "nope", msg.Token, 401, "AuthenticationRequired"},
		{"wrong token", a.Did, "password", "AAAAA-BBBBB", 400, "InvalidToken"},
		{"other account's token", b.Did, "password", msg.Token, 400, "InvalidToken"},
		{"unknown account", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "password", msg.Token, 400, "InvalidRequest"},
		{"missing token", a.Did, "password", "", 400, "InvalidToken"},
	}
	for _, tc := range cases {
		status, name := p.call("POST", "com.atproto.server.deleteAccount", "", nil,
			map[string]any{"did": tc.did, "password": tc.password, "token": tc.token}, nil)
		if status != tc.status || name != tc.error {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, name, tc.status, tc.error)
		}
	}
	// The token is case-insensitive, as typed from an email.
	if status, name := p.call("POST", "com.atproto.server.deleteAccount", "", nil,
		map[string]any{"did": a.Did, "password": "password", "token": strings.ToLower(msg.Token)}, nil); status != 200 {
		t.Fatalf("deleteAccount: %d %s", status, name)
	}
	if _, err := p.srv.accounts.AccountByDID(ctx, did); err == nil {
		t.Error("account still stored")
	}
	if _, err := os.Stat(actorstore.Dir(p.srv.actors.dir, did)); !os.IsNotExist(err) {
		t.Errorf("account database still on disk (%v)", err)
	}
	if status, name := p.call("POST", "com.atproto.server.createSession", "", nil,
		map[string]string{"identifier": "alice.test", "password": "password"}, nil); status != 401 || name != "AuthenticationRequired" {
		t.Errorf("login after deletion: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.server.getSession", a.AccessJwt, nil, nil, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("old token after deletion: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.refreshSession", a.RefreshJwt, nil, nil, nil); status == 200 {
		t.Errorf("refresh after deletion: %d %s", status, name)
	}
	kinds := eventKinds(t, p, a.Did)
	if len(kinds) == 0 || kinds[len(kinds)-1] != "account:deleted" {
		t.Errorf("events end with %v, want account:deleted", kinds)
	}
	// The other account is untouched, and the handle is free again.
	if status, _ := p.call("GET", "com.atproto.server.getSession", b.AccessJwt, nil, nil, nil); status != 200 {
		t.Errorf("other account's session: %d", status)
	}
	again := newAccount(t, p, "alice.test")
	if again.Did == a.Did {
		t.Error("a new account got the deleted DID")
	}
}

// TestAccountFlowsPostgres runs the main account flows with the service
// tables in PostgreSQL.
func TestAccountFlowsPostgres(t *testing.T) {
	t.Parallel()
	dbURL := sqldbtest.PostgresSchemaURL(t)
	p := newTestPDS(t, func(c *Config) { c.DatabaseURL = dbURL })
	mb := captureMail(p)
	a := newAccount(t, p, "alice.test")
	if _, status, name := createSession(t, p, "ALICE@example.com", "password"); status != 200 {
		t.Fatalf("login: %d %s", status, name)
	}
	var r sessionOut
	if status, name := p.call("POST", "com.atproto.server.refreshSession", a.RefreshJwt, nil, nil, &r); status != 200 {
		t.Fatalf("refresh: %d %s", status, name)
	}
	var ap struct {
		Password string `json:"password"`
	}
	if status, name := p.call("POST", "com.atproto.server.createAppPassword", r.AccessJwt, nil, map[string]any{"name": "x"}, &ap); status != 200 {
		t.Fatalf("createAppPassword: %d %s", status, name)
	}
	if _, status, name := createSession(t, p, "alice.test", ap.Password); status != 200 {
		t.Fatalf("app password login: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.requestAccountDelete", r.AccessJwt, nil, nil, nil); status != 200 {
		t.Fatalf("requestAccountDelete: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.deleteAccount", "", nil,
		map[string]any{"did": a.Did, "password": "password", "token": mb.last(t, "delete_account").Token}, nil); status != 200 {
		t.Fatalf("deleteAccount: %d %s", status, name)
	}
	if n, err := p.srv.accounts.CountAccounts(context.Background()); err != nil || n != 0 {
		t.Errorf("%d accounts left (%v)", n, err)
	}
}

func TestDeleteExpiredAccounts(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	p := newTestPDS(t, func(c *Config) { c.Now = clock.Now })
	ctx := context.Background()
	a := newAccount(t, p, "alice.test")
	b := newAccount(t, p, "bobby.test")
	after := syntax.DatetimeFromTime(clock.Now().Add(24 * time.Hour)).String()
	if status, name := p.call("POST", "com.atproto.server.deactivateAccount", a.AccessJwt, nil, map[string]any{"deleteAfter": after}, nil); status != 200 {
		t.Fatalf("deactivateAccount: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.deactivateAccount", b.AccessJwt, nil, map[string]any{}, nil); status != 200 {
		t.Fatalf("deactivateAccount: %d %s", status, name)
	}
	if err := p.srv.deleteExpiredAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.srv.accounts.CountAccounts(ctx); n != 2 {
		t.Fatalf("%d accounts before deleteAfter, want 2", n)
	}
	clock.Advance(25 * time.Hour)
	if err := p.srv.deleteExpiredAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did)); err == nil {
		t.Error("account past deleteAfter not deleted")
	}
	if _, err := p.srv.accounts.AccountByDID(ctx, syntax.DID(b.Did)); err != nil {
		t.Errorf("account without deleteAfter deleted: %v", err)
	}
}
