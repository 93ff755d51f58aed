package pds

import (
	"context"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// Bounds on one createInviteCode(s) call: a larger request is almost
// certainly a mistake, and each code is a row.
const (
	maxInviteUses       = 100_000
	maxInviteCodeCount  = 1000
	maxInviteForAccount = 1000
)

// inviteAdmin is the owner and creator of codes made through the admin
// API, as the reference names it.
const inviteAdmin = "admin"

// createInviteCode is com.atproto.server.createInviteCode (admin).
func (s *Server) createInviteCode(ctx context.Context, in *atproto.ServerCreateInviteCode_Input) (*atproto.ServerCreateInviteCode_Output, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, xrpc.InvalidRequest("Input is required")
	}
	if in.UseCount < 1 || in.UseCount > maxInviteUses {
		return nil, xrpc.InvalidRequest("useCount must be at least 1")
	}
	forAccount := inviteAdmin
	if in.ForAccount != nil && *in.ForAccount != "" {
		forAccount = *in.ForAccount
	}
	code := store.NewInviteCode(s.cfg.Hostname)
	err := s.accounts.CreateInviteCodes(ctx, []store.InviteCode{{
		Code: code, Available: int(in.UseCount), ForAccount: forAccount,
		CreatedBy: inviteAdmin, CreatedAt: s.cfg.Now().UTC(),
	}})
	if err != nil {
		return nil, err
	}
	return &atproto.ServerCreateInviteCode_Output{Code: code}, nil
}

// createInviteCodes is com.atproto.server.createInviteCodes (admin):
// codeCount codes for each account of forAccounts ("admin" when none).
func (s *Server) createInviteCodes(ctx context.Context, in *atproto.ServerCreateInviteCodes_Input) (*atproto.ServerCreateInviteCodes_Output, error) {
	if err := s.requireAdmin(ctx); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, xrpc.InvalidRequest("Input is required")
	}
	if in.UseCount < 1 || in.UseCount > maxInviteUses {
		return nil, xrpc.InvalidRequest("useCount must be at least 1")
	}
	count := in.CodeCount
	if count == 0 {
		count = 1
	}
	if count < 1 || count > maxInviteCodeCount {
		return nil, xrpc.InvalidRequest("codeCount must be between 1 and 1000")
	}
	accounts := in.ForAccounts
	if len(accounts) == 0 {
		accounts = []string{inviteAdmin}
	}
	if len(accounts) > maxInviteForAccount {
		return nil, xrpc.InvalidRequest("too many accounts")
	}
	now := s.cfg.Now().UTC()
	var rows []store.InviteCode
	out := &atproto.ServerCreateInviteCodes_Output{Codes: make([]*atproto.ServerCreateInviteCodes_AccountCodes, 0, len(accounts))}
	for _, acct := range accounts {
		ac := &atproto.ServerCreateInviteCodes_AccountCodes{Account: acct, Codes: make([]string, 0, count)}
		for range count {
			code := store.NewInviteCode(s.cfg.Hostname)
			ac.Codes = append(ac.Codes, code)
			rows = append(rows, store.InviteCode{
				Code: code, Available: int(in.UseCount), ForAccount: acct,
				CreatedBy: inviteAdmin, CreatedAt: now,
			})
		}
		out.Codes = append(out.Codes, ac)
	}
	if err := s.accounts.CreateInviteCodes(ctx, rows); err != nil {
		return nil, err
	}
	return out, nil
}

// getAccountInviteCodes is com.atproto.server.getAccountInviteCodes: the
// codes made for the caller, without disabled ones and, unless
// includeUsed, without used-up ones. Welkin does not hand out codes to
// accounts periodically, so createAvailable creates nothing.
func (s *Server) getAccountInviteCodes(ctx context.Context, p *atproto.ServerGetAccountInviteCodes_Params) (*atproto.ServerGetAccountInviteCodes_Output, error) {
	c, err := s.requireAccess(ctx, authOpts{level: fullAccess})
	if err != nil {
		return nil, err
	}
	includeUsed := p == nil || p.IncludeUsed == nil || *p.IncludeUsed
	codes, err := s.accounts.InviteCodesFor(ctx, string(c.DID))
	if err != nil {
		return nil, err
	}
	out := &atproto.ServerGetAccountInviteCodes_Output{Codes: []*atproto.ServerDefs_InviteCode{}}
	for _, code := range codes {
		if code.Disabled || (!includeUsed && len(code.Uses) >= code.Available) {
			continue
		}
		out.Codes = append(out.Codes, inviteCodeView(code))
	}
	return out, nil
}

// inviteCodeView renders a code as com.atproto.server.defs#inviteCode.
func inviteCodeView(c store.InviteCode) *atproto.ServerDefs_InviteCode {
	v := &atproto.ServerDefs_InviteCode{
		Code:       c.Code,
		Available:  int64(c.Available),
		Disabled:   c.Disabled,
		ForAccount: c.ForAccount,
		CreatedBy:  c.CreatedBy,
		CreatedAt:  syntax.DatetimeFromTime(c.CreatedAt).String(),
		Uses:       make([]*atproto.ServerDefs_InviteCodeUse, 0, len(c.Uses)),
	}
	for _, u := range c.Uses {
		v.Uses = append(v.Uses, &atproto.ServerDefs_InviteCodeUse{
			UsedBy: string(u.UsedBy),
			UsedAt: syntax.DatetimeFromTime(u.UsedAt).String(),
		})
	}
	return v
}
