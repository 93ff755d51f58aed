package pds

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// emailTokenTTL is how long an emailed token stays valid (the reference
// PDS: 15 minutes).
const emailTokenTTL = 15 * time.Minute

// maxTokenAttempts bounds the retries when a fresh random token happens to
// be held by another account.
const maxTokenAttempts = 5

// issueEmailToken makes a new token for did and purpose (replacing any
// earlier one) and emails it to the account's address.
func (s *Server) issueEmailToken(ctx context.Context, acct *store.Account, purpose store.TokenPurpose, to string) error {
	if to == "" {
		return xrpc.InvalidRequest("account does not have an email address")
	}
	var token string
	for i := 0; ; i++ {
		token = store.NewEmailToken()
		err := s.accounts.PutEmailToken(ctx, acct.DID, purpose, token, s.cfg.Now().Add(emailTokenTTL))
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrTokenInUse) || i+1 >= maxTokenAttempts {
			return err
		}
	}
	return s.sendTokenEmail(ctx, to, string(purpose), token)
}

// useEmailToken checks and consumes the token of did for purpose.
func (s *Server) useEmailToken(ctx context.Context, did syntax.DID, purpose store.TokenPurpose, token string) error {
	return emailTokenError(s.accounts.UseEmailToken(ctx, did, purpose, strings.ToUpper(strings.TrimSpace(token)), s.cfg.Now()))
}

// emailTokenError maps the store's token errors to the reference's
// answers.
func emailTokenError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrInvalidToken):
		return xrpc.Errorf(http.StatusBadRequest, "InvalidToken", "Token is invalid")
	case errors.Is(err, store.ErrExpiredToken):
		return xrpc.Errorf(http.StatusBadRequest, "ExpiredToken", "Token is expired")
	default:
		return err
	}
}

// requestEmailConfirmation is com.atproto.server.requestEmailConfirmation.
func (s *Server) requestEmailConfirmation(ctx context.Context) error {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	if err := s.chargeDID(c.DID, s.acct().limits.email...); err != nil {
		return err
	}
	return s.issueEmailToken(ctx, c.Account, store.PurposeConfirmEmail, c.Account.Email)
}

// confirmEmail is com.atproto.server.confirmEmail.
func (s *Server) confirmEmail(ctx context.Context, in *atproto.ServerConfirmEmail_Input) error {
	c, err := s.requireAccess(ctx, authOpts{level: anyAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	if !strings.EqualFold(c.Account.Email, strings.TrimSpace(in.Email)) || c.Account.Email == "" {
		return xrpc.Errorf(http.StatusBadRequest, "InvalidEmail", "invalid email")
	}
	if err := s.useEmailToken(ctx, c.DID, store.PurposeConfirmEmail, in.Token); err != nil {
		return err
	}
	return s.accounts.ConfirmEmail(ctx, c.DID, s.cfg.Now().UTC())
}

// requestEmailUpdate is com.atproto.server.requestEmailUpdate: a token is
// needed (and sent to the current address) only when that address has
// been confirmed.
func (s *Server) requestEmailUpdate(ctx context.Context) (*atproto.ServerRequestEmailUpdate_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return nil, err
	}
	if err := s.chargeDID(c.DID, s.acct().limits.email...); err != nil {
		return nil, err
	}
	if c.Account.Email == "" {
		return nil, xrpc.InvalidRequest("account does not have an email address")
	}
	required := c.Account.EmailConfirmedAt != nil
	if required {
		if err := s.issueEmailToken(ctx, c.Account, store.PurposeUpdateEmail, c.Account.Email); err != nil {
			return nil, err
		}
	}
	return &atproto.ServerRequestEmailUpdate_Output{TokenRequired: required}, nil
}

// updateEmail is com.atproto.server.updateEmail.
func (s *Server) updateEmail(ctx context.Context, in *atproto.ServerUpdateEmail_Input) error {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess, allowDeactivated: true})
	if err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if !validEmail(email) {
		return xrpc.InvalidRequest("This email address is not supported, please use a different email.")
	}
	if c.Account.EmailConfirmedAt != nil {
		if in.Token == nil || *in.Token == "" {
			return xrpc.Errorf(http.StatusBadRequest, "TokenRequired", "confirmation token required")
		}
	}
	if in.Token != nil && *in.Token != "" {
		if err := s.useEmailToken(ctx, c.DID, store.PurposeUpdateEmail, *in.Token); err != nil {
			return err
		}
	}
	return s.setEmail(ctx, c.DID, email)
}

// setEmail changes the account's address (unconfirmed from then on).
func (s *Server) setEmail(ctx context.Context, did syntax.DID, email string) error {
	err := s.accounts.UpdateEmail(ctx, did, email)
	switch {
	case errors.Is(err, store.ErrEmailTaken):
		return xrpc.InvalidRequest("This email address is already in use, please use a different email.")
	case errors.Is(err, store.ErrNotFound):
		return xrpc.InvalidRequest("account not found")
	}
	return err
}

// requestPasswordReset is com.atproto.server.requestPasswordReset. The
// answer does not depend on whether the address belongs to an account
// only in that an unknown address is an error, as with the reference.
func (s *Server) requestPasswordReset(ctx context.Context, in *atproto.ServerRequestPasswordReset_Input) error {
	if err := s.chargeIP(ctx, s.acct().limits.resetRequest...); err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	acct, err := s.accounts.AccountByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Email == "") {
		return xrpc.InvalidRequest("account does not have an email address")
	}
	if err != nil {
		return err
	}
	return s.issueEmailToken(ctx, acct, store.PurposeResetPassword, acct.Email)
}

// resetPassword is com.atproto.server.resetPassword: the token alone names
// the account. Every session of the account ends.
func (s *Server) resetPassword(ctx context.Context, in *atproto.ServerResetPassword_Input) error {
	if err := s.chargeIP(ctx, s.acct().limits.tokenUse); err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	if len(in.Password) > newPasswordMaxLength || in.Password == "" {
		return xrpc.InvalidRequest("Invalid password length.")
	}
	token := strings.ToUpper(strings.TrimSpace(in.Token))
	did, err := s.accounts.DIDForEmailToken(ctx, store.PurposeResetPassword, token, s.cfg.Now())
	if err != nil {
		return emailTokenError(err)
	}
	if err := s.useEmailToken(ctx, did, store.PurposeResetPassword, token); err != nil {
		return err
	}
	return s.setPassword(ctx, did, in.Password)
}

// setPassword replaces the account's password and ends its sessions.
func (s *Server) setPassword(ctx context.Context, did syntax.DID, password string) error {
	hash, err := store.HashPassword(password)
	if err != nil {
		return err
	}
	if err := s.accounts.SetPasswordHash(ctx, did, hash); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return xrpc.InvalidRequest("account not found")
		}
		return err
	}
	return s.accounts.RefreshStore().RevokeDID(ctx, did)
}
