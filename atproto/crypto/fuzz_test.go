package crypto_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

const (
	seedK256 = "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"
	seedP256 = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo"
)

func FuzzParsePublicDIDKey(f *testing.F) {
	for _, s := range []string{seedK256, seedP256, "did:key:", "did:key:z", "did:key:z1111", "did:plc:abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := crypto.ParsePublicDIDKey(s)
		if err != nil {
			return
		}
		// Anything accepted is canonical: it prints back unchanged.
		if pub.DIDKey() != s {
			t.Fatalf("accepted %q but prints as %q", s, pub.DIDKey())
		}
	})
}

func FuzzParsePublicMultibase(f *testing.F) {
	for _, s := range []string{seedK256[8:], seedP256[8:], "z", "zQ3s", "m5wE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := crypto.ParsePublicMultibase(s)
		if err != nil {
			return
		}
		if pub.Multibase() != s {
			t.Fatalf("accepted %q but prints as %q", s, pub.Multibase())
		}
		again, err := crypto.ParsePublicBytesK256(pub.Bytes())
		if pub.KeyType() == crypto.KeyTypeP256 {
			again, err = crypto.ParsePublicBytesP256(pub.Bytes())
		}
		if err != nil || !again.Equal(pub) {
			t.Fatalf("compressed bytes of %q do not parse back: %v", s, err)
		}
	})
}

func FuzzHashAndVerify(f *testing.F) {
	var keys []crypto.PublicKey
	for _, s := range []string{seedK256, seedP256} {
		k, err := crypto.ParsePublicDIDKey(s)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, k)
	}
	f.Add([]byte("msg"), make([]byte, 64))
	f.Add([]byte("msg"), bytes.Repeat([]byte{0xff}, 64))
	f.Add([]byte(""), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte("x"), []byte{0x30, 0x44, 0x02, 0x20})
	f.Fuzz(func(t *testing.T, msg, sig []byte) {
		for _, k := range keys {
			// Random bytes are (overwhelmingly) not a valid signature; the
			// point is that nothing panics and every error is typed.
			if err := k.HashAndVerify(msg, sig); err != nil && !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Fatalf("strict error not ErrInvalidSignature: %v", err)
			}
			if err := k.HashAndVerifyLenient(msg, sig); err != nil && !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Fatalf("lenient error not ErrInvalidSignature: %v", err)
			}
		}
	})
}

func FuzzParsePublicJWK(f *testing.F) {
	f.Add([]byte(`{"kty":"EC","crv":"secp256k1","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"","y":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	for _, s := range []string{seedK256, seedP256} {
		k, _ := crypto.ParsePublicDIDKey(s)
		j, _ := k.JWK()
		f.Add(jsonOf(j))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := crypto.ParsePublicJWKBytes(data)
		if err != nil {
			return
		}
		j, err := pub.JWK()
		if err != nil {
			t.Fatal(err)
		}
		back, err := crypto.ParsePublicJWK(j)
		if err != nil || !back.Equal(pub) {
			t.Fatalf("re-export of accepted JWK does not parse back: %v", err)
		}
	})
}
