package pds

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/store"
)

func TestUpdateHandleHosted(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := context.Background()
	a := newAccount(t, p, "alice.test")
	newAccount(t, p, "bobby.test")

	if status, name := p.call("POST", "com.atproto.identity.updateHandle", a.AccessJwt, nil, map[string]any{"handle": "Alicia.test"}, nil); status != 200 {
		t.Fatalf("updateHandle: %d %s", status, name)
	}
	data, err := (&plc.Client{BaseURL: p.plcURL}).Data(ctx, syntax.DID(a.Did))
	if err != nil {
		t.Fatal(err)
	}
	if len(data.AlsoKnownAs) != 1 || data.AlsoKnownAs[0] != "at://alicia.test" {
		t.Errorf("PLC alsoKnownAs = %v", data.AlsoKnownAs)
	}
	var res struct {
		Did string `json:"did"`
	}
	if status, name := p.call("GET", "com.atproto.identity.resolveHandle", "", map[string]string{"handle": "alicia.test"}, nil, &res); status != 200 || res.Did != a.Did {
		t.Errorf("resolveHandle new: %d %s %s", status, name, res.Did)
	}
	if status, name := p.call("GET", "com.atproto.identity.resolveHandle", "", map[string]string{"handle": "alice.test"}, nil, nil); status != 400 || name != "HandleNotFound" {
		t.Errorf("resolveHandle old: %d %s", status, name)
	}
	var sess sessionOut
	p.call("GET", "com.atproto.server.getSession", a.AccessJwt, nil, nil, &sess)
	if sess.Handle != "alicia.test" {
		t.Errorf("session handle %q", sess.Handle)
	}
	if err := p.srv.seq.Flush(ctx, syntax.DID(a.Did)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range firehoseEvents(t, p) {
		if id, ok := ev.(*atproto.SyncSubscribeRepos_Identity); ok && id.Did == a.Did && deref(id.Handle) == "alicia.test" {
			found = true
		}
	}
	if !found {
		t.Error("no #identity event with the new handle")
	}

	cases := []struct {
		handle, error string
	}{
		{"bobby.test", "HandleNotAvailable"},
		{"admin.test", "HandleNotAvailable"},
		{"x.test", "InvalidHandle"},
		{"alice.example.com", "InvalidRequest"}, // does not resolve to the account
		{"alice.invalid", "InvalidHandle"},
	}
	for _, tc := range cases {
		if status, name := p.call("POST", "com.atproto.identity.updateHandle", a.AccessJwt, nil, map[string]any{"handle": tc.handle}, nil); status != 400 || name != tc.error {
			t.Errorf("updateHandle %s: %d %s, want 400 %s", tc.handle, status, name, tc.error)
		}
	}
	if status, name := p.call("POST", "com.atproto.identity.updateHandle", "", nil, map[string]any{"handle": "zelda.test"}, nil); status != 401 {
		t.Errorf("updateHandle without auth: %d %s", status, name)
	}
	acct, err := p.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did))
	if err != nil || acct.Handle != "alicia.test" {
		t.Errorf("stored handle %v (%v)", acct, err)
	}
}

