// Package interop holds tests that drive Welkin with clients no one here
// wrote: reference libraries from the npm registry, installed by the tests
// themselves from the committed lockfile in node/ ("npm ci"), and run with
// the system's node. It is a module of its own so the main module never
// depends on it.
//
// One test drives a real browser: Debian's Chromium (/usr/bin/chromium),
// through playwright-core from the same lockfile, opens the relay's
// public status page.
//
// Run it with "cd interop && go test ./...". The tests build ../cmd/welkin
// themselves; WELKIN_INTEROP_BINARY names a prebuilt binary to test
// instead. Without node and npm (or Chromium, for the browser test) the
// tests skip with a message, except when CI=true, where they fail.
package interop
