package xrpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Kind tells a query (HTTP GET) from a procedure (HTTP POST).
type Kind = lexutil.Kind

// The kinds of XRPC method.
const (
	Query     = lexutil.Query
	Procedure = lexutil.Procedure
)

// Limits on request bodies.
const (
	// DefaultMaxJSONBody bounds a JSON request body. The reference PDS
	// accepts 150 kB of JSON (its jsonLimit); records are at most 1 MiB
	// of DAG-CBOR, so a little more room is left for applyWrites.
	DefaultMaxJSONBody = 1 << 20
	// DefaultMaxRawBody bounds a non-JSON body, such as a blob upload; the
	// reference PDS default blob limit is 5 MB, raised by operators.
	DefaultMaxRawBody = 100 << 20
	// maxRequestIDLen bounds a request ID taken from the client.
	maxRequestIDLen = 128
)

// Request is one XRPC call as a generic handler sees it.
type Request struct {
	// HTTP is the underlying request, for headers and the remote address.
	// Its body has been consumed when Input is set.
	HTTP *http.Request
	// NSID is the method called.
	NSID syntax.NSID
	// Query holds the raw query parameters.
	Query url.Values
	// Params holds the parameters decoded and checked against the lexicon:
	// bool, int64 or string values, or slices of them. It is nil when the
	// server has no schema for the method.
	Params map[string]any
	// Encoding is the MIME type of the request body, without parameters.
	Encoding string
	// Input is a JSON body in the generic data model, checked against the
	// lexicon; nil when there is none or it is not JSON.
	Input map[string]any
	// Body is a non-JSON body (a blob upload, a CAR file), limited to the
	// server's MaxRawBody; nil otherwise.
	Body io.Reader
	// ID is the request ID, sent back in the X-Request-Id header.
	ID string
}

// Response is what a generic handler answers. A nil *Response is an empty
// 200 response.
type Response struct {
	// Encoding is the MIME type of the body; "application/json" when empty
	// and Body is set.
	Encoding string
	// Body is a JSON body: a generated type (a lexutil.Marshaler) or a value
	// of the generic data model (map[string]any, ...).
	Body any
	// Raw is a non-JSON body streamed to the client, closed after when it is
	// an io.Closer.
	Raw io.Reader
	// Header holds extra response headers.
	Header http.Header
}

// HandlerFunc serves one XRPC method.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

type route struct {
	kind    Kind
	handler HandlerFunc
	schema  bool // the catalog describes this method
}

// Server serves XRPC methods under /xrpc/. It is an http.Handler; mount it
// at "/xrpc/" of a mux, or use it as the whole handler. Fields must be set
// before the first request; Handle may be called at any time.
type Server struct {
	// Catalog validates parameters, input and (with ValidateOutput) output
	// of every method it describes. Methods it does not describe are served
	// without validation. It may be nil.
	Catalog *lexicon.Catalog
	// ValidateOutput checks handler responses against the lexicon and
	// answers 500 when they do not match. Meant for tests and development.
	ValidateOutput bool
	// MaxJSONBody and MaxRawBody bound request bodies; zero means
	// DefaultMaxJSONBody and DefaultMaxRawBody.
	MaxJSONBody int64
	MaxRawBody  int64
	// Logger receives one record per request (and the details of internal
	// errors); nil logs nothing.
	Logger *slog.Logger
	// CORS, when not nil, sets the CORS headers; NewServer sets
	// DefaultCORS.
	CORS *CORS
	// Observe, when set, is called once per request after the response is
	// written, to feed metrics (a Prometheus histogram, say). nsid is ""
	// for a request that reached no registered method, so that label
	// values stay bounded.
	Observe func(nsid string, status int, d time.Duration)

	mu     sync.RWMutex
	routes map[string]*route
}

// NewServer returns a Server validating against cat (which may be nil),
// with the default CORS policy.
func NewServer(cat *lexicon.Catalog) *Server {
	c := DefaultCORS()
	return &Server{Catalog: cat, CORS: &c}
}

