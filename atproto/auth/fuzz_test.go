package auth

import (
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

func FuzzParseJWT(f *testing.F) {
	sf := newSvcFixture(f, crypto.KeyTypeK256)
	ss := newSessFixture(f)
	pair, err := ss.iss.CreateSession(ctx, userDID, ScopeAccess)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		sf.token(f, method), pair.Access, pair.Refresh, "", ".", "..", "a.b.c",
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJFUzI1NksifQ.bnVsbA.AA",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if j, err := parseJWT(tok); err == nil {
			if j.header.Alg == "" || len(j.signingInput) >= len(tok) {
				t.Fatalf("bad parse %+v", j)
			}
		}
		_, _ = sf.v.Verify(ctx, tok, method)
		_, _ = ss.iss.VerifyAccess(tok)
		_, _ = ss.iss.VerifyRefresh(tok)
	})
}
