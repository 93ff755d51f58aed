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

// maxAccountInfos bounds the DIDs of one getAccountInfos call.
const maxAccountInfos = 100

// registerAdmin registers the com.atproto.admin.* methods the PDS serves,
// all behind the admin password (HTTP basic auth). Record and blob
// takedowns, invite listings and per-account invite switches are not
// served: the reference keeps state for them that Welkin does not.
func (s *Server) registerAdmin() {
	x := s.xrpc
	xrpc.HandleQuery(x, atproto.AdminGetAccountInfoNSID, s.adminGetAccountInfo)
	xrpc.HandleQuery(x, atproto.AdminGetAccountInfosNSID, s.adminGetAccountInfos)
	xrpc.HandleQuery(x, atproto.AdminGetSubjectStatusNSID, s.adminGetSubjectStatus)
	xrpc.HandleProcedure(x, atproto.AdminUpdateSubjectStatusNSID, s.adminUpdateSubjectStatus)
	xrpc.HandleProcedure(x, atproto.AdminDeleteAccountNSID, noOutputProc(s.adminDeleteAccount))
	xrpc.HandleProcedure(x, atproto.AdminUpdateAccountHandleNSID, noOutputProc(s.adminUpdateAccountHandle))
	xrpc.HandleProcedure(x, atproto.AdminUpdateAccountEmailNSID, noOutputProc(s.adminUpdateAccountEmail))
	xrpc.HandleProcedure(x, atproto.AdminUpdateAccountPasswordNSID, noOutputProc(s.adminUpdateAccountPassword))
	xrpc.HandleProcedure(x, atproto.AdminDisableInviteCodesNSID, noOutputProc(s.adminDisableInviteCodes))
	xrpc.HandleProcedure(x, atproto.AdminSendEmailNSID, s.adminSendEmail)
}

// adminAccount loads the account did names, for the admin methods.
func (s *Server) adminAccount(ctx context.Context, did string) (*store.Account, error) {
	d, err := syntax.ParseDID(did)
	if err != nil {
		return nil, xrpc.InvalidRequest("invalid did")
	}
	acct, err := s.accounts.AccountByDID(ctx, d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, xrpc.Errorf(http.StatusBadRequest, "NotFound", "Account not found")
	}
	return acct, err
}

// accountView renders an account as com.atproto.admin.defs#accountView.
func (s *Server) accountView(ctx context.Context, acct *store.Account) (*atproto.AdminDefs_AccountView, error) {
	v := &atproto.AdminDefs_AccountView{
		Did:       string(acct.DID),
		Handle:    handleOf(acct),
		IndexedAt: syntax.DatetimeFromTime(acct.CreatedAt).String(),
		Invites:   []*atproto.ServerDefs_InviteCode{},
	}
	if acct.Email != "" {
		e := acct.Email
		v.Email = &e
	}
	if acct.EmailConfirmedAt != nil {
		t := syntax.DatetimeFromTime(*acct.EmailConfirmedAt).String()
		v.EmailConfirmedAt = &t
	}
	if acct.DeactivatedAt != nil && acct.Status == store.StatusDeactivated {
		t := syntax.DatetimeFromTime(*acct.DeactivatedAt).String()
		v.DeactivatedAt = &t
	}
	codes, err := s.accounts.InviteCodesFor(ctx, string(acct.DID))
	if err != nil {
		return nil, err
	}
	for _, c := range codes {
		v.Invites = append(v.Invites, inviteCodeView(c))
	}
	return v, nil
}

// adminGetAccountInfo is com.atproto.admin.getAccountInfo.
func (s *Server) adminGetAccountInfo(ctx context.Context, p *atproto.AdminGetAccountInfo_Params) (*atproto.AdminGetAccountInfo_Output, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	acct, err := s.adminAccount(ctx, p.Did)
	if err != nil {
		return nil, err
	}
	return s.accountView(ctx, acct)
}

// adminGetAccountInfos is com.atproto.admin.getAccountInfos: unknown DIDs
// are left out.
func (s *Server) adminGetAccountInfos(ctx context.Context, p *atproto.AdminGetAccountInfos_Params) (*atproto.AdminGetAccountInfos_Output, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if len(p.Dids) > maxAccountInfos {
		return nil, xrpc.InvalidRequest("too many dids")
	}
	out := &atproto.AdminGetAccountInfos_Output{Infos: []*atproto.AdminDefs_AccountView{}}
	seen := map[string]bool{}
	for _, did := range p.Dids {
		if seen[did] {
			continue
		}
		seen[did] = true
		acct, err := s.adminAccount(ctx, did)
		var xe *xrpc.Error
		if errors.As(err, &xe) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := s.accountView(ctx, acct)
		if err != nil {
			return nil, err
		}
		out.Infos = append(out.Infos, v)
	}
	return out, nil
}