// Handle registers fn for the method nsid of the given kind. It panics when
// nsid is not an NSID, is already registered, or the catalog describes it
// as another kind, as http.ServeMux does with bad patterns: these are
// mistakes in the program, not in its input.
func (s *Server) Handle(nsid string, kind Kind, fn HandlerFunc) {
	if _, err := syntax.ParseNSID(nsid); err != nil {
		panic("xrpc: Handle: " + err.Error())
	}
	if fn == nil {
		panic("xrpc: Handle: nil handler for " + nsid)
	}
	r := &route{kind: kind, handler: fn}
	if s.Catalog != nil {
		if d, err := s.Catalog.Resolve(nsid); err == nil {
			var k Kind
			switch d.Schema.(type) {
			case *lexicon.Query:
				k = Query
			case *lexicon.Procedure:
				k = Procedure
			default:
				panic(fmt.Sprintf("xrpc: Handle: %s is a %s, not a query or procedure", nsid, d.Type()))
			}
			if k != kind {
				panic(fmt.Sprintf("xrpc: Handle: %s is a %s", nsid, kindName(k)))
			}
			r.schema = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.routes == nil {
		s.routes = map[string]*route{}
	}
	if _, dup := s.routes[nsid]; dup {
		panic("xrpc: Handle: " + nsid + " registered twice")
	}
	s.routes[nsid] = r
}

func kindName(k Kind) string {
	if k == Procedure {
		return "procedure"
	}
	return "query"
}

func httpMethod(k Kind) string {
	if k == Procedure {
		return http.MethodPost
	}
	return http.MethodGet
}

// catalogKind reports the kind the catalog gives nsid, if any.
func (s *Server) catalogKind(nsid string) (Kind, bool) {
	if s.Catalog == nil {
		return 0, false
	}
	d, err := s.Catalog.Resolve(nsid)
	if err != nil {
		return 0, false
	}
	switch d.Schema.(type) {
	case *lexicon.Query:
		return Query, true
	case *lexicon.Procedure:
		return Procedure, true
	}
	return 0, false
}

type ctxKey struct{}

// RequestFromContext returns the request a handler is serving, so that
// typed handlers can read headers (for auth) and the remote address.
func RequestFromContext(ctx context.Context) *Request {
	r, _ := ctx.Value(ctxKey{}).(*Request)
	return r
}

// statusWriter records the status sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(rw http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	id := requestID(hr)
	w.Header().Set("X-Request-Id", id)
	if s.CORS != nil {
		if s.CORS.apply(w, hr) {
			s.done(hr, "", false, id, http.StatusNoContent, start, nil)
			return
		}
	}
	nsid, routed, xerr := s.serve(w, hr, id)
	if xerr != nil {
		s.writeError(w, xerr)
	}
	s.done(hr, nsid, routed, id, w.status, start, xerr)
}

func (s *Server) done(hr *http.Request, nsid string, routed bool, id string, status int, start time.Time, xerr *Error) {
	s.log(hr, nsid, id, status, start, xerr)
	if s.Observe != nil {
		if !routed {
			nsid = ""
		}
		s.Observe(nsid, status, time.Since(start))
	}
}

func (s *Server) log(hr *http.Request, nsid, id string, status int, start time.Time, xerr *Error) {
	if s.Logger == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", hr.Method),
		slog.String("nsid", nsid),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", id),
	}
	level := slog.LevelInfo
	if xerr != nil {
		attrs = append(attrs, slog.String("error", xerr.Name))
		if xerr.Err != nil {
			attrs = append(attrs, slog.String("cause", xerr.Err.Error()))
		}
		if xerr.Status >= 500 {
			level = slog.LevelError
		}
	}
	s.Logger.LogAttrs(hr.Context(), level, "xrpc request", attrs...)
}

