package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// envDebugAddr names the variable that turns on the profiling listener of
// a service verb, as --debug-addr does.
const envDebugAddr = "WELKIN_DEBUG_ADDR"

// startDebug serves Go's profiling handlers (/debug/pprof/) on addr, a
// listener of its own so that they never share the public port. An empty
// addr serves nothing. The returned function stops the listener.
func startDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("profiling listener", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
