package crypto

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/welkin-atproto/welkin/internal/base58"
	"github.com/welkin-atproto/welkin/internal/interoptest"
)

func readJSON(t *testing.T, rel string, v any) {
	t.Helper()
	raw, err := os.ReadFile(interoptest.File(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

type sigFixture struct {
	Comment            string   `json:"comment"`
	MessageBase64      string   `json:"messageBase64"`
	Algorithm          string   `json:"algorithm"`
	DIDDocSuite        string   `json:"didDocSuite"`
	PublicKeyDID       string   `json:"publicKeyDid"`
	PublicKeyMultibase string   `json:"publicKeyMultibase"`
	SignatureBase64    string   `json:"signatureBase64"`
	ValidSignature     bool     `json:"validSignature"`
	Tags               []string `json:"tags"`
}

func TestInteropSignatureFixtures(t *testing.T) {
	var fixtures []sigFixture
	readJSON(t, "crypto/signature-fixtures.json", &fixtures)
	if len(fixtures) == 0 {
		t.Fatal("no signature fixtures")
	}
	for _, f := range fixtures {
		t.Run(f.Comment, func(t *testing.T) {
			msg, err := base64.RawStdEncoding.DecodeString(f.MessageBase64)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.RawStdEncoding.DecodeString(f.SignatureBase64)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ParsePublicDIDKey(f.PublicKeyDID)
			if err != nil {
				t.Fatal(err)
			}
			if got := pub.KeyType().JWTAlg(); got != f.Algorithm {
				t.Errorf("key type alg %q, fixture says %q", got, f.Algorithm)
			}
			if pub.DIDKey() != f.PublicKeyDID {
				t.Errorf("did:key round trip: got %s", pub.DIDKey())
			}
			legacy, err := ParsePublicLegacyMultibase(f.PublicKeyMultibase, f.DIDDocSuite)
			if err != nil {
				t.Fatalf("legacy multibase: %v", err)
			}
			if !legacy.Equal(pub) {
				t.Error("legacy multibase and did:key name different keys")
			}

			err = pub.HashAndVerify(msg, sig)
			if f.ValidSignature && err != nil {
				t.Fatalf("valid signature rejected: %v", err)
			}
			if !f.ValidSignature {
				if err == nil {
					t.Fatal("invalid signature accepted by strict verification")
				}
				if !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("error %v does not match ErrInvalidSignature", err)
				}
				if slices.Contains(f.Tags, "high-s") && !errors.Is(err, ErrHighS) {
					t.Errorf("high-S fixture: error %v does not match ErrHighS", err)
				}
			}
			// Every fixture is a mathematically valid ECDSA signature; the
			// invalid ones break only the atproto encoding rules, which
			// lenient verification relaxes.
			if err := pub.HashAndVerifyLenient(msg, sig); err != nil {
				t.Errorf("lenient verification: %v", err)
			}
			if err := pub.HashAndVerifyLenient(append(msg, 'x'), sig); err == nil {
				t.Error("lenient verification accepted a changed message")
			}
		})
	}
}

func TestInteropW3CDIDKeyP256(t *testing.T) {
	var vectors []struct {
		PrivateKeyBytesBase58 string `json:"privateKeyBytesBase58"`
		PublicDIDKey          string `json:"publicDidKey"`
	}
	readJSON(t, "crypto/w3c_didkey_P256.json", &vectors)
	for _, v := range vectors {
		raw, err := base58.Decode(v.PrivateKeyBytesBase58)
		if err != nil {
			t.Fatal(err)
		}
		checkDIDKeyVector(t, raw, v.PublicDIDKey, KeyTypeP256, ParsePrivateBytesP256)
	}
}

func TestInteropW3CDIDKeyK256(t *testing.T) {
	var vectors []struct {
		PrivateKeyBytesHex string `json:"privateKeyBytesHex"`
		PublicDIDKey       string `json:"publicDidKey"`
	}
	readJSON(t, "crypto/w3c_didkey_K256.json", &vectors)
	for _, v := range vectors {
		raw, err := hex.DecodeString(v.PrivateKeyBytesHex)
		if err != nil {
			t.Fatal(err)
		}
		checkDIDKeyVector(t, raw, v.PublicDIDKey, KeyTypeK256, ParsePrivateBytesK256)
	}
}

func checkDIDKeyVector(t *testing.T, raw []byte, didKey string, kt KeyType, parse func([]byte) (PrivateKey, error)) {
	t.Helper()
	priv, err := parse(raw)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	if got := priv.Public().DIDKey(); got != didKey {
		t.Errorf("did:key: got %s, want %s", got, didKey)
	}
	pub, err := ParsePublicDIDKey(didKey)
	if err != nil {
		t.Fatalf("parse %s: %v", didKey, err)
	}
	if pub.KeyType() != kt || !pub.Equal(priv.Public()) {
		t.Errorf("parsed %s does not equal the derived public key", didKey)
	}
	sig, err := priv.HashAndSign([]byte("w3c vector"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.HashAndVerify([]byte("w3c vector"), sig); err != nil {
		t.Errorf("signature by vector key: %v", err)
	}
}

// The example keys printed in the atproto cryptography and DID specs.
func TestSpecExamples(t *testing.T) {
	for _, s := range []struct {
		did string
		kt  KeyType
	}{
		{"did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo", KeyTypeP256},
		{"did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc", KeyTypeK256},
	} {
		pub, err := ParsePublicDIDKey(s.did)
		if err != nil {
			t.Fatalf("%s: %v", s.did, err)
		}
		if pub.KeyType() != s.kt || pub.DIDKey() != s.did {
			t.Errorf("%s: got %s %s", s.did, pub.KeyType(), pub.DIDKey())
		}
	}

	legacy, err := ParsePublicLegacyMultibase("zQYEBzXeuTM9UR3rfvNag6L3RNAs5pQZyYPsomTsgQhsxLdEgCrPTLgFna8yqCnxPpNT7DBk6Ym3dgPKNu86vt9GR", LegacyTypeK256)
	if err != nil {
		t.Fatal(err)
	}
	current, err := ParsePublicMultibase("zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF")
	if err != nil {
		t.Fatal(err)
	}
	if !legacy.Equal(current) {
		t.Error("legacy and multikey forms of the spec's example differ")
	}
}
