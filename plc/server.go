package plc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/welkin-atproto/welkin/plc/store"
)

// MaxBodyBytes bounds a request body. The reference server's JSON body
// parser allows 100 kB; a valid operation is far smaller (MaxOpBytes of
// DAG-CBOR).
const MaxBodyBytes = 100 << 10

// shutdownTimeout is how long graceful shutdown waits for requests in
// flight.
const shutdownTimeout = 10 * time.Second

// Server is a PLC directory. Create it with NewServer; serve Handler()
// yourself or call Serve / ListenAndServe.
type Server struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	locks   keyedMutex
	hub     *hub
	handler http.Handler

	closeOnce sync.Once
}

// NewServer returns a directory serving the operations in st. The caller
// keeps ownership of st; Close the server before closing st.
func NewServer(cfg Config, st store.Store) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, st: st, log: cfg.Logger}
	s.hub = newHub(st, s.log, cfg.StreamBuffer, cfg.StreamPoll)
	go s.hub.run()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /_health", s.handleHealth)
	mux.HandleFunc("GET /export", s.handleExport)
	mux.HandleFunc("GET /export/stream", s.handleStream)
	mux.HandleFunc("GET /{did}", s.handleDocument)
	mux.HandleFunc("POST /{did}", s.handleSubmit)
	mux.HandleFunc("GET /{did}/data", s.handleData)
	mux.HandleFunc("GET /{did}/log", s.handleLog)
	mux.HandleFunc("GET /{did}/log/audit", s.handleAuditLog)
	mux.HandleFunc("GET /{did}/log/last", s.handleLastOp)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	s.handler = s.middleware(mux)
	return s
}

// Handler is the directory's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the live export stream and disconnects its consumers. It does
// not close the store.
func (s *Server) Close() error {
	s.closeOnce.Do(s.hub.close)
	return nil
}

// ListenAndServe listens on the configured host and port and serves until
// ctx is done, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then stops accepting connections,
// waits (up to a bound) for requests in flight, disconnects stream
// consumers and returns. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(func() { s.Close() })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("plc directory listening", "addr", ln.Addr().String(), "version", s.cfg.Version)

	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.log.Info("plc directory shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.Close()
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.Error("health check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"version": s.cfg.Version, "error": "Service Unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
}

// middleware adds CORS headers (any origin, as the reference server),
// answers preflight requests, turns panics into 500s and logs requests.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
				h.Add("Vary", "Access-Control-Request-Headers")
			}
			h.Set("Content-Length", "0")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				if rec.status == 0 {
					writeError(rec, http.StatusInternalServerError, "Internal Server Error")
				}
			}
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "dur", time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and the WebSocket upgrade) reach
// the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// errorBody is the reference directory's error shape.
type errorBody struct {
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"Internal Server Error"}`)
	}
	writeBody(w, status, "application/json; charset=utf-8", b)
}

func writeBody(w http.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(b)
}
