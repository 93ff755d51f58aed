package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
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

// benchVerifyInput is a key, digest and low-S signature for the
// verification benchmarks.
func benchVerifyInput(b *testing.B) (*privateKeyK256, [32]byte, *sigScalars) {
	k, err := GenerateK256()
	if err != nil {
		b.Fatal(err)
	}
	key := k.(*privateKeyK256)
	sig, err := key.HashAndSign(benchMsgInternal)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := parseCompactStrict(sig, orderK256)
	if err != nil {
		b.Fatal(err)
	}
	return key, sha256.Sum256(benchMsgInternal), sc
}

// BenchmarkVerifyK256Voi is how HashAndVerify verified before it had its
// own verification: secp256k1-voi's VerifyRaw, on the same kind of input
// as BenchmarkVerifyK256 (SHA-256 and parsing included in both). Compare
// the two from one run.
func BenchmarkVerifyK256Voi(b *testing.B) {
	key, _, _ := benchVerifyInput(b)
	sig, err := key.HashAndSign(benchMsgInternal)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := secec.NewPublicKey(key.pub.uncompressed[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sc, err := parseCompactStrict(sig, orderK256)
		if err != nil {
			b.Fatal(err)
		}
		r, _ := secp256k1.NewScalarFromCanonicalBytes(&sc.r)
		s, _ := secp256k1.NewScalarFromCanonicalBytes(&sc.s)
		h := sha256.Sum256(benchMsgInternal)
		if !pub.VerifyRaw(h[:], r, s) {
			b.Fatal("voi rejects the signature")
		}
	}
}

// BenchmarkK256VerifyParts times the pieces of a K-256 verification.
func BenchmarkK256VerifyParts(b *testing.B) {
	key, h, sc := benchVerifyInput(b)
	qt := key.pub.verifyTable()
	k256VerifyTables()
	b.Run("verifyDigest", func(b *testing.B) {
		for b.Loop() {
			if !k256VerifyDigest(qt, &h, &sc.r, &sc.s) {
				b.Fatal("rejected")
			}
		}
	})
	if feUseADX {
		b.Run("verifyDigest/generic", func(b *testing.B) {
			feUseADX = false
			defer func() { feUseADX = true }()
			for b.Loop() {
				if !k256VerifyDigest(qt, &h, &sc.r, &sc.s) {
					b.Fatal("rejected")
				}
			}
		})
	}
	var u secp256k1.Scalar
	u.SetBytes(&h)
	b.Run("glvSplit", func(b *testing.B) {
		for b.Loop() {
			glvSplit(&u)
		}
	})
	k1, _, _, _ := glvSplit(&u)
	b.Run("wnaf", func(b *testing.B) {
		for b.Loop() {
			var out [wnafLen]int16
			wnaf(&out, &k1, k256WindowQ, false)
		}
	})
	p := jacPoint{x: k256G.x, y: k256G.y, z: fe{1}}
	b.Run("jacDouble", func(b *testing.B) {
		for b.Loop() {
			jacDouble(&p, &p)
		}
	})
	tbl := k256VerifyTables()
	b.Run("addAffineVar", func(b *testing.B) {
		inf := false
		for b.Loop() {
			addAffineVar(&p, &inf, &tbl.g[5])
		}
	})
	b.Run("newQTable", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newK256QTable(&key.pub.uncompressed)
		}
	})
}
