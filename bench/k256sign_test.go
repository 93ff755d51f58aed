package bench

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	dsecp "github.com/decred/dcrd/dcrec/secp256k1/v4"
	decdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

// TestK256SignaturesVerifyElsewhere signs with many fresh Welkin keys and
// checks every signature with two other implementations: indigo's strict
// atproto verification (secp256k1-voi underneath) and decred's
// secp256k1/v4 ECDSA, which shares no code with either, and that decred
// agrees the signature is low-S.
func TestK256SignaturesVerifyElsewhere(t *testing.T) {
	for i := range 200 {
		priv, err := crypto.GenerateK256()
		if err != nil {
			t.Fatal(err)
		}
		pubBytes := priv.Public().Bytes()
		msg := make([]byte, 1+i%300)
		rand.Read(msg)
		sig, err := priv.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}

		ipub, err := atcrypto.ParsePublicBytesK256(pubBytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipub.HashAndVerify(msg, sig); err != nil {
			t.Fatalf("indigo rejects signature %x: %v", sig, err)
		}

		dpub, err := dsecp.ParsePubKey(pubBytes)
		if err != nil {
			t.Fatal(err)
		}
		var r, s dsecp.ModNScalar
		if overflow := r.SetByteSlice(sig[:32]); overflow {
			t.Fatalf("r overflows: %x", sig)
		}
		if overflow := s.SetByteSlice(sig[32:]); overflow {
			t.Fatalf("s overflows: %x", sig)
		}
		if s.IsOverHalfOrder() {
			t.Fatalf("high S: %x", sig)
		}
		h := sha256.Sum256(msg)
		if !decdsa.NewSignature(&r, &s).Verify(h[:], dpub) {
			t.Fatalf("decred rejects signature %x", sig)
		}
		h[0] ^= 1
		if decdsa.NewSignature(&r, &s).Verify(h[:], dpub) {
			t.Fatal("decred accepts the signature for another digest")
		}
	}
}

// TestK256SignaturesFromElsewhere checks the other direction for decred:
// Welkin's strict verification accepts decred's deterministic signatures.
func TestK256SignaturesFromElsewhere(t *testing.T) {
	for i := range 50 {
		dpriv, err := dsecp.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Appendf(nil, "message %d", i)
		h := sha256.Sum256(msg)
		compact := decdsa.SignCompact(dpriv, h[:], true) // recovery byte, r, s
		pub, err := crypto.ParsePublicBytesK256(dpriv.PubKey().SerializeCompressed())
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.HashAndVerify(msg, compact[1:]); err != nil {
			t.Fatalf("welkin rejects decred's signature: %v", err)
		}
		// And a Welkin key made from the same scalar signs verifiably.
		wpriv, err := crypto.ParsePrivateBytesK256(dpriv.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		sig, err := wpriv.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.HashAndVerify(msg, sig); err != nil {
			t.Fatal(err)
		}
	}
}
