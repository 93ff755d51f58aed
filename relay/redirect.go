package relay

import (
	"net/http"

	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// redirectedMethods are the com.atproto.sync reads that a relay, which
// keeps events and not repositories, answers by sending the client to the
// account's PDS: the same request, on the host the account's events come
// from.
var redirectedMethods = []string{
	"com.atproto.sync.getRepo",
	"com.atproto.sync.getRecord",
	"com.atproto.sync.getBlocks",
	"com.atproto.sync.getBlob",
}

// registerRedirects mounts redirectedMethods on mux.
func (s *Server) registerRedirects(mux *http.ServeMux) {
	for _, nsid := range redirectedMethods {
		mux.HandleFunc("GET /xrpc/"+nsid, s.redirectToHost)
	}
}

// redirectToHost answers a repository read with 302 Found to the same
// path and query on the PDS that hosts the account named by the did
// parameter. Unknown accounts are 400 RepoNotFound and accounts that are
// not active get the same errors as getLatestCommit, so that a client
// learns of a takedown from the relay as from the PDS.
func (s *Server) redirectToHost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	did := r.URL.Query().Get("did")
	if did == "" {
		xrpc.WriteError(w, xrpc.InvalidRequest("did: missing"))
		return
	}
	a, err := s.lookupAccount(ctx, did)
	if err != nil {
		xrpc.WriteError(w, err)
		return
	}
	if err := repoAvailable(a); err != nil {
		xrpc.WriteError(w, err)
		return
	}
	h, err := s.st.Host(ctx, a.Host)
	if err != nil {
		xrpc.WriteError(w, err)
		return
	}
	base := hostAddr{Name: h.Hostname, NoTLS: h.NoTLS}.httpURL()
	target := base + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusFound)
}
