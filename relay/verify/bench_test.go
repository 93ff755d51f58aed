package verify

import (
	"fmt"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

// benchEvent is the body of a #commit creating one post on a repository
// of 2,000 records, the identity of its account and the state a relay
// holds before it.
func benchEvent(b *testing.B, kt crypto.KeyType) ([]byte, *account, AccountState) {
	b.Helper()
	a := newAccount(b, kt)
	res := a.commit(b, creates(b, "old", 200)...)
	for i := 1; i < 10; i++ {
		res = a.commit(b, creates(b, fmt.Sprintf("old%d-", i), 200)...)
	}
	st := stateAfter(res)
	res = a.commit(b, write(b, "create", "new0001", "a new post"))
	return encode(b, commitEvent(res)), a, st
}

// BenchmarkParseCommit decodes a #commit body and its CAR slice and runs
// the checks that need no identity.
func BenchmarkParseCommit(b *testing.B) {
	body, _, _ := benchEvent(b, crypto.KeyTypeK256)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, r, err := ParseCommit(body, nil); err != nil {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkVerifyCommit is what a relay does with each #commit body:
// ParseCommit, then VerifyCommit with the account's identity and state
// (signature, sync 1.1 inversion).
func BenchmarkVerifyCommit(b *testing.B) {
	for name, kt := range map[string]crypto.KeyType{"K256": crypto.KeyTypeK256, "P256": crypto.KeyTypeP256} {
		b.Run(name, func(b *testing.B) {
			body, a, st := benchEvent(b, kt)
			b.ReportAllocs()
			for b.Loop() {
				c, r, err := ParseCommit(body, nil)
				if err != nil {
					b.Fatal(r, err)
				}
				if v := VerifyCommit(c, testHost, a.id, st, nil); !v.OK || v.Reason != ReasonNone {
					b.Fatal(v.Reason, v.Err)
				}
			}
		})
	}
}
