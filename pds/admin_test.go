package pds

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
	"github.com/welkin-atproto/welkin/pds/store"
)

func repoRef(did string) map[string]any {
	return map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": did}
}

func TestAdminTakedown(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := context.Background()
	a := newAccount(t, p, "alice.test")
	s, _, _ := createSession(t, p, "alice.test", "password")

	// Admin methods need the admin password.
	h := http.Header{}
	h.Set("Authorization", "Basic YWRtaW46d3Jvbmc=") // admin:wrong
	if status, _, _ := callRaw(t, p, "POST", "com.atproto.admin.updateSubjectStatus", h,
		map[string]any{"subject": repoRef(a.Did), "takedown": map[string]any{"applied": true}}); status != 401 {
		t.Errorf("wrong admin password: %d", status)
	}
	if status, name := p.call("POST", "com.atproto.admin.updateSubjectStatus", a.AccessJwt, nil,
		map[string]any{"subject": repoRef(a.Did), "takedown": map[string]any{"applied": true}}, nil); status != 401 {
		t.Errorf("user token on an admin method: %d %s", status, name)
	}

	var out atproto.AdminUpdateSubjectStatus_Output
	if status, name := callAdmin(t, p, "com.atproto.admin.updateSubjectStatus",
		map[string]any{"subject": repoRef(a.Did), "takedown": map[string]any{"applied": true, "ref": "case-42"}}, &out); status != 200 {
		t.Fatalf("takedown: %d %s", status, name)
	}
	if out.Subject == nil || out.Subject.AdminDefs_RepoRef == nil || out.Subject.AdminDefs_RepoRef.Did != a.Did || out.Takedown == nil || !out.Takedown.Applied {
		t.Errorf("takedown output %+v", out)
	}
	var st atproto.AdminGetSubjectStatus_Output
	if status, name := callAdmin(t, p, "com.atproto.admin.getSubjectStatus?did="+a.Did, nil, &st); status != 200 {
		t.Fatalf("getSubjectStatus: %d %s", status, name)
	}
	if st.Takedown == nil || !st.Takedown.Applied || deref(st.Takedown.Ref) != "case-42" || st.Deactivated == nil || st.Deactivated.Applied {
		t.Errorf("getSubjectStatus %+v", st)
	}
	// The account can no longer log in or use its sessions.
	if _, status, name := createSession(t, p, "alice.test", "password"); status != 401 || name != "AccountTakedown" {
		t.Errorf("login while taken down: %d %s", status, name)
	}
	if status, name := p.call("GET", "com.atproto.server.getSession", s.AccessJwt, nil, nil, nil); status != 401 || name != "AccountTakedown" {
		t.Errorf("access token while taken down: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.refreshSession", s.RefreshJwt, nil, nil, nil); status != 401 || name != "AccountTakedown" {
		t.Errorf("refresh while taken down: %d %s", status, name)
	}

	if status, name := callAdmin(t, p, "com.atproto.admin.updateSubjectStatus",
		map[string]any{"subject": repoRef(a.Did), "takedown": map[string]any{"applied": false}}, nil); status != 200 {
		t.Fatalf("reverse takedown: %d %s", status, name)
	}
	if _, status, name := createSession(t, p, "alice.test", "password"); status != 200 {
		t.Errorf("login after the takedown is reversed: %d %s", status, name)
	}
	// Sessions from before the takedown stay ended.
	if status, name := p.call("POST", "com.atproto.server.refreshSession", s.RefreshJwt, nil, nil, nil); status != 400 || name != "ExpiredToken" {
		t.Errorf("old refresh token after the takedown: %d %s", status, name)
	}
	if err := p.srv.seq.Flush(ctx, syntax.DID(a.Did)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(eventKinds(t, p, a.Did), " ")
	if !strings.HasSuffix(got, "account:takendown account:active") {
		t.Errorf("events %s", got)
	}

	// Deactivation through the admin API.
	if status, name := callAdmin(t, p, "com.atproto.admin.updateSubjectStatus",
		map[string]any{"subject": repoRef(a.Did), "deactivated": map[string]any{"applied": true}}, nil); status != 200 {
		t.Fatalf("admin deactivate: %d %s", status, name)
	}
	if acct, _ := p.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did)); acct.Status != store.StatusDeactivated {
		t.Errorf("status %s after admin deactivation", acct.Status)
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.updateSubjectStatus",
		map[string]any{"subject": repoRef(a.Did), "deactivated": map[string]any{"applied": false}}, nil); status != 200 {
		t.Fatalf("admin activate: %d %s", status, name)
	}
	if acct, _ := p.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did)); acct.Status != store.StatusActive {
		t.Errorf("status %s after admin activation", acct.Status)
	}

	bad := []map[string]any{
		{"subject": repoRef(a.Did), "takedown": map[string]any{"applied": true}, "deactivated": map[string]any{"applied": false}},
		{"subject": map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "at://" + a.Did + "/app.bsky.feed.post/3k", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, "takedown": map[string]any{"applied": true}},
	}
	for i, body := range bad {
		if status, name := callAdmin(t, p, "com.atproto.admin.updateSubjectStatus", body, nil); status != 400 || name != "InvalidRequest" {
			t.Errorf("bad updateSubjectStatus %d: %d %s", i, status, name)
		}
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.getSubjectStatus?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", nil, nil); status != 400 || name != "NotFound" {
		t.Errorf("getSubjectStatus unknown: %d %s", status, name)
	}
}

