package auth

import (
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

func BenchmarkVerifyServiceToken(b *testing.B) {
	for _, kt := range []crypto.KeyType{crypto.KeyTypeK256, crypto.KeyTypeP256} {
		b.Run(string(kt), func(b *testing.B) {
			f := newSvcFixture(b, kt)
			f.v.ReplayCache = nil // the same token is verified repeatedly
			tok := f.token(b, method)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.v.Verify(ctx, tok, method); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyAccess(b *testing.B) {
	f := newSessFixture(b)
	pair, err := f.iss.CreateSession(ctx, userDID, ScopeAccess)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.iss.VerifyAccess(pair.Access); err != nil {
			b.Fatal(err)
		}
	}
}