func TestResolveIdentity(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	a := newAccount(t, p, "alice.test")
	for _, id := range []string{"alice.test", "ALICE.TEST", a.Did} {
		var info atproto.IdentityDefs_IdentityInfo
		if status, name := p.call("GET", "com.atproto.identity.resolveIdentity", "", map[string]string{"identifier": id}, nil, &info); status != 200 {
			t.Errorf("resolveIdentity %s: %d %s", id, status, name)
			continue
		}
		doc, _ := info.DidDoc.(map[string]any)
		if info.Did != a.Did || info.Handle != "alice.test" || doc["id"] != a.Did {
			t.Errorf("resolveIdentity %s: %+v", id, info)
		}
	}
	var info atproto.IdentityDefs_IdentityInfo
	if status, name := p.call("POST", "com.atproto.identity.refreshIdentity", "", nil, map[string]any{"identifier": a.Did}, &info); status != 200 || info.Handle != "alice.test" {
		t.Errorf("refreshIdentity: %d %s %+v", status, name, info)
	}
	var did struct {
		DidDoc map[string]any `json:"didDoc"`
	}
	if status, name := p.call("GET", "com.atproto.identity.resolveDid", "", map[string]string{"did": a.Did}, nil, &did); status != 200 || did.DidDoc["id"] != a.Did {
		t.Errorf("resolveDid: %d %s %v", status, name, did.DidDoc)
	}
	if status, name := p.call("GET", "com.atproto.identity.resolveDid", "", map[string]string{"did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}, nil, nil); status != 400 || name != "DidNotFound" {
		t.Errorf("resolveDid unknown: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.identity.resolveIdentity", "", map[string]string{"identifier": "nobody.test"}, nil, nil); status != 400 || name != "HandleNotFound" {
		t.Errorf("resolveIdentity unknown handle: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.identity.resolveHandle", "", map[string]string{"handle": "not_a_handle"}, nil, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("resolveHandle malformed: %d %s", status, name)
	}
}

func TestGetServiceAuth(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	p := newTestPDS(t, func(c *Config) { c.Now = clock.Now })
	a := newAccount(t, p, "alice.test")
	ctx := context.Background()

	aud := "did:web:appview.example.com"
	var out struct {
		Token string `json:"token"`
	}
	exp := clock.Now().Add(30 * time.Minute).Unix()
	params := map[string]string{"aud": aud, "lxm": "app.bsky.feed.getTimeline", "exp": strconv.FormatInt(exp, 10)}
	if status, name := p.call("GET", "com.atproto.server.getServiceAuth", a.AccessJwt, params, nil, &out); status != 200 {
		t.Fatalf("getServiceAuth: %d %s", status, name)
	}
	// The receiving service checks the token against the account's DID
	// document, resolved from the PLC directory.
	v := &auth.ServiceVerifier{
		Resolver: identity.NewResolver(identity.Options{PLCURL: p.plcURL, AllowPrivateNetworks: true, AllowLocalhost: true}),
		Audience: aud,
		Now:      clock.Now,
	}
	claims, err := v.Verify(ctx, out.Token, "app.bsky.feed.getTimeline")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if string(claims.Issuer) != a.Did || claims.ExpiresAt.Unix() != exp {
		t.Errorf("claims %+v", claims)
	}
	if _, err := v.Verify(ctx, out.Token, "app.bsky.feed.getAuthorFeed"); err == nil {
		t.Error("token accepted for another method")
	}
	// Without exp, a method-bound token lives a minute.
	if status, _ := p.call("GET", "com.atproto.server.getServiceAuth", a.AccessJwt, map[string]string{"aud": aud, "lxm": "app.bsky.feed.getTimeline"}, nil, &out); status != 200 {
		t.Fatal("getServiceAuth without exp")
	}
	claims, err = v.Verify(ctx, out.Token, "app.bsky.feed.getTimeline")
	if err != nil || claims.ExpiresAt.Sub(clock.Now()) > time.Minute {
		t.Errorf("default lifetime: %+v %v", claims, err)
	}

	now := clock.Now().Unix()
	cases := []struct {
		name   string
		params map[string]string
		error  string
	}{
		{"past exp", map[string]string{"aud": aud, "lxm": "app.bsky.feed.getTimeline", "exp": strconv.FormatInt(now-10, 10)}, "BadExpiration"},
		{"exp over an hour", map[string]string{"aud": aud, "lxm": "app.bsky.feed.getTimeline", "exp": strconv.FormatInt(now+3700, 10)}, "BadExpiration"},
		{"method-less over a minute", map[string]string{"aud": aud, "exp": strconv.FormatInt(now+120, 10)}, "BadExpiration"},
		{"protected method", map[string]string{"aud": aud, "lxm": "com.atproto.server.createAppPassword"}, "InvalidRequest"},
		{"protected method, other case", map[string]string{"aud": aud, "lxm": "com.atproto.identity.signPLCOperation"}, "InvalidRequest"},
		{"aud not a DID", map[string]string{"aud": "appview.example.com"}, "InvalidRequest"},
		{"aud did:key", map[string]string{"aud": "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"}, "InvalidRequest"},
		{"aud empty fragment", map[string]string{"aud": url.QueryEscape(aud + "#")}, "InvalidRequest"},
	}
	for _, tc := range cases {
		if status, name := p.call("GET", "com.atproto.server.getServiceAuth", a.AccessJwt, tc.params, nil, nil); status != 400 || name != tc.error {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, status, name, tc.error)
		}
	}
	if status, _ := p.call("GET", "com.atproto.server.getServiceAuth", a.AccessJwt, map[string]string{"aud": url.QueryEscape(aud + "#bsky_appview")}, nil, nil); status != 200 {
		t.Errorf("aud with a service fragment: %d", status)
	}
	if status, name := p.call("GET", "com.atproto.server.getServiceAuth", "", map[string]string{"aud": aud}, nil, nil); status != 401 {
		t.Errorf("without auth: %d %s", status, name)
	}
}

// TestAccountMigration moves an account from one PDS to another through
// the XRPC API, as the official client does: service auth for
// createAccount with the existing DID, recommended credentials, a PLC
// operation signed by the old PDS with an emailed token and submitted
// through the new one, then activation.
func TestAccountMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldPDS := newTestPDS(t, nil)
	newPDS := startPDS(t, t.TempDir(), oldPDS.plcURL, nil)
	mb := captureMail(oldPDS)
	a := newAccount(t, oldPDS, "alice.test")

	var sa struct {
		Token string `json:"token"`
	}
	if status, name := oldPDS.call("GET", "com.atproto.server.getServiceAuth", a.AccessJwt,
		map[string]string{"aud": url.QueryEscape(newPDS.srv.cfg.ServiceDID), "lxm": "com.atproto.server.createAccount"}, nil, &sa); status != 200 {
		t.Fatalf("getServiceAuth: %d %s", status, name)
	}
	body := map[string]any{"handle": "alice.test", "email": "alice@example.com", "password": "password2", "did": a.Did}
	// A token for another DID does not do.
	other := newAccount(t, oldPDS, "other.test")
	var otherSA struct {
		Token string `json:"token"`
	}
	oldPDS.call("GET", "com.atproto.server.getServiceAuth", other.AccessJwt,
		map[string]string{"aud": url.QueryEscape(newPDS.srv.cfg.ServiceDID), "lxm": "com.atproto.server.createAccount"}, nil, &otherSA)
	if status, name := newPDS.call("POST", "com.atproto.server.createAccount", otherSA.Token, nil, body, nil); status != 401 || name != "AuthenticationRequired" {
		t.Errorf("createAccount with another DID's token: %d %s", status, name)
	}
	var created accountOut
	if status, name := newPDS.call("POST", "com.atproto.server.createAccount", sa.Token, nil, body, &created); status != 200 {
		t.Fatalf("createAccount with did: %d %s", status, name)
	}
	if created.Did != a.Did {
		t.Fatalf("created %s, want %s", created.Did, a.Did)
	}
	acct, err := newPDS.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did))
	if err != nil || acct.Status != store.StatusDeactivated {
		t.Fatalf("new account %+v %v", acct, err)
	}

	var st atproto.ServerCheckAccountStatus_Output
	newPDS.call("GET", "com.atproto.server.checkAccountStatus", created.AccessJwt, nil, nil, &st)
	if st.ValidDid || st.Activated {
		t.Errorf("before the PLC update: %+v", st)
	}
	if status, name := newPDS.call("POST", "com.atproto.server.activateAccount", created.AccessJwt, nil, nil, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("activateAccount before the PLC update: %d %s", status, name)
	}

	var creds map[string]any
	if status, name := newPDS.call("GET", "com.atproto.identity.getRecommendedDidCredentials", created.AccessJwt, nil, nil, &creds); status != 200 {
		t.Fatalf("getRecommendedDidCredentials: %d %s", status, name)
	}
	if status, name := oldPDS.call("POST", "com.atproto.identity.signPlcOperation", a.AccessJwt, nil,
		map[string]any{"token": "AAAAA-AAAAA"}, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("signPlcOperation with a wrong token: %d %s", status, name)
	}
	if status, name := oldPDS.call("POST", "com.atproto.identity.requestPlcOperationSignature", a.AccessJwt, nil, nil, nil); status != 200 {
		t.Fatalf("requestPlcOperationSignature: %d %s", status, name)
	}
	token := mb.last(t, "plc_operation").Token
	sign := map[string]any{"token": token}
	for k, v := range creds {
		sign[k] = v
	}
	var signed struct {
		Operation map[string]any `json:"operation"`
	}
	if status, name := oldPDS.call("POST", "com.atproto.identity.signPlcOperation", a.AccessJwt, nil, sign, &signed); status != 200 {
		t.Fatalf("signPlcOperation: %d %s", status, name)
	}

	// The new PDS refuses operations that would not host the account there.
	bad := map[string]any{}
	for k, v := range signed.Operation {
		bad[k] = v
	}
	bad["rotationKeys"] = []any{oldPDS.srv.keys.rotation.Public().DIDKey()}
	if status, name := newPDS.call("POST", "com.atproto.identity.submitPlcOperation", created.AccessJwt, nil, map[string]any{"operation": bad}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("submit without the server's rotation key: %d %s", status, name)
	}
	if status, name := newPDS.call("POST", "com.atproto.identity.submitPlcOperation", created.AccessJwt, nil, map[string]any{"operation": map[string]any{"type": "plc_tombstone"}}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("submit garbage: %d %s", status, name)
	}
	if status, name := newPDS.call("POST", "com.atproto.identity.submitPlcOperation", created.AccessJwt, nil, map[string]any{"operation": signed.Operation}, nil); status != 200 {
		t.Fatalf("submitPlcOperation: %d %s", status, name)
	}
	doc, err := (&plc.Client{BaseURL: oldPDS.plcURL}).Resolve(ctx, syntax.DID(a.Did))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Service[0].ServiceEndpoint != newPDS.srv.cfg.PublicURL {
		t.Errorf("DID document points at %s", doc.Service[0].ServiceEndpoint)
	}

	newPDS.call("GET", "com.atproto.server.checkAccountStatus", created.AccessJwt, nil, nil, &st)
	if !st.ValidDid || st.Activated {
		t.Errorf("after the PLC update: %+v", st)
	}
	if status, name := newPDS.call("POST", "com.atproto.server.activateAccount", created.AccessJwt, nil, nil, nil); status != 200 {
		t.Fatalf("activateAccount: %d %s", status, name)
	}
	if status, name := oldPDS.call("POST", "com.atproto.server.deactivateAccount", a.AccessJwt, nil, map[string]any{}, nil); status != 200 {
		t.Fatalf("deactivate on the old PDS: %d %s", status, name)
	}
	var sess sessionOut
	if status, name := newPDS.call("GET", "com.atproto.server.getSession", created.AccessJwt, nil, nil, &sess); status != 200 || sess.Active == nil || !*sess.Active {
		t.Errorf("new PDS session: %d %s %+v", status, name, sess)
	}
	if err := newPDS.srv.seq.Flush(ctx, syntax.DID(a.Did)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(eventKinds(t, newPDS, a.Did), " ")
	t.Logf("new PDS events: %s", got)
	if !strings.HasSuffix(got, "identity account:active identity sync") || strings.HasPrefix(got, "identity account:active commit") {
		t.Errorf("new PDS events: %s", got)
	}
}

