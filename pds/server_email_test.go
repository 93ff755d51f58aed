package pds

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEmailConfirmationAndUpdate(t *testing.T) {
	t.Parallel()
	clock := newAcctClock()
	p := newTestPDS(t, func(c *Config) { c.Now = clock.Now })
	mb := captureMail(p)
	a := newAccount(t, p, "alice.test")

	if status, name := p.call("POST", "com.atproto.server.requestEmailConfirmation", a.AccessJwt, nil, nil, nil); status != 200 {
		t.Fatalf("requestEmailConfirmation: %d %s", status, name)
	}
	msg := mb.last(t, "confirm_email")
	if msg.To != "alice@example.com" || msg.Subject == "" || !strings.Contains(msg.Text, msg.Token) {
		t.Errorf("confirmation email %+v", msg)
	}
	cases := []struct {
		email, token string
		error        string
	}{
		{"other@example.com", msg.Token, "InvalidEmail"},
		{"alice@example.com", "ZZZZZ-ZZZZZ", "InvalidToken"},
	}
	for _, tc := range cases {
		if status, name := p.call("POST", "com.atproto.server.confirmEmail", a.AccessJwt, nil,
			map[string]any{"email": tc.email, "token": tc.token}, nil); status != 400 || name != tc.error {
			t.Errorf("confirmEmail %s/%s: %d %s, want 400 %s", tc.email, tc.token, status, name, tc.error)
		}
	}
	if status, name := p.call("POST", "com.atproto.server.confirmEmail", a.AccessJwt, nil,
		map[string]any{"email": "Alice@Example.com", "token": msg.Token}, nil); status != 200 {
		t.Fatalf("confirmEmail: %d %s", status, name)
	}
	// Tokens work once.
	if status, name := p.call("POST", "com.atproto.server.confirmEmail", a.AccessJwt, nil,
		map[string]any{"email": "alice@example.com", "token": msg.Token}, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("confirmEmail twice: %d %s", status, name)
	}
	var sess sessionOut
	p.call("GET", "com.atproto.server.getSession", a.AccessJwt, nil, nil, &sess)
	if sess.EmailConfirmed == nil || !*sess.EmailConfirmed {
		t.Errorf("email not confirmed: %+v", sess)
	}

	// A confirmed address needs a token to change.
	var upd struct {
		TokenRequired bool `json:"tokenRequired"`
	}
	if status, name := p.call("POST", "com.atproto.server.requestEmailUpdate", a.AccessJwt, nil, nil, &upd); status != 200 || !upd.TokenRequired {
		t.Fatalf("requestEmailUpdate: %d %s %+v", status, name, upd)
	}
	upMsg := mb.last(t, "update_email")
	if status, name := p.call("POST", "com.atproto.server.updateEmail", a.AccessJwt, nil,
		map[string]any{"email": "new@example.com"}, nil); status != 400 || name != "TokenRequired" {
		t.Errorf("updateEmail without token: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.updateEmail", a.AccessJwt, nil,
		map[string]any{"email": "not-an-email", "token": upMsg.Token}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("updateEmail to a bad address: %d %s", status, name)
	}
	// An expired token is refused.
	clock.Advance(emailTokenTTL + time.Second)
	if status, name := p.call("POST", "com.atproto.server.updateEmail", a.AccessJwt, nil,
		map[string]any{"email": "new@example.com", "token": upMsg.Token}, nil); status != 400 || name != "ExpiredToken" {
		t.Errorf("updateEmail with an expired token: %d %s", status, name)
	}
	if status, _ := p.call("POST", "com.atproto.server.requestEmailUpdate", a.AccessJwt, nil, nil, &upd); status != 200 {
		t.Fatal("requestEmailUpdate again")
	}
	upMsg = mb.last(t, "update_email")
	newAccount(t, p, "bobby.test")
	if status, name := p.call("POST", "com.atproto.server.updateEmail", a.AccessJwt, nil,
		map[string]any{"email": "bobby@example.com", "token": upMsg.Token}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("updateEmail to a taken address: %d %s", status, name)
	}
	if status, _ := p.call("POST", "com.atproto.server.requestEmailUpdate", a.AccessJwt, nil, nil, &upd); status != 200 {
		t.Fatal("requestEmailUpdate again")
	}
	upMsg = mb.last(t, "update_email")
	if status, name := p.call("POST", "com.atproto.server.updateEmail", a.AccessJwt, nil,
		map[string]any{"email": "New@Example.com", "token": upMsg.Token}, nil); status != 200 {
		t.Fatalf("updateEmail: %d %s", status, name)
	}
	p.call("GET", "com.atproto.server.getSession", a.AccessJwt, nil, nil, &sess)
	if deref(sess.Email) != "new@example.com" || sess.EmailConfirmed == nil || *sess.EmailConfirmed {
		t.Errorf("after updateEmail: %+v", sess)
	}
	// An unconfirmed address changes without a token.
	if status, _ := p.call("POST", "com.atproto.server.requestEmailUpdate", a.AccessJwt, nil, nil, &upd); status != 200 || upd.TokenRequired {
		t.Errorf("requestEmailUpdate for an unconfirmed address: %+v", upd)
	}
	if status, name := p.call("POST", "com.atproto.server.updateEmail", a.AccessJwt, nil,
		map[string]any{"email": "newer@example.com"}, nil); status != 200 {
		t.Errorf("updateEmail of an unconfirmed address: %d %s", status, name)
	}
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	mb := captureMail(p)
	a := newAccount(t, p, "alice.test")
	if status, name := p.call("POST", "com.atproto.server.requestPasswordReset", "", nil, map[string]any{"email": "nobody@example.com"}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("reset for an unknown address: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.requestPasswordReset", "", nil, map[string]any{"email": "ALICE@example.com"}, nil); status != 200 {
		t.Fatalf("requestPasswordReset: %d %s", status, name)
	}
	msg := mb.last(t, "reset_password")
	if status, name := p.call("POST", "com.atproto.server.resetPassword", "", nil, map[string]any{"token": "AAAAA-AAAAA", "password": "new-password"}, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("reset with a wrong token: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.resetPassword", "", nil, map[string]any{"token": msg.Token, "password": strings.Repeat("x", 257)}, nil); status != 400 || name != "InvalidRequest" {
		t.Errorf("reset to an overlong password: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.resetPassword", "", nil, map[string]any{"token": msg.Token, "password": "new-password"}, nil); status != 200 {
		t.Fatalf("resetPassword: %d %s", status, name)
	}
	if _, status, _ := createSession(t, p, "alice.test", "password"); status != 401 {
		t.Errorf("old password still works: %d", status)
	}
	if _, status, name := createSession(t, p, "alice.test", "new-password"); status != 200 {
		t.Errorf("new password: %d %s", status, name)
	}
	// Sessions made before the reset are ended.
	if status, name := p.call("POST", "com.atproto.server.refreshSession", a.RefreshJwt, nil, nil, nil); status != 400 || name != "ExpiredToken" {
		t.Errorf("old refresh token after reset: %d %s", status, name)
	}
	if status, name := p.call("POST", "com.atproto.server.resetPassword", "", nil, map[string]any{"token": msg.Token, "password": "again"}, nil); status != 400 || name != "InvalidToken" {
		t.Errorf("token reused: %d %s", status, name)
	}
}

func TestValidEmail(t *testing.T) {
	t.Parallel()
	good := []string{"a@b.co", "alice@example.com", "a.b+c@sub.example.org"}
	bad := []string{"", "a", "a@b", "@b.co", "a@.co", "a@b.", "a b@c.co", "Alice <a@b.co>", "a@b.co\r\nBcc: x@y.z", "a@@b.co", "a@b..co", strings.Repeat("a", 250) + "@b.co"}
	for _, s := range good {
		if !validEmail(s) {
			t.Errorf("validEmail(%q) = false", s)
		}
	}
	for _, s := range bad {
		if validEmail(s) {
			t.Errorf("validEmail(%q) = true", s)
		}
	}
}

// fakeSMTP is a minimal SMTP server on loopback that records one
// message's envelope and data.
type fakeSMTP struct {
	ln   net.Listener
	mu   sync.Mutex
	from string
	to   []string
	data string
	done chan struct{}
}

func startFakeSMTP(t *testing.T) *fakeSMTP {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln, done: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		defer close(f.done)
		conn.SetDeadline(time.Now().Add(time.Minute))
		r := bufio.NewReader(conn)
		reply := func(s string) { conn.Write([]byte(s + "\r\n")) }
		reply("220 fake ESMTP")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
				reply("250-fake")
				reply("250 8BITMIME")
			case strings.HasPrefix(cmd, "MAIL FROM:"):
				f.mu.Lock()
				f.from = strings.TrimSpace(line[len("MAIL FROM:"):])
				f.mu.Unlock()
				reply("250 OK")
			case strings.HasPrefix(cmd, "RCPT TO:"):
				f.mu.Lock()
				f.to = append(f.to, strings.TrimSpace(line[len("RCPT TO:"):]))
				f.mu.Unlock()
				reply("250 OK")
			case cmd == "DATA":
				reply("354 go ahead")
				var b strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
					b.WriteString(l)
				}
				f.mu.Lock()
				f.data = b.String()
				f.mu.Unlock()
				reply("250 queued")
			case cmd == "QUIT":
				reply("221 bye")
				return
			default:
				reply("502 not implemented")
			}
		}
	}()
	return f
}

