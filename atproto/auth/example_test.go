package auth_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/welkin-atproto/welkin/atproto/auth"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// staticResolver serves fixed identities.
type staticResolver map[syntax.DID]*identity.Identity

func (s staticResolver) ResolveDID(_ context.Context, did syntax.DID) (*identity.Identity, error) {
	if id, ok := s[did]; ok {
		return id, nil
	}
	return nil, errors.New("unknown DID")
}

func Example() {
	const account = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	key, _ := crypto.GenerateK256()
	doc := &identity.DIDDocument{ID: account, VerificationMethod: []identity.VerificationMethod{{
		ID: account + "#atproto", Type: "Multikey", Controller: account,
		PublicKeyMultibase: key.Public().Multibase(),
	}}}
	ident, _ := identity.NewIdentity(doc)

	// The account's PDS signs a token for a call to the AppView.
	now := time.Now()
	token, err := auth.CreateServiceToken(key, account, "did:web:api.bsky.app", "app.bsky.feed.getTimeline", now, time.Minute)
	if err != nil {
		panic(err)
	}

	// The AppView checks it.
	v := &auth.ServiceVerifier{
		Resolver:    staticResolver{account: ident},
		Audience:    "did:web:api.bsky.app",
		ReplayCache: auth.NewMemoryReplayCache(0),
	}
	claims, err := v.Verify(context.Background(), token, "app.bsky.feed.getTimeline")
	fmt.Println(claims.Issuer, claims.LexiconMethod, err)

	// The same token for another method, or a second time, is refused.
	_, err = v.Verify(context.Background(), token, "app.bsky.actor.getProfile")
	fmt.Println(err.(*auth.Error).ErrorName())
	_, err = v.Verify(context.Background(), token, "app.bsky.feed.getTimeline")
	fmt.Println(errors.Is(err, auth.ErrJwtReplayed))
	// Output:
	// did:plc:ewvi7nxzyoun6zhxrhs64oiz app.bsky.feed.getTimeline <nil>
	// BadJwtLexiconMethod
	// true
}
