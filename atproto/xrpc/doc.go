// Package xrpc implements XRPC, the HTTP API of atproto: a server that
// routes /xrpc/{nsid} to registered handlers, checking parameters, request
// bodies and (optionally) responses against Lexicon schemas, and a client
// that the generated functions of package api call through.
//
// # Server
//
// A Server maps NSIDs to handlers. Handle registers a generic HandlerFunc;
// HandleQuery, HandleProcedure and HandleRawProcedure adapt the generated
// _Params, _Input and _Output types, so a generated _Handler method can be
// registered directly:
//
//	s := xrpc.NewServer(catalog)
//	xrpc.HandleQuery(s, bsky.ActorGetProfileNSID, h.ActorGetProfile)
//
// Requests are answered as the reference implementation answers them: an
// unregistered method is 501 MethodNotImplemented, a query called with
// anything but GET (or HEAD) and a procedure with anything but POST is 400
// InvalidRequest, parameters and JSON bodies that do not match the lexicon
// are 400 InvalidRequest naming the fault, a body whose Content-Type does
// not match the lexicon's encoding is 400, a body over the limit is 413
// PayloadTooLarge. Handlers return an *Error (InvalidRequest, AuthRequired,
// ExpiredToken, Forbidden, NotFound, RateLimitExceeded, ...) to choose the
// status and the {"error", "message"} envelope; any other error, and a
// panic, is a 500 InternalServerError whose details go only to the log.
// With ValidateOutput set, a response the lexicon forbids is a 500 too.
//
// Every response carries CORS headers (all origins, as the reference
// services allow) and an X-Request-Id; with a Logger set, each request is
// logged once with its method, NSID, status and duration.
//
// # Client
//
// Client implements lexutil.Client. Errors are *Error values keeping the
// name and status sent by the server. Queries are retried on 429, 5xx
// (except 501) and network errors with jittered exponential backoff,
// honouring Retry-After and RateLimit-Reset within RetryPolicy.MaxDelay;
// procedures are never retried. An AuthProvider adds credentials
// (BearerAuth, AdminAuth, SessionAuth); one that is also a Refresher is
// asked to refresh once when a call fails with ExpiredToken, and the call
// is repeated.
package xrpc
