// Package bench measures Welkin beside other atproto implementations in one
// run, so that each figure in README.md is a ratio taken on one machine at
// one moment. It is a module of its own: the main Welkin module never
// depends on the implementations it is compared with.
//
// The tests in this package also check that both implementations agree
// byte for byte on the inputs they are timed on; a benchmark of two
// programs that compute different things would mean nothing.
package bench
