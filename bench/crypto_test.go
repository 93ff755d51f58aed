package bench

import (
	"bytes"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

// The benchmarks sign a message the size of a small repository commit with
// fixed private scalars, so both implementations hold the same key pair.
var (
	cryptoMessage = bytes.Repeat([]byte("welkin-commit:"), 16)
	scalarK256    = fixedScalar(0x11)
	scalarP256    = fixedScalar(0x5a)
)

// fixedScalar returns 32 bytes that are a valid private scalar on both
// curves (far below either group order).
func fixedScalar(seed byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed ^ byte(i*7)
	}
	b[0] = 0x3c
	return b
}

type keyPair struct {
	curve  string
	welkin crypto.PrivateKey
	indigo atcrypto.PrivateKeyExportable
}

func loadKeys(tb testing.TB) []keyPair {
	tb.Helper()
	wk, err := crypto.ParsePrivateBytesK256(scalarK256)
	if err != nil {
		tb.Fatal(err)
	}
	ik, err := atcrypto.ParsePrivateBytesK256(scalarK256)
	if err != nil {
		tb.Fatal(err)
	}
	wp, err := crypto.ParsePrivateBytesP256(scalarP256)
	if err != nil {
		tb.Fatal(err)
	}
	ip, err := atcrypto.ParsePrivateBytesP256(scalarP256)
	if err != nil {
		tb.Fatal(err)
	}
	return []keyPair{{"k256", wk, ik}, {"p256", wp, ip}}
}

func keyFor(tb testing.TB, curve string) keyPair {
	tb.Helper()
	for _, k := range loadKeys(tb) {
		if k.curve == curve {
			return k
		}
	}
	tb.Fatalf("no key for curve %s", curve)
	return keyPair{}
}

func indigoPublic(tb testing.TB, k atcrypto.PrivateKey) atcrypto.PublicKey {
	tb.Helper()
	pub, err := k.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

// TestCryptoAgreement checks that each implementation verifies the other's
// signatures on both curves, that both refuse a corrupted signature, and
// that they write and read the same did:key strings.
func TestCryptoAgreement(t *testing.T) {
	for _, k := range loadKeys(t) {
		t.Run(k.curve, func(t *testing.T) {
			wpub := k.welkin.Public()
			ipub := indigoPublic(t, k.indigo)
			if wpub.DIDKey() != ipub.DIDKey() {
				t.Fatalf("did:key differs: welkin %s, indigo %s", wpub.DIDKey(), ipub.DIDKey())
			}
			if k.welkin.Multibase() != k.indigo.Multibase() {
				t.Errorf("private multibase differs: welkin %s, indigo %s", k.welkin.Multibase(), k.indigo.Multibase())
			}
			fromIndigo, err := crypto.ParsePublicDIDKey(ipub.DIDKey())
			if err != nil {
				t.Fatalf("welkin cannot parse indigo's did:key: %v", err)
			}
			fromWelkin, err := atcrypto.ParsePublicDIDKey(wpub.DIDKey())
			if err != nil {
				t.Fatalf("indigo cannot parse welkin's did:key: %v", err)
			}
			if !bytes.Equal(fromIndigo.Bytes(), fromWelkin.Bytes()) || !bytes.Equal(fromIndigo.UncompressedBytes(), fromWelkin.UncompressedBytes()) {
				t.Fatalf("the parsed keys differ")
			}

			for range 8 {
				wsig, err := k.welkin.HashAndSign(cryptoMessage)
				if err != nil {
					t.Fatal(err)
				}
				if err := fromWelkin.HashAndVerify(cryptoMessage, wsig); err != nil {
					t.Fatalf("indigo rejects welkin's signature: %v", err)
				}
				isig, err := k.indigo.HashAndSign(cryptoMessage)
				if err != nil {
					t.Fatal(err)
				}
				if err := fromIndigo.HashAndVerify(cryptoMessage, isig); err != nil {
					t.Fatalf("welkin rejects indigo's signature: %v", err)
				}
				bad := bytes.Clone(isig)
				bad[10] ^= 1
				if fromIndigo.HashAndVerify(cryptoMessage, bad) == nil {
					t.Fatal("welkin accepts a corrupted signature")
				}
				bad = bytes.Clone(wsig)
				bad[40] ^= 1
				if fromWelkin.HashAndVerify(cryptoMessage, bad) == nil {
					t.Fatal("indigo accepts a corrupted signature")
				}
			}
		})
	}
}

func benchSign(b *testing.B, curve string) {
	k := keyFor(b, curve)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sig, err := k.welkin.HashAndSign(cryptoMessage)
			if err != nil {
				b.Fatal(err)
			}
			sink = sig
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sig, err := k.indigo.HashAndSign(cryptoMessage)
			if err != nil {
				b.Fatal(err)
			}
			sink = sig
		}
	})
}

// benchVerify has each implementation verify its own signature with a
// public key parsed beforehand, as a relay's identity cache would hold it.
func benchVerify(b *testing.B, curve string) {
	k := keyFor(b, curve)
	b.Run("impl=welkin", func(b *testing.B) {
		pub := k.welkin.Public()
		sig, err := k.welkin.HashAndSign(cryptoMessage)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := pub.HashAndVerify(cryptoMessage, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		pub := indigoPublic(b, k.indigo)
		sig, err := k.indigo.HashAndSign(cryptoMessage)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := pub.HashAndVerify(cryptoMessage, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchParseDIDKey(b *testing.B, curve string) {
	didKey := keyFor(b, curve).welkin.Public().DIDKey()
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pub, err := crypto.ParsePublicDIDKey(didKey)
			if err != nil {
				b.Fatal(err)
			}
			sink = pub
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pub, err := atcrypto.ParsePublicDIDKey(didKey)
			if err != nil {
				b.Fatal(err)
			}
			sink = pub
		}
	})
}

func BenchmarkSignK256(b *testing.B)        { benchSign(b, "k256") }
func BenchmarkSignP256(b *testing.B)        { benchSign(b, "p256") }
func BenchmarkVerifyK256(b *testing.B)      { benchVerify(b, "k256") }
func BenchmarkVerifyP256(b *testing.B)      { benchVerify(b, "p256") }
func BenchmarkParseDIDKeyK256(b *testing.B) { benchParseDIDKey(b, "k256") }
func BenchmarkParseDIDKeyP256(b *testing.B) { benchParseDIDKey(b, "p256") }
