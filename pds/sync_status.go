package pds

import (
	"context"
	"errors"
	"sync"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/pds/store"
)

// listReposParallel bounds how many account stores one listRepos page reads
// at once (each read may open an account's database).
const listReposParallel = 16

// statusPtr is status as an optional field: nil for "" (active).
func statusPtr(status string) *string {
	if status == "" {
		return nil
	}
	return &status
}

// syncGetRepoStatus serves com.atproto.sync.getRepoStatus. Every hosted
// account has a status, so only unknown accounts are refused; the rev is
// given for active accounts only, as the reference PDS does.
func (s *Server) syncGetRepoStatus(ctx context.Context, p *atproto.SyncGetRepoStatus_Params) (*atproto.SyncGetRepoStatus_Output, error) {
	did, err := parseDIDParam(p.Did)
	if err != nil {
		return nil, err
	}
	acct, err := s.accounts.AccountByDID(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, repoNotFound(string(did))
	}
	if err != nil {
		return nil, err
	}
	active, status := accountStatus(acct)
	out := &atproto.SyncGetRepoStatus_Output{Did: string(did), Active: active, Status: statusPtr(status)}
	if active {
		_, rev, ok, err := s.repoHead(ctx, did)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Rev = &rev
		}
	}
	return out, nil
}

// syncListRepos serves com.atproto.sync.listRepos: the hosted accounts in
// the order they were created, with their current commit and status.
// Accounts without a repository yet (being created) are left out, as the
// reference PDS leaves them out.
func (s *Server) syncListRepos(ctx context.Context, p *atproto.SyncListRepos_Params) (*atproto.SyncListRepos_Output, error) {
	limit := store.DefaultListLimit
	if p.Limit != nil {
		limit = int(*p.Limit)
	}
	if limit < 1 || limit > store.MaxListLimit {
		return nil, xrpc.InvalidRequest("limit must be between 1 and 1000")
	}
	accts, next, err := s.accounts.ListAccounts(ctx, p.Cursor, limit)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, xrpc.InvalidRequest("Malformed cursor")
	}
	if err != nil {
		return nil, err
	}
	repos := make([]*atproto.SyncListRepos_Repo, len(accts))
	errs := make([]error, len(accts))
	sem := make(chan struct{}, listReposParallel)
	var wg sync.WaitGroup
	for i := range accts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a := &accts[i]
			head, rev, ok, err := s.repoHead(ctx, a.DID)
			if err != nil || !ok {
				errs[i] = err
				return
			}
			active, status := accountStatus(a)
			repos[i] = &atproto.SyncListRepos_Repo{Did: string(a.DID), Head: head.String(), Rev: rev,
				Active: &active, Status: statusPtr(status)}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := &atproto.SyncListRepos_Output{Repos: make([]*atproto.SyncListRepos_Repo, 0, len(repos))}
	for _, r := range repos {
		if r != nil {
			out.Repos = append(out.Repos, r)
		}
	}
	if next != "" {
		out.Cursor = &next
	}
	return out, nil
}