// requestID takes a well-formed X-Request-Id from the client, or makes one.
func requestID(hr *http.Request) string {
	if id := hr.Header.Get("X-Request-Id"); id != "" && len(id) <= maxRequestIDLen {
		ok := true
		for i := 0; i < len(id); i++ {
			if id[i] <= ' ' || id[i] > '~' {
				ok = false
				break
			}
		}
		if ok {
			return id
		}
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serve handles one request, returning the NSID (for the log) and the error
// to send, if any. It turns panics in handlers into 500s.
func (s *Server) serve(w *statusWriter, hr *http.Request, id string) (nsid string, routed bool, xerr *Error) {
	rest, ok := strings.CutPrefix(hr.URL.Path, "/xrpc/")
	if !ok {
		return "", false, NotFound("not an XRPC path")
	}
	if _, err := syntax.ParseNSID(rest); err != nil {
		return "", false, InvalidRequest("invalid xrpc path")
	}
	nsid = rest
	s.mu.RLock()
	rt := s.routes[nsid]
	s.mu.RUnlock()
	if rt == nil {
		if k, ok := s.catalogKind(nsid); ok && !methodOK(k, hr.Method) {
			return nsid, false, wrongMethod(hr.Method, k)
		}
		return nsid, false, MethodNotImplemented("")
	}
	if !methodOK(rt.kind, hr.Method) {
		return nsid, true, wrongMethod(hr.Method, rt.kind)
	}

	req := &Request{HTTP: hr, NSID: syntax.NSID(nsid), Query: hr.URL.Query(), ID: id}
	for k, vs := range req.Query {
		ok := utf8.ValidString(k)
		for _, v := range vs {
			ok = ok && utf8.ValidString(v)
		}
		if !ok {
			return nsid, true, InvalidRequest("invalid parameters: not valid UTF-8")
		}
	}
	if rt.schema {
		p, err := s.Catalog.ValidateQueryParams(nsid, req.Query)
		if err != nil {
			return nsid, true, &Error{Status: 400, Name: NameInvalidRequest, Message: "invalid parameters: " + err.Error(), Err: err}
		}
		req.Params = p
	}
	if e := s.readInput(w, hr, req, rt); e != nil {
		return nsid, true, e
	}

	resp, err := s.call(hr.Context(), req, rt.handler)
	if err != nil {
		return nsid, true, asXRPCError(err)
	}
	return nsid, true, s.writeResponse(w, req, rt, resp)
}

func methodOK(k Kind, m string) bool {
	if k == Query {
		return m == http.MethodGet || m == http.MethodHead
	}
	return m == http.MethodPost
}

func wrongMethod(got string, k Kind) *Error {
	return InvalidRequest(fmt.Sprintf("Incorrect HTTP method (%s) expected %s", got, httpMethod(k)))
}

// call runs h, recovering a panic as a 500.
func (s *Server) call(ctx context.Context, req *Request, h HandlerFunc) (resp *Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			resp = nil
			e := InternalServerError("")
			e.Err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			err = e
		}
	}()
	return h(context.WithValue(ctx, ctxKey{}, req), req)
}

// inputBody returns the lexicon's input description of a procedure.
func (s *Server) inputBody(nsid string) *lexicon.Body {
	d, err := s.Catalog.Resolve(nsid)
	if err != nil {
		return nil
	}
	if p, ok := d.Schema.(*lexicon.Procedure); ok {
		return p.Input
	}
	return nil
}

// readInput reads and checks the request body of a procedure.
func (s *Server) readInput(w http.ResponseWriter, hr *http.Request, req *Request, rt *route) *Error {
	if rt.kind != Procedure {
		return nil
	}
	ct := hr.Header.Get("Content-Type")
	enc := ""
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return InvalidRequest("invalid Content-Type: " + ct)
		}
		enc = mt
	}
	hasBody := hr.ContentLength > 0 || (hr.ContentLength < 0 && hr.Body != nil && hr.Body != http.NoBody)
	req.Encoding = enc

	isJSON := enc == "application/json"
	if rt.schema {
		in := s.inputBody(req.NSID.String())
		if in == nil {
			if hasBody && hr.ContentLength != 0 {
				// A chunked body may still be empty: peek.
				b, _ := io.ReadAll(io.LimitReader(hr.Body, 1))
				if len(b) > 0 {
					return InvalidRequest("A request body was provided when none was expected")
				}
			}
			req.Encoding = ""
			return nil
		}
		if enc == "" {
			return InvalidRequest("Request encoding (Content-Type) required but not provided")
		}
		if !encodingMatch(in.Encoding, enc) {
			return InvalidRequest(fmt.Sprintf("Wrong request encoding (Content-Type): %s", enc))
		}
		// A body the lexicon takes as bytes (a blob of any type) is passed
		// on as it is, even when it happens to be JSON.
		isJSON = isJSON && strings.EqualFold(strings.TrimSpace(in.Encoding), "application/json")
	}

	if isJSON {
		limit := s.maxJSON()
		if hr.ContentLength > limit {
			return PayloadTooLarge("request body is too large")
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return PayloadTooLarge("request body is too large")
			}
			return &Error{Status: 400, Name: NameInvalidRequest, Message: "could not read request body", Err: err}
		}
		v, err := data.ParseJSON(b)
		if err != nil {
			return &Error{Status: 400, Name: NameInvalidRequest, Message: "invalid JSON body: " + err.Error(), Err: err}
		}
		if rt.schema {
			if err := s.Catalog.ValidateInput(req.NSID.String(), enc, v); err != nil {
				return &Error{Status: 400, Name: NameInvalidRequest, Message: "invalid input: " + err.Error(), Err: err}
			}
		}
		req.Input = v
		return nil
	}
	if enc != "" {
		limit := s.maxRaw()
		if hr.ContentLength > limit {
			return PayloadTooLarge("request body is too large")
		}
		req.Body = http.MaxBytesReader(w, hr.Body, limit)
	}
	return nil
}

