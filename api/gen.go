// Package api is the root of the Go API generated from the Lexicon schemas:
// one subpackage per NSID authority group (bsky for app.bsky.*, atproto for
// com.atproto.*, chat for chat.bsky.*, ozone for tools.ozone.*, ...), the
// run-time helpers in lexutil, and Catalog, the schemas themselves.
package api

//go:generate go run ../internal/lexgen -lexicons ../../shared/lexicons -out .