func TestAdminAccounts(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := context.Background()
	mb := captureMail(p)
	a := newAccount(t, p, "alice.test")
	b := newAccount(t, p, "bobby.test")

	var info atproto.AdminDefs_AccountView
	if status, name := callAdmin(t, p, "com.atproto.admin.getAccountInfo?did="+a.Did, nil, &info); status != 200 {
		t.Fatalf("getAccountInfo: %d %s", status, name)
	}
	if info.Did != a.Did || info.Handle != "alice.test" || deref(info.Email) != "alice@example.com" || info.IndexedAt == "" {
		t.Errorf("getAccountInfo %+v", info)
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.getAccountInfo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", nil, nil); status != 400 || name != "NotFound" {
		t.Errorf("getAccountInfo unknown: %d %s", status, name)
	}
	var infos atproto.AdminGetAccountInfos_Output
	if status, name := callAdmin(t, p, "com.atproto.admin.getAccountInfos?dids="+a.Did+"&dids="+b.Did+"&dids=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", nil, &infos); status != 200 || len(infos.Infos) != 2 {
		t.Errorf("getAccountInfos: %d %s %d", status, name, len(infos.Infos))
	}

	// The admin may give reserved handles.
	if status, name := callAdmin(t, p, "com.atproto.admin.updateAccountHandle", map[string]any{"did": a.Did, "handle": "admin.test"}, nil); status != 200 {
		t.Errorf("updateAccountHandle to a reserved name: %d %s", status, name)
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.updateAccountHandle", map[string]any{"did": a.Did, "handle": "bobby.test"}, nil); status != 400 || name != "HandleNotAvailable" {
		t.Errorf("updateAccountHandle to a taken name: %d %s", status, name)
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.updateAccountEmail", map[string]any{"account": "admin.test", "email": "Root@Example.com"}, nil); status != 200 {
		t.Errorf("updateAccountEmail: %d %s", status, name)
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.updateAccountEmail", map[string]any{"account": "nobody.test", "email": "x@example.com"}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("updateAccountEmail unknown: %d %s", status, name)
	}
	acct, err := p.srv.accounts.AccountByDID(ctx, syntax.DID(a.Did))
	if err != nil || acct.Handle != "admin.test" || acct.Email != "root@example.com" {
		t.Errorf("after admin updates: %+v %v", acct, err)
	}

	if status, name := callAdmin(t, p, "com.atproto.admin.updateAccountPassword", map[string]any{"did": a.Did, "password": "reset-by-admin"}, nil); status != 200 {
		t.Fatalf("updateAccountPassword: %d %s", status, name)
	}
	if _, status, name := createSession(t, p, "admin.test", "reset-by-admin"); status != 200 {
		t.Errorf("login with the admin-set password: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.refreshSession", a.RefreshJwt, nil, nil, nil); status != 400 || name != "ExpiredToken" {
		t.Errorf("old session after an admin password change: %d %s", status, name)
	}

	var sent struct {
		Sent bool `json:"sent"`
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.sendEmail", map[string]any{
		"recipientDid": b.Did, "senderDid": p.srv.cfg.ServiceDID, "content": "Hello from the operator", "subject": "Notice",
	}, &sent); status != 200 || !sent.Sent {
		t.Errorf("sendEmail: %d %s", status, name)
	}
	if m := mb.last(t, "admin"); m.To != "bobby@example.com" || m.Subject != "Notice" || m.Text != "Hello from the operator" {
		t.Errorf("admin email %+v", m)
	}

	if status, name := callAdmin(t, p, "com.atproto.admin.deleteAccount", map[string]any{"did": b.Did}, nil); status != 200 {
		t.Fatalf("admin deleteAccount: %d %s", status, name)
	}
	if _, err := p.srv.accounts.AccountByDID(ctx, syntax.DID(b.Did)); err == nil {
		t.Error("deleted account still stored")
	}
	if _, err := os.Stat(actorstore.Dir(p.srv.actors.dir, syntax.DID(b.Did))); !os.IsNotExist(err) {
		t.Errorf("deleted account's database still there (%v)", err)
	}
	if status, name := callAdmin(t, p, "com.atproto.admin.disableInviteCodes", map[string]any{"accounts": []string{"admin"}}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("disable admin codes: %d %s", status, name)
	}
}

func TestAdminDisabled(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, func(c *Config) { c.AdminPassword = "" })
	if status, name := callAdmin(t, p, "com.atproto.admin.getAccountInfo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", nil, nil); status != 401 || name != "AuthenticationRequired" {
		t.Errorf("admin call with the admin API off: %d %s", status, name)
	}
}