func (s *Server) maxJSON() int64 {
	if s.MaxJSONBody > 0 {
		return s.MaxJSONBody
	}
	return DefaultMaxJSONBody
}

func (s *Server) maxRaw() int64 {
	if s.MaxRawBody > 0 {
		return s.MaxRawBody
	}
	return DefaultMaxRawBody
}

// encodingMatch reports whether got satisfies the lexicon encoding want
// ("type/subtype", "type/*" or "*/*"), ignoring case.
func encodingMatch(want, got string) bool {
	want = strings.ToLower(strings.TrimSpace(want))
	got = strings.ToLower(got)
	if want == "*/*" || want == got {
		return true
	}
	if t, ok := strings.CutSuffix(want, "/*"); ok {
		return strings.HasPrefix(got, t+"/")
	}
	return false
}

// writeResponse encodes resp; errors in doing so are returned before
// anything is written.
func (s *Server) writeResponse(w http.ResponseWriter, req *Request, rt *route, resp *Response) *Error {
	if resp != nil && resp.Raw != nil {
		if c, ok := resp.Raw.(io.Closer); ok {
			defer c.Close()
		}
	}
	check := s.ValidateOutput && rt.schema
	if resp == nil || (resp.Body == nil && resp.Raw == nil) {
		if check {
			if err := s.Catalog.ValidateOutput(req.NSID.String(), "", nil); err != nil {
				return outputError(err)
			}
		}
		if resp != nil {
			copyHeader(w.Header(), resp.Header)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if resp.Raw != nil {
		enc := resp.Encoding
		if enc == "" {
			enc = "application/octet-stream"
		}
		if check {
			if err := s.Catalog.ValidateOutput(req.NSID.String(), enc, nil); err != nil {
				return outputError(err)
			}
		}
		copyHeader(w.Header(), resp.Header)
		w.Header().Set("Content-Type", enc)
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, resp.Raw)
		return nil
	}
	enc := resp.Encoding
	if enc == "" {
		enc = "application/json"
	}
	g, err := toGeneric(resp.Body)
	if err != nil {
		e := InternalServerError("")
		e.Err = fmt.Errorf("encoding output: %w", err)
		return e
	}
	if check {
		if err := s.Catalog.ValidateOutput(req.NSID.String(), enc, g); err != nil {
			return outputError(err)
		}
	}
	b, err := data.MarshalJSON(g)
	if err != nil {
		e := InternalServerError("")
		e.Err = fmt.Errorf("encoding output: %w", err)
		return e
	}
	copyHeader(w.Header(), resp.Header)
	w.Header().Set("Content-Type", enc+"; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

func outputError(err error) *Error {
	e := InternalServerError("")
	e.Err = fmt.Errorf("output does not match the lexicon: %w", err)
	return e
}

// toGeneric turns a response body into the generic data model.
func toGeneric(v any) (any, error) {
	switch v := v.(type) {
	case lexutil.Marshaler:
		b, err := lexutil.MarshalCBOR(v)
		if err != nil {
			return nil, err
		}
		return data.DecodeCBOR(b)
	case map[string]any:
		return v, nil
	case json.RawMessage:
		return data.DecodeJSON(v)
	}
	// Anything else: through its DAG-CBOR form.
	b, err := data.MarshalCBOR(v)
	if err != nil {
		return nil, err
	}
	return data.DecodeCBOR(b)
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}

// errorBody is the XRPC error envelope.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

func (s *Server) writeError(w http.ResponseWriter, e *Error) {
	copyHeader(w.Header(), e.Header)
	if e.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		// RFC 9110 requires a challenge with a 401, as the XRPC spec recalls.
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	b, _ := json.Marshal(errorBody{Error: e.Name, Message: e.Message})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// WriteError answers with the XRPC error envelope of err, as a Server
// does: for middleware (auth, rate limits) in front of a Server.
func WriteError(w http.ResponseWriter, err error) {
	var s Server
	s.writeError(w, asXRPCError(err))
}