// adminGetSubjectStatus is com.atproto.admin.getSubjectStatus, for
// accounts.
func (s *Server) adminGetSubjectStatus(ctx context.Context, p *atproto.AdminGetSubjectStatus_Params) (*atproto.AdminGetSubjectStatus_Output, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	switch {
	case p.Blob != "" || p.Uri != "":
		// Record and blob takedowns are not kept.
		return nil, xrpc.Errorf(http.StatusBadRequest, "NotFound", "Subject not found")
	case p.Did == "":
		return nil, xrpc.InvalidRequest("No provided subject")
	}
	acct, err := s.adminAccount(ctx, p.Did)
	var xe *xrpc.Error
	if errors.As(err, &xe) {
		return nil, xrpc.Errorf(http.StatusBadRequest, "NotFound", "Subject not found")
	}
	if err != nil {
		return nil, err
	}
	return &atproto.AdminGetSubjectStatus_Output{
		Subject:     &atproto.AdminGetSubjectStatus_Output_Subject{AdminDefs_RepoRef: &atproto.AdminDefs_RepoRef{Did: string(acct.DID)}},
		Takedown:    takedownAttr(acct),
		Deactivated: &atproto.AdminDefs_StatusAttr{Applied: acct.Status == store.StatusDeactivated},
	}, nil
}

func takedownAttr(acct *store.Account) *atproto.AdminDefs_StatusAttr {
	a := &atproto.AdminDefs_StatusAttr{Applied: acct.Status == store.StatusTakendown}
	if a.Applied && acct.TakedownRef != "" {
		ref := acct.TakedownRef
		a.Ref = &ref
	}
	return a
}

// adminUpdateSubjectStatus is com.atproto.admin.updateSubjectStatus for
// accounts: takedown (which ends the account's sessions) and its reversal,
// deactivation and activation, each announced with an #account event.
func (s *Server) adminUpdateSubjectStatus(ctx context.Context, in *atproto.AdminUpdateSubjectStatus_Input) (*atproto.AdminUpdateSubjectStatus_Output, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if in == nil || in.Subject == nil {
		return nil, xrpc.InvalidRequest("Input is required")
	}
	if in.Takedown != nil && in.Takedown.Applied && in.Deactivated != nil && !in.Deactivated.Applied {
		return nil, xrpc.InvalidRequest("Cannot activate and takedown an account at the same time")
	}
	ref := in.Subject.AdminDefs_RepoRef
	if ref == nil {
		return nil, xrpc.InvalidRequest("Invalid subject: only accounts (com.atproto.admin.defs#repoRef) are supported")
	}
	acct, err := s.adminAccount(ctx, ref.Did)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	if in.Takedown != nil {
		if in.Takedown.Applied {
			tref := deref(in.Takedown.Ref)
			if tref == "" {
				tref = syntax.DatetimeFromTime(now).String()
			}
			if err := s.accounts.SetTakedown(ctx, acct.DID, tref); err != nil {
				return nil, err
			}
			if err := s.accounts.RefreshStore().RevokeDID(ctx, acct.DID); err != nil {
				return nil, err
			}
		} else if acct.Status == store.StatusTakendown {
			if err := s.accounts.SetStatus(ctx, acct.DID, store.StatusActive, now, nil); err != nil {
				return nil, err
			}
		}
	}
	if in.Deactivated != nil {
		if in.Deactivated.Applied {
			if err := s.accounts.SetStatus(ctx, acct.DID, store.StatusDeactivated, now, nil); err != nil {
				return nil, err
			}
		} else {
			cur, err := s.adminAccount(ctx, ref.Did)
			if err != nil {
				return nil, err
			}
			if cur.Status == store.StatusDeactivated {
				if err := s.activate(ctx, cur); err != nil {
					return nil, err
				}
			}
		}
	}
	cur, err := s.adminAccount(ctx, ref.Did)
	if err != nil {
		return nil, err
	}
	if err := s.emitAccountStatus(ctx, cur); err != nil {
		return nil, err
	}
	return &atproto.AdminUpdateSubjectStatus_Output{
		Subject:  &atproto.AdminUpdateSubjectStatus_Output_Subject{AdminDefs_RepoRef: &atproto.AdminDefs_RepoRef{Did: string(cur.DID)}},
		Takedown: in.Takedown,
	}, nil
}

