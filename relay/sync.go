package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/relay/store"
)

// describeTimeout bounds the describeServer check of requestCrawl.
const describeTimeout = 10 * time.Second

// registerSync registers the com.atproto.sync.* methods; subscribeRepos
// is mounted by server.go on the event log.
func (s *Server) registerSync() {
	xrpc.HandleQuery(s.xrpc, atproto.SyncListReposNSID, s.syncListRepos)
	xrpc.HandleQuery(s.xrpc, atproto.SyncGetRepoStatusNSID, s.syncGetRepoStatus)
	xrpc.HandleQuery(s.xrpc, atproto.SyncGetLatestCommitNSID, s.syncGetLatestCommit)
	xrpc.HandleQuery(s.xrpc, atproto.SyncListHostsNSID, s.syncListHosts)
	xrpc.HandleQuery(s.xrpc, atproto.SyncGetHostStatusNSID, s.syncGetHostStatus)
	xrpc.HandleProcedure(s.xrpc, atproto.SyncRequestCrawlNSID, s.syncRequestCrawl)
}

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func (s *Server) lookupAccount(ctx context.Context, param string) (store.Account, error) {
	did, err := syntax.ParseDID(param)
	if err != nil {
		return store.Account{}, xrpc.InvalidRequest(fmt.Sprintf("did: %v", err))
	}
	a, err := s.st.Account(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return a, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "Could not find repo for DID: %s", did)
	}
	return a, err
}

func (s *Server) syncGetRepoStatus(ctx context.Context, p *atproto.SyncGetRepoStatus_Params) (*atproto.SyncGetRepoStatus_Output, error) {
	a, err := s.lookupAccount(ctx, p.Did)
	if err != nil {
		return nil, err
	}
	out := &atproto.SyncGetRepoStatus_Output{Did: string(a.DID), Active: a.Active()}
	switch {
	case !a.Active():
		out.Status = optString(a.HostingStatus())
	case a.Desync:
		out.Status = optString("desynchronized")
	}
	if a.Active() {
		out.Rev = optString(a.Rev)
	}
	return out, nil
}

func (s *Server) syncGetLatestCommit(ctx context.Context, p *atproto.SyncGetLatestCommit_Params) (*atproto.SyncGetLatestCommit_Output, error) {
	a, err := s.lookupAccount(ctx, p.Did)
	if err != nil {
		return nil, err
	}
	if err := repoAvailable(a); err != nil {
		return nil, err
	}
	if a.Commit == "" {
		return nil, xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "No commit seen yet for DID: %s", a.DID)
	}
	return &atproto.SyncGetLatestCommit_Output{Cid: a.Commit, Rev: a.Rev}, nil
}

// repoAvailable is the error for the repository of an account that is not
// active, as the reference services name them, or nil.
func repoAvailable(a store.Account) error {
	switch a.HostingStatus() {
	case store.StatusActive, "":
		return nil
	case store.StatusTakendown:
		return xrpc.Errorf(http.StatusBadRequest, "RepoTakendown", "Repo has been taken down: %s", a.DID)
	case store.StatusSuspended:
		return xrpc.Errorf(http.StatusBadRequest, "RepoSuspended", "Repo has been suspended: %s", a.DID)
	case store.StatusDeleted:
		return xrpc.Errorf(http.StatusBadRequest, "RepoNotFound", "Repo has been deleted: %s", a.DID)
	default:
		return xrpc.Errorf(http.StatusBadRequest, "RepoDeactivated", "Repo has been deactivated: %s", a.DID)
	}
}

func listLimit(l *int64, def int) (int, error) {
	if l == nil {
		return def, nil
	}
	if *l < 1 || *l > store.MaxListLimit {
		return 0, xrpc.InvalidRequest(fmt.Sprintf("limit must be between 1 and %d", store.MaxListLimit))
	}
	return int(*l), nil
}