func TestSignPlcOperationInput(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	mb := captureMail(p)
	a := newAccount(t, p, "alice.test")
	p.call("POST", "com.atproto.identity.requestPlcOperationSignature", a.AccessJwt, nil, nil, nil)
	token := mb.last(t, "plc_operation").Token
	cases := []map[string]any{
		{"token": token, "verificationMethods": "nope"},
		{"token": token, "verificationMethods": map[string]any{"atproto": 5}},
		{"token": token, "services": map[string]any{"atproto_pds": "https://x"}},
		{"token": token, "services": map[string]any{"atproto_pds": map[string]any{"type": "X"}}},
		{},
	}
	for i, body := range cases {
		if status, name := p.call("POST", "com.atproto.identity.signPlcOperation", a.AccessJwt, nil, body, nil); status != 400 || name != "InvalidRequest" {
			t.Errorf("case %d: %d %s", i, status, name)
		}
	}
	// The token survived the refused inputs and signs an operation that
	// keeps the document as it was when nothing is given.
	var signed struct {
		Operation map[string]any `json:"operation"`
	}
	if status, name := p.call("POST", "com.atproto.identity.signPlcOperation", a.AccessJwt, nil, map[string]any{"token": token}, &signed); status != 200 {
		t.Fatalf("signPlcOperation: %d %s", status, name)
	}
	if signed.Operation["type"] != "plc_operation" || signed.Operation["prev"] == nil || signed.Operation["sig"] == "" {
		t.Errorf("operation %v", signed.Operation)
	}
	if status, name := p.call("POST", "com.atproto.identity.submitPlcOperation", a.AccessJwt, nil, map[string]any{"operation": signed.Operation}, nil); status != http.StatusOK {
		t.Errorf("submit an unchanged operation: %d %s", status, name)
	}
}