// adminDeleteAccount is com.atproto.admin.deleteAccount. Deleting an
// unknown account still clears whatever data is left for it.
func (s *Server) adminDeleteAccount(ctx context.Context, in *atproto.AdminDeleteAccount_Input) error {
	if err := s.requireAdmin(ctx); err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	did, err := syntax.ParseDID(in.Did)
	if err != nil {
		return xrpc.InvalidRequest("invalid did")
	}
	return s.deleteAccountData(ctx, did)
}

// adminUpdateAccountHandle is com.atproto.admin.updateAccountHandle:
// updateHandle without the reserved-name rule.
func (s *Server) adminUpdateAccountHandle(ctx context.Context, in *atproto.AdminUpdateAccountHandle_Input) error {
	if err := s.requireAdmin(ctx); err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	acct, err := s.adminAccount(ctx, in.Did)
	if err != nil {
		return xrpc.InvalidRequest("Account not found")
	}
	return s.changeHandle(ctx, acct, in.Handle, true)
}

// adminUpdateAccountEmail is com.atproto.admin.updateAccountEmail; the
// account is a handle or a DID.
func (s *Server) adminUpdateAccountEmail(ctx context.Context, in *atproto.AdminUpdateAccountEmail_Input) error {
	if err := s.requireAdmin(ctx); err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	missing := xrpc.InvalidRequest("Account does not exist: " + in.Account)
	id, err := syntax.ParseAtIdentifier(in.Account)
	if err != nil {
		return missing
	}
	var acct *store.Account
	if did, derr := id.AsDID(); derr == nil {
		acct, err = s.accounts.AccountByDID(ctx, did)
	} else if h, herr := id.AsHandle(); herr == nil {
		acct, err = s.accounts.AccountByHandle(ctx, h.Normalize())
	} else {
		return missing
	}
	if errors.Is(err, store.ErrNotFound) {
		return missing
	}
	if err != nil {
		return err
	}
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if !validEmail(email) {
		return xrpc.InvalidRequest("This email address is not supported, please use a different email.")
	}
	return s.setEmail(ctx, acct.DID, email)
}

// adminUpdateAccountPassword is com.atproto.admin.updateAccountPassword;
// the account's sessions end.
func (s *Server) adminUpdateAccountPassword(ctx context.Context, in *atproto.AdminUpdateAccountPassword_Input) error {
	if err := s.requireAdmin(ctx); err != nil {
		return err
	}
	if in == nil {
		return xrpc.InvalidRequest("Input is required")
	}
	if in.Password == "" || len(in.Password) > newPasswordMaxLength {
		return xrpc.InvalidRequest("Invalid password length.")
	}
	did, err := syntax.ParseDID(in.Did)
	if err != nil {
		return xrpc.InvalidRequest("invalid did")
	}
	return s.setPassword(ctx, did, in.Password)
}

// adminDisableInviteCodes is com.atproto.admin.disableInviteCodes.
func (s *Server) adminDisableInviteCodes(ctx context.Context, in *atproto.AdminDisableInviteCodes_Input) error {
	if err := s.requireAdmin(ctx); err != nil {
		return err
	}
	if in == nil {
		return nil
	}
	for _, a := range in.Accounts {
		if a == inviteAdmin {
			return xrpc.InvalidRequest("cannot disable admin invite codes")
		}
	}
	return s.accounts.DisableInviteCodes(ctx, in.Codes, in.Accounts)
}

// adminSendEmail is com.atproto.admin.sendEmail: a message from the
// operator to an account holder.
func (s *Server) adminSendEmail(ctx context.Context, in *atproto.AdminSendEmail_Input) (*atproto.AdminSendEmail_Output, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, xrpc.InvalidRequest("Input is required")
	}
	acct, err := s.adminAccount(ctx, in.RecipientDid)
	if err != nil {
		return nil, xrpc.InvalidRequest("Recipient not found")
	}
	if acct.Email == "" {
		return nil, xrpc.InvalidRequest("account does not have an email address")
	}
	subject := deref(in.Subject)
	if subject == "" {
		subject = "Message from " + s.cfg.Hostname
	}
	subject = strings.Join(strings.Fields(subject), " ")
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout+5*time.Second)
	defer cancel()
	if err := s.acct().mailer().send(ctx, mailMessage{To: acct.Email, Subject: subject, Text: in.Content, Purpose: "admin"}); err != nil {
		return nil, err
	}
	return &atproto.AdminSendEmail_Output{Sent: true}, nil
}
