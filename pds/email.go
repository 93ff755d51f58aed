package pds

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// smtpTimeout bounds one delivery to the SMTP server.
const smtpTimeout = 30 * time.Second

// maxEmailLength bounds an email address (RFC 5321 §4.5.3.1.3: a path is at
// most 256 octets including the angle brackets).
const maxEmailLength = 254

// mailMessage is one email the PDS sends an account holder.
type mailMessage struct {
	To      string
	Subject string
	Text    string
	// Purpose and Token say which email token the message carries, for
	// the log and for tests.
	Purpose string
	Token   string
}

// mailer delivers messages. The server's mailer is SMTP when
// Config.SMTPURL is set and the log otherwise; tests swap in a mailerFunc
// to capture messages.
type mailer interface {
	send(ctx context.Context, m mailMessage) error
}

// mailerFunc adapts a function to the mailer interface.
type mailerFunc func(ctx context.Context, m mailMessage) error

func (f mailerFunc) send(ctx context.Context, m mailMessage) error { return f(ctx, m) }

// newMailer returns the mailer cfg asks for. A malformed SMTPURL gives a
// mailer that fails every delivery with the parse error (and logs it),
// since the configuration was checked when the server started only if
// someone checked it.
func newMailer(cfg Config) mailer {
	if cfg.SMTPURL == "" {
		return logMailer{log: cfg.Logger}
	}
	m, err := newSMTPMailer(cfg.SMTPURL, cfg.EmailFrom, cfg.Hostname)
	if err != nil {
		cfg.Logger.Error("pds: email is not configured correctly", "err", err)
		return mailerFunc(func(context.Context, mailMessage) error { return err })
	}
	return m
}

// logMailer writes messages to the log, for development networks without
// an SMTP server: the token is then read from the log.
type logMailer struct{ log *slog.Logger }

func (l logMailer) send(ctx context.Context, m mailMessage) error {
	l.log.InfoContext(ctx, "pds: email (no SMTP server configured)",
		"to", m.To, "subject", m.Subject, "purpose", m.Purpose, "token", m.Token)
	return nil
}

// smtpMailer delivers through one SMTP server: smtp:// uses STARTTLS when
// the server offers it, smtps:// connects with TLS from the start.
type smtpMailer struct {
	addr     string // host:port
	host     string
	implicit bool // smtps://
	user     string
	pass     string
	from     string // the From address
	helo     string
}

func newSMTPMailer(raw, from, hostname string) (*smtpMailer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("pds: SMTP URL: %w", err)
	}
	m := &smtpMailer{helo: hostname}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		m.implicit = true
	default:
		return nil, fmt.Errorf("pds: SMTP URL: scheme %q is not smtp or smtps", u.Scheme)
	}
	m.host = u.Hostname()
	if m.host == "" {
		return nil, errors.New("pds: SMTP URL: no host")
	}
	port := u.Port()
	if port == "" {
		port = "587"
		if m.implicit {
			port = "465"
		}
	}
	m.addr = net.JoinHostPort(m.host, port)
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	if from == "" {
		from = "noreply@" + hostname
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("pds: email sender %q: %w", from, err)
	}
	m.from = addr.String()
	if m.helo == "" {
		m.helo = "localhost"
	}
	return m, nil
}

func (m *smtpMailer) send(ctx context.Context, msg mailMessage) error {
	fromAddr, err := mail.ParseAddress(m.from)
	if err != nil {
		return err
	}
	if err := checkHeaderValue(msg.To); err != nil {
		return err
	}
	if err := checkHeaderValue(msg.Subject); err != nil {
		return err
	}
	body, err := formatMessage(m.from, msg, time.Now())
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tlsConf := &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
	if m.implicit {
		conn = tls.Client(conn, tlsConf)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	defer c.Close()
	if err := c.Hello(m.helo); err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	if !m.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return fmt.Errorf("pds: smtp: %w", err)
			}
		}
	}
	if m.user != "" {
		// PlainAuth refuses to send the password over a connection without
		// TLS, except to localhost.
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return fmt.Errorf("pds: smtp: %w", err)
		}
	}
	if err := c.Mail(fromAddr.Address); err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	if err := c.Rcpt(msg.To); err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("pds: smtp: %w", err)
	}
	return c.Quit()
}

// formatMessage writes msg as an RFC 5322 message with a plain-text body.
func formatMessage(from string, msg mailMessage, now time.Time) ([]byte, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	domain := "localhost"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			domain = d
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", msg.To)
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", msg.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	for _, line := range strings.Split(msg.Text, "\n") {
		b.WriteString(strings.TrimRight(line, "\r"))
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

func checkHeaderValue(v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return errors.New("pds: email header holds a line break")
	}
	return nil
}

// validEmail reports whether s is a plain email address the PDS accepts
// for an account: "local@domain" with a dotted domain, no display name,
// no line breaks, at most maxEmailLength bytes.
func validEmail(s string) bool {
	if s == "" || len(s) > maxEmailLength || strings.ContainsAny(s, "\r\n \t<>") {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.Contains(domain, "@") {
		return false
	}
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-1 && !strings.Contains(domain, "..")
}

// Email token messages. The token is what the user types back into the
// client; the reference PDS's client screens ask for exactly that code.
func (s *Server) sendTokenEmail(ctx context.Context, to, purpose, token string) error {
	var subject, text string
	site := s.cfg.Hostname
	switch purpose {
	case "confirm_email":
		subject = "Confirm your email address"
		text = "To confirm this email address for your account on " + site + ", enter this code:\n\n    " + token +
			"\n\nIf you did not ask for this, you can ignore this message."
	case "update_email":
		subject = "Change your email address"
		text = "Someone asked to change the email address of your account on " + site + ". To allow it, enter this code:\n\n    " + token +
			"\n\nIf it was not you, do not share the code, and consider changing your password."
	case "reset_password":
		subject = "Reset your password"
		text = "To choose a new password for your account on " + site + ", enter this code:\n\n    " + token +
			"\n\nIf you did not ask for a password reset, you can ignore this message."
	case "delete_account":
		subject = "Delete your account"
		text = "Someone asked to delete your account on " + site + " for good. To confirm, enter this code:\n\n    " + token +
			"\n\nIf it was not you, do not share the code, and change your password."
	case "plc_operation":
		subject = "Confirm a change to your identity"
		text = "Someone asked to sign a change to the DID document of your account on " + site +
			" (used to move the account to another server or change its keys). To allow it, enter this code:\n\n    " + token +
			"\n\nIf it was not you, do not share the code, and change your password."
	default:
		return fmt.Errorf("pds: unknown email purpose %q", purpose)
	}
	return s.acct().mailer().send(ctx, mailMessage{To: to, Subject: subject, Text: text, Purpose: purpose, Token: token})
}