func (s *Server) syncListRepos(ctx context.Context, p *atproto.SyncListRepos_Params) (*atproto.SyncListRepos_Output, error) {
	limit, err := listLimit(p.Limit, store.DefaultListLimit)
	if err != nil {
		return nil, err
	}
	accts, next, err := s.st.ListAccounts(ctx, p.Cursor, limit)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, xrpc.InvalidRequest("Malformed cursor")
	}
	if err != nil {
		return nil, err
	}
	out := &atproto.SyncListRepos_Output{Repos: make([]*atproto.SyncListRepos_Repo, 0, len(accts))}
	for _, a := range accts {
		if a.Commit == "" {
			continue // no commit seen yet: nothing to list as head
		}
		active := a.Active()
		r := &atproto.SyncListRepos_Repo{Did: string(a.DID), Head: a.Commit, Rev: a.Rev, Active: &active}
		if !active {
			r.Status = optString(a.HostingStatus())
		}
		out.Repos = append(out.Repos, r)
	}
	out.Cursor = optString(next)
	return out, nil
}

// hostView is what listHosts and getHostStatus report of a host.
func (s *Server) hostView(ctx context.Context, h store.Host) (seq, count int64, status string, err error) {
	count, err = s.st.AccountCount(ctx, h.Hostname)
	return h.Cursor, count, h.Status, err
}

func (s *Server) syncListHosts(ctx context.Context, p *atproto.SyncListHosts_Params) (*atproto.SyncListHosts_Output, error) {
	limit, err := listLimit(p.Limit, 200)
	if err != nil {
		return nil, err
	}
	hosts, next, err := s.st.ListHosts(ctx, p.Cursor, limit)
	if errors.Is(err, store.ErrInvalidCursor) {
		return nil, xrpc.InvalidRequest("Malformed cursor")
	}
	if err != nil {
		return nil, err
	}
	out := &atproto.SyncListHosts_Output{Hosts: make([]*atproto.SyncListHosts_Host, 0, len(hosts))}
	for _, h := range hosts {
		seq, count, status, err := s.hostView(ctx, h)
		if err != nil {
			return nil, err
		}
		out.Hosts = append(out.Hosts, &atproto.SyncListHosts_Host{Hostname: h.Hostname, Seq: &seq, AccountCount: &count, Status: &status})
	}
	out.Cursor = optString(next)
	return out, nil
}

func (s *Server) syncGetHostStatus(ctx context.Context, p *atproto.SyncGetHostStatus_Params) (*atproto.SyncGetHostStatus_Output, error) {
	addr, err := parseHostname(p.Hostname, true)
	if err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	h, err := s.st.Host(ctx, addr.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, xrpc.Errorf(http.StatusBadRequest, "HostNotFound", "Unknown host: %s", addr.Name)
	}
	if err != nil {
		return nil, err
	}
	seq, count, status, err := s.hostView(ctx, h)
	if err != nil {
		return nil, err
	}
	return &atproto.SyncGetHostStatus_Output{Hostname: h.Hostname, Seq: &seq, AccountCount: &count, Status: &status}, nil
}

// syncRequestCrawl serves com.atproto.sync.requestCrawl: a valid hostname
// that answers describeServer is added (unless known) and subscribed to
// (unless blocked).
func (s *Server) syncRequestCrawl(ctx context.Context, in *atproto.SyncRequestCrawl_Input) (*xrpc.NoOutput, error) {
	addr, err := parseHostname(in.Hostname, s.cfg.AllowInsecureHosts)
	if err != nil {
		return nil, xrpc.InvalidRequest(err.Error())
	}
	if h, err := s.st.Host(ctx, addr.Name); err == nil {
		if h.Status == store.HostBlocked {
			return nil, xrpc.Forbidden("host is blocked: " + addr.Name)
		}
		s.startHost(h)
		return nil, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err := s.checkDescribeServer(ctx, addr); err != nil {
		return nil, xrpc.Errorf(http.StatusBadRequest, "HostNotReachable", "%s", err.Error())
	}
	h, _, err := s.st.AddHost(ctx, store.Host{Hostname: addr.Name, NoTLS: addr.NoTLS})
	if err != nil {
		return nil, err
	}
	s.log.Info("host added by requestCrawl", "host", h.Hostname)
	s.startHost(h)
	return nil, nil
}

// checkDescribeServer checks that the host answers
// com.atproto.server.describeServer, through the SSRF-safe client.
func (s *Server) checkDescribeServer(ctx context.Context, h hostAddr) error {
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	u := h.httpURL() + "/xrpc/" + atproto.ServerDescribeServerNSID
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("host %s does not answer describeServer: %w", h.Name, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("host %s answered describeServer with status %d", h.Name, resp.StatusCode)
	}
	return nil
}