func TestSMTPMailer(t *testing.T) {
	t.Parallel()
	f := startFakeSMTP(t)
	m, err := newSMTPMailer("smtp://"+f.ln.Addr().String(), "Welkin <pds@example.com>", "pds.example.com")
	if err != nil {
		t.Fatal(err)
	}
	err = m.send(context.Background(), mailMessage{To: "alice@example.com", Subject: "Confirm your email address", Text: "code:\n\n    ABCDE-FGHIJ\n"})
	if err != nil {
		t.Fatal(err)
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.HasPrefix(f.from, "<pds@example.com>") || len(f.to) != 1 || f.to[0] != "<alice@example.com>" {
		t.Errorf("envelope from %q to %q", f.from, f.to)
	}
	for _, want := range []string{"To: alice@example.com\r\n", "Subject: Confirm your email address\r\n", "From: \"Welkin\" <pds@example.com>\r\n", "    ABCDE-FGHIJ\r\n", "Content-Type: text/plain; charset=utf-8\r\n"} {
		if !strings.Contains(f.data, want) {
			t.Errorf("message lacks %q:\n%s", want, f.data)
		}
	}

	// Header injection is refused before anything is sent.
	if err := m.send(context.Background(), mailMessage{To: "a@b.co\r\nBcc: x@y.z", Subject: "s"}); err == nil {
		t.Error("a recipient with a line break was accepted")
	}
	for _, bad := range []string{"http://x", "smtp://", "smtp://host:25/%zz"} {
		if _, err := newSMTPMailer(bad, "", "h"); err == nil {
			t.Errorf("newSMTPMailer(%q) accepted", bad)
		}
	}
}
