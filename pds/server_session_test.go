package pds

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

type sessionOut struct {
	AccessJwt      string         `json:"accessJwt"`
	RefreshJwt     string         `json:"refreshJwt"`
	Handle         string         `json:"handle"`
	Did            string         `json:"did"`
	DidDoc         map[string]any `json:"didDoc"`
	Email          *string        `json:"email"`
	EmailConfirmed *bool          `json:"emailConfirmed"`
	Active         *bool          `json:"active"`
	Status         *string        `json:"status"`
}

func createSession(t testing.TB, p *testPDS, identifier, password string) (sessionOut, int, string) {
	t.Helper()
	var out sessionOut
	status, name := p.call("POST", "com.atproto.server.createSession", "", nil,
		map[string]string{"identifier": identifier, "password": password}, &out)
	return out, status, name
}

func TestCreateSession(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	a := newAccount(t, p, "alice.test")
	for _, id := range []string{"alice.test", "ALICE.test", a.Did, "alice@example.com", "Alice@Example.COM"} {
		out, status, name := createSession(t, p, id, "password")
		if status != 200 {
			t.Errorf("login as %s: %d %s", id, status, name)
			continue
		}
		if out.Did != a.Did || out.Handle != "alice.test" || out.AccessJwt == "" || out.RefreshJwt == "" ||
			deref(out.Email) != "alice@example.com" || out.EmailConfirmed == nil || *out.EmailConfirmed ||
			out.Active == nil || !*out.Active || out.Status != nil || out.DidDoc["id"] != a.Did {
			t.Errorf("login as %s: %+v", id, out)
		}
	}
	bad := []struct{ id, pw string }{
		{"alice.test", "wrong"},
		{"alice.test", ""},
		{"nobody.test", "password"},
		{"nobody@example.com", "password"},
		{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "password"},
		{"not an identifier", "password"},
		{"alice.test", "abcd-efgh-ijkl-mnop"},
	}
	for _, b := range bad {
		_, status, name := createSession(t, p, b.id, b.pw)
		if status != 401 || name != "AuthenticationRequired" {
			t.Errorf("login %q/%q: %d %s, want 401 AuthenticationRequired", b.id, b.pw, status, name)
		}
	}
	// The same message whatever was wrong.
	_, _, body1 := callRaw(t, p, "POST", "com.atproto.server.createSession", nil, map[string]string{"identifier": "alice.test", "password": "x"})
	_, _, body2 := callRaw(t, p, "POST", "com.atproto.server.createSession", nil, map[string]string{"identifier": "zed.test", "password": "x"})
	if string(body1) != string(body2) || !strings.Contains(string(body1), "Invalid identifier or password") {
		t.Errorf("login failures differ: %s / %s", body1, body2)
	}
	_, status, name := createSession(t, p, "alice.test", strings.Repeat("p", 513))
	if status != 401 || name != "AuthenticationRequired" {
		t.Errorf("overlong password: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.createSession", "", nil, map[string]string{"identifier": "alice.test"}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("missing password: %d %s", status, name)
	}
}

func TestRefreshSession(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	p := newTestPDS(t, func(c *Config) { c.Now = clock.Now })
	newAccount(t, p, "alice.test")
	s1, status, name := createSession(t, p, "alice.test", "password")
	if status != 200 {
		t.Fatalf("login: %d %s", status, name)
	}
	// An access token is not a refresh token, and the reverse.
	if status, name := p.call("POST", "com.atproto.server.refreshSession", s1.AccessJwt, nil, nil, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("refresh with an access token: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.server.getSession", s1.RefreshJwt, nil, nil, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("getSession with a refresh token: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.server.getSession", "", nil, nil, nil); status != 401 || name != "AuthMissing" {
		t.Errorf("getSession without a token: %d %s", status, name)
	}
	forged := s1.AccessJwt[:len(s1.AccessJwt)-4] + "AAAA"
	if status, name := p.call("GET", "com.atproto.server.getSession", forged, nil, nil, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("getSession with a forged token: %d %s", status, name)
	}

	var r1, r1again sessionOut
	if status, name := p.call("POST", "com.atproto.server.refreshSession", s1.RefreshJwt, nil, nil, &r1); status != 200 {
		t.Fatalf("refreshSession: %d %s", status, name)
	}
	if r1.RefreshJwt == s1.RefreshJwt || r1.Handle != "alice.test" || r1.Active == nil || !*r1.Active {
		t.Errorf("refreshSession: %+v", r1)
	}
	// Reuse within the grace period gives the same new pair.
	clock.Advance(time.Hour)
	if status, name := p.call("POST", "com.atproto.server.refreshSession", s1.RefreshJwt, nil, nil, &r1again); status != 200 {
		t.Fatalf("refreshSession again: %d %s", status, name)
	}
	if r1again.RefreshJwt != r1.RefreshJwt || r1again.AccessJwt != r1.AccessJwt {
		t.Error("reuse within the grace period gave another pair")
	}
	// After the grace period the old token is revoked.
	clock.Advance(90 * time.Minute)
	if status, name := p.call("POST", "com.atproto.server.refreshSession", s1.RefreshJwt, nil, nil, nil); status != 400 || name != "ExpiredToken" {
		t.Errorf("refresh after the grace period: %d %s", status, name)
	}
	// The old access token has expired by now (2 hours).
	if status, name := p.call("GET", "com.atproto.server.getSession", s1.AccessJwt, nil, nil, nil); status != 400 || name != "ExpiredToken" {
		t.Errorf("expired access token: %d %s", status, name)
	}
	var r2 sessionOut
	if status, name := p.call("POST", "com.atproto.server.refreshSession", r1.RefreshJwt, nil, nil, &r2); status != 200 {
		t.Fatalf("refresh the new token: %d %s", status, name)
	}

	// deleteSession revokes the refresh token.
	if status, name := p.call("POST", "com.atproto.server.deleteSession", r2.RefreshJwt, nil, nil, nil); status != 200 {
		t.Fatalf("deleteSession: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.refreshSession", r2.RefreshJwt, nil, nil, nil); status != 400 || name != "ExpiredToken" {
		t.Errorf("refresh after deleteSession: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.deleteSession", "", nil, nil, nil); status != 401 || name != "AuthMissing" {
		t.Errorf("deleteSession without a token: %d %s", status, name)
	}
}

func TestAppPasswords(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	a := newAccount(t, p, "alice.test")
	var ap struct {
		Name       string `json:"name"`
		Password   string `json:"password"`
		CreatedAt  string `json:"createdAt"`
		Privileged bool   `json:"privileged"`
	}
	if status, name := p.call("POST", "com.atproto.server.createAppPassword", a.AccessJwt, nil, map[string]any{"name": "my app"}, &ap); status != 200 {
		t.Fatalf("createAppPassword: %d %s", status, name)
	}
	if !regexp.MustCompile(`^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`).MatchString(ap.Password) || ap.Name != "my app" || ap.Privileged || ap.CreatedAt == "" {
		t.Errorf("app password %+v", ap)
	}
	if status, name := p.call("POST", "com.atproto.server.createAppPassword", a.AccessJwt, nil, map[string]any{"name": "my app"}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("duplicate name: %d %s", status, name)
	}
	var priv struct {
		Password string `json:"password"`
	}
	if status, name := p.call("POST", "com.atproto.server.createAppPassword", a.AccessJwt, nil, map[string]any{"name": "chat", "privileged": true}, &priv); status != 200 {
		t.Fatalf("createAppPassword privileged: %d %s", status, name)
	}

	s, status, name := createSession(t, p, "alice.test", ap.Password)
	if status != 200 {
		t.Fatalf("login with app password: %d %s", status, name)
	}
	// Upper case works too (typed by hand).
	if _, status, name := createSession(t, p, "alice.test", strings.ToUpper(ap.Password)); status != 200 {
		t.Errorf("login with an upper-case app password: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.server.getSession", s.AccessJwt, nil, nil, nil); status != 200 {
		t.Errorf("getSession with an app password session: %d %s", status, name)
	}
	// An app-password session cannot make app passwords.
	if status, name := p.call("POST", "com.atproto.server.createAppPassword", s.AccessJwt, nil, map[string]any{"name": "evil"}, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("createAppPassword with an app-password session: %d %s", status, name)
	}
	// Nor service tokens for privileged methods, which a privileged one may.
	params := map[string]string{"aud": "did:web:example.com", "lxm": "chat.bsky.convo.getLog"}
	if status, name := p.call("GET", "com.atproto.server.getServiceAuth", s.AccessJwt, params, nil, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("privileged service token with an app-password session: %d %s", status, name)
	}
	ps, status, name := createSession(t, p, "alice.test", priv.Password)
	if status != 200 {
		t.Fatalf("login with privileged app password: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.server.getServiceAuth", ps.AccessJwt, params, nil, nil); status != 200 {
		t.Errorf("privileged service token with a privileged session: %d %s", status, name)
	}
	// Refreshing keeps the app password's scope.
	var r sessionOut
	if status, name := p.call("POST", "com.atproto.server.refreshSession", s.RefreshJwt, nil, nil, &r); status != 200 {
		t.Fatalf("refresh an app-password session: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.createAppPassword", r.AccessJwt, nil, map[string]any{"name": "evil"}, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("createAppPassword after refresh of an app-password session: %d %s", status, name)
	}

	var list struct {
		Passwords []struct {
			Name       string `json:"name"`
			Privileged bool   `json:"privileged"`
			Password   string `json:"password"`
		} `json:"passwords"`
	}
	if status, name := p.call("GET", "com.atproto.server.listAppPasswords", a.AccessJwt, nil, nil, &list); status != 200 {
		t.Fatalf("listAppPasswords: %d %s", status, name)
	}
	if len(list.Passwords) != 2 || list.Passwords[0].Name != "chat" || !list.Passwords[0].Privileged || list.Passwords[1].Name != "my app" || list.Passwords[0].Password != "" {
		t.Errorf("listAppPasswords %+v", list.Passwords)
	}

	if status, name := p.call("POST", "com.atproto.server.revokeAppPassword", a.AccessJwt, nil, map[string]any{"name": "my app"}, nil); status != 200 {
		t.Fatalf("revokeAppPassword: %d %s", status, name)
	}
	if _, status, name := createSession(t, p, "alice.test", ap.Password); status != http.StatusUnauthorized || name != "AuthenticationRequired" {
		t.Errorf("login with a revoked app password: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.revokeAppPassword", a.AccessJwt, nil, map[string]any{"name": "never existed"}, nil); status != 200 {
		t.Errorf("revoke unknown name: %d %s", status, name)
	}
	// The account password still works.
	if _, status, name := createSession(t, p, "alice.test", "password"); status != 200 {
		t.Errorf("login with the account password: %d %s", status, name)
	}
}
