package identity_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const exampleDoc = `{
  "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
  "id": "did:plc:abcdefghijklmnopqrstuvwx",
  "alsoKnownAs": ["at://alice.example.com"],
  "verificationMethod": [{
    "id": "did:plc:abcdefghijklmnopqrstuvwx#atproto",
    "type": "Multikey",
    "controller": "did:plc:abcdefghijklmnopqrstuvwx",
    "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"
  }],
  "service": [{
    "id": "#atproto_pds",
    "type": "AtprotoPersonalDataServer",
    "serviceEndpoint": "https://pds.example.com"
  }]
}`

func ExampleParseIdentity() {
	ident, err := identity.ParseIdentity([]byte(exampleDoc))
	if err != nil {
		panic(err)
	}
	key, err := ident.SigningKey()
	if err != nil {
		panic(err)
	}
	pds, err := ident.PDSEndpoint()
	if err != nil {
		panic(err)
	}
	fmt.Println(ident.DID)
	fmt.Println(ident.Handle)
	fmt.Println(key.KeyType(), key.DIDKey())
	fmt.Println(pds)
	// Output:
	// did:plc:abcdefghijklmnopqrstuvwx
	// alice.example.com
	// k256 did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF
	// https://pds.example.com
}

func ExampleNewCachingResolver() {
	// A stand-in PLC directory on the loopback interface.
	plc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/did:plc:abcdefghijklmnopqrstuvwx" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, exampleDoc)
	}))
	defer plc.Close()

	base := identity.NewResolver(identity.Options{
		PLCURL:               plc.URL,
		AllowPrivateNetworks: true, // the directory is on 127.0.0.1
	})
	dir := identity.NewCachingResolver(base, identity.CacheOptions{})

	ctx := context.Background()
	ident, err := dir.ResolveDID(ctx, syntax.DID("did:plc:abcdefghijklmnopqrstuvwx"))
	if err != nil {
		panic(err)
	}
	pds, _ := ident.PDSEndpoint()
	fmt.Println(ident.Handle, pds)

	_, err = dir.ResolveDID(ctx, syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"))
	fmt.Println(errors.Is(err, identity.ErrDIDNotFound))
	// Output:
	// alice.example.com https://pds.example.com
	// true
}
