package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"gitlab.com/yawning/secp256k1-voi/secec"
)

// BenchmarkSignK256Voi is how HashAndSign signed before it had its own
// ECDSA: secp256k1-voi's hedged signing, with the same message as
// BenchmarkSignK256. Compare the two from one run.
func BenchmarkSignK256Voi(b *testing.B) {
	key, err := secec.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	opts := &secec.ECDSAOptions{Encoding: secec.EncodingCompact}
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(benchMsgInternal)
		if _, err := key.Sign(rand.Reader, h[:], opts); err != nil {
			b.Fatal(err)
		}
	}
}

var benchMsgInternal = []byte("a typical signed atproto commit object is a few hundred bytes of DRISL CBOR; this stands in for one")

// BenchmarkK256SignParts times the pieces of a K-256 signature.
func BenchmarkK256SignParts(b *testing.B) {
	x, y := k256G.x, k256G.y
	b.Run("feMul", func(b *testing.B) {
		for b.Loop() {
			feMul(&x, &x, &y)
		}
	})
	b.Run("feSqr", func(b *testing.B) {
		for b.Loop() {
			feSqr(&x, &x)
		}
	})
	b.Run("feInv", func(b *testing.B) {
		for b.Loop() {
			feInv(&x, &x)
		}
	})
	k := [4]uint64{1, 2, 3, 4}
	b.Run("modInverseVartime", func(b *testing.B) {
		for b.Loop() {
			k = modInverseVartime(&k, k256NInv)
		}
	})
	var out [32]byte
	k256Table()
	b.Run("baseMultX", func(b *testing.B) {
		for b.Loop() {
			k256BaseMultX(&out, &k, &testBlind)
			k[0] ^= uint64(out[0])
		}
	})
	if feUseADX {
		b.Run("baseMultX/generic", func(b *testing.B) {
			feUseADX = false
			defer func() { feUseADX = true }()
			for b.Loop() {
				k256BaseMultX(&out, &k, &testBlind)
				k[0] ^= uint64(out[0])
			}
		})
	}
	var key, h, extra [32]byte
	key[0] = 1
	b.Run("rfc6979", func(b *testing.B) {
		for b.Loop() {
			var d rfc6979
			d.init(&key, &h, extra[:])
			h = d.next()
		}
	})
	b.Run("buildTable", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buildK256Table()
		}
	})
}
