package pds

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// App passwords are four groups of four characters of lower-case base32,
// "abcd-efgh-2345-ijkl", as the reference PDS makes them: 80 random bits.
const (
	appPasswordGroups     = 4
	appPasswordGroupLen   = 4
	appPasswordLen        = appPasswordGroups*appPasswordGroupLen + appPasswordGroups - 1
	appPasswordAlphabet   = "abcdefghijklmnopqrstuvwxyz234567"
	appPasswordHashScheme = "$sha256$"
	// maxAppPasswordName bounds the name an app password is listed under.
	maxAppPasswordName = 256
)

// newAppPassword returns a fresh random app password.
func newAppPassword() (string, error) {
	raw := make([]byte, appPasswordGroups*appPasswordGroupLen)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, c := range raw {
		if i > 0 && i%appPasswordGroupLen == 0 {
			b.WriteByte('-')
		}
		// 256 is a multiple of 32, so the modulo keeps the distribution
		// uniform.
		b.WriteByte(appPasswordAlphabet[int(c)%len(appPasswordAlphabet)])
	}
	return b.String(), nil
}

// looksLikeAppPassword reports whether s has the form of an app password,
// so that other strings skip the app password check.
func looksLikeAppPassword(s string) bool {
	if len(s) != appPasswordLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (i+1)%(appPasswordGroupLen+1) == 0 {
			if c != '-' {
				return false
			}
			continue
		}
		if !strings.ContainsRune(appPasswordAlphabet, rune(c)) {
			return false
		}
	}
	return true
}

// appPasswordHash is the stored form of an app password. App passwords
// are 80-bit random secrets, not user-chosen, so a memory-hard KDF adds
// nothing against guessing; a SHA-256 bound to the account lets a login
// compare against all of an account's app passwords at the cost of one
// hash.
func appPasswordHash(did syntax.DID, password string) string {
	sum := sha256.Sum256([]byte("welkin app password\x00" + string(did) + "\x00" + password))
	return appPasswordHashScheme + base64.RawStdEncoding.EncodeToString(sum[:])
}

// checkAppPassword returns the app password of did that password is, or
// nil. Hashes in the account-password form (as an import could bring) are
// checked with that scheme.
func (s *Server) checkAppPassword(ctx context.Context, did syntax.DID, password string) (*store.AppPassword, error) {
	if !looksLikeAppPassword(strings.ToLower(password)) {
		return nil, nil
	}
	password = strings.ToLower(password)
	aps, err := s.accounts.ListAppPasswords(ctx, did)
	if err != nil {
		return nil, err
	}
	want := appPasswordHash(did, password)
	var found *store.AppPassword
	for i := range aps {
		ap := &aps[i]
		var ok bool
		if strings.HasPrefix(ap.Hash, appPasswordHashScheme) {
			ok = subtle.ConstantTimeCompare([]byte(ap.Hash), []byte(want)) == 1
		} else {
			ok, _ = store.VerifyPassword(ap.Hash, password)
		}
		if ok && found == nil {
			found = ap
		}
	}
	return found, nil
}

// createAppPassword is com.atproto.server.createAppPassword. Only a full
// (account password) session may create app passwords.
func (s *Server) createAppPassword(ctx context.Context, in *atproto.ServerCreateAppPassword_Input) (*atproto.ServerCreateAppPassword_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess})
	if err != nil {
		return nil, err
	}
	if in == nil || strings.TrimSpace(in.Name) == "" {
		return nil, xrpc.InvalidRequest("an app password needs a name")
	}
	if len(in.Name) > maxAppPasswordName {
		return nil, xrpc.InvalidRequest("app password name is too long")
	}
	privileged := in.Privileged != nil && *in.Privileged
	pw, err := newAppPassword()
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	err = s.accounts.CreateAppPassword(ctx, c.DID, store.AppPassword{
		Name:       in.Name,
		Hash:       appPasswordHash(c.DID, pw),
		Privileged: privileged,
		CreatedAt:  now,
	})
	if errors.Is(err, store.ErrDuplicateName) {
		return nil, xrpc.InvalidRequest("could not create app-specific password")
	}
	if err != nil {
		return nil, err
	}
	return &atproto.ServerCreateAppPassword_Output{
		Name:       in.Name,
		Password:   pw,
		CreatedAt:  syntax.DatetimeFromTime(now).String(),
		Privileged: &privileged,
	}, nil
}

// listAppPasswords is com.atproto.server.listAppPasswords, newest first
// as the reference lists them.
func (s *Server) listAppPasswords(ctx context.Context) (*atproto.ServerListAppPasswords_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess})
	if err != nil {
		return nil, err
	}
	aps, err := s.accounts.ListAppPasswords(ctx, c.DID)
	if err != nil {
		return nil, err
	}
	slices.Reverse(aps)
	out := &atproto.ServerListAppPasswords_Output{Passwords: make([]*atproto.ServerListAppPasswords_AppPassword, 0, len(aps))}
	for _, ap := range aps {
		priv := ap.Privileged
		out.Passwords = append(out.Passwords, &atproto.ServerListAppPasswords_AppPassword{
			Name:       ap.Name,
			CreatedAt:  syntax.DatetimeFromTime(ap.CreatedAt).String(),
			Privileged: &priv,
		})
	}
	return out, nil
}

// revokeAppPassword is com.atproto.server.revokeAppPassword. Revoking an
// unknown name is not an error. Logins with the app password stop at
// once. Sessions already made with it are not ended: the refresh token
// store does not record which app password a session came from, so they
// last until their refresh token expires or is revoked.
func (s *Server) revokeAppPassword(ctx context.Context, in *atproto.ServerRevokeAppPassword_Input) error {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess})
	if err != nil {
		return err
	}
	if in == nil || in.Name == "" {
		return xrpc.InvalidRequest("name is required")
	}
	err = s.accounts.DeleteAppPassword(ctx, c.DID, in.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
