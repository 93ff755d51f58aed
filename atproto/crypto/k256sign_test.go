package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
	"gitlab.com/yawning/secp256k1-voi/secec"
)

var (
	bigP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(0x1000003d1))
	bigN = new(big.Int).SetBytes(orderK256.n[:])
	two  = new(big.Int).Lsh(big.NewInt(1), 256)
)

func limbsToBig(l [4]uint64) *big.Int {
	b := new(big.Int)
	for i := 3; i >= 0; i-- {
		b.Lsh(b, 64)
		b.Or(b, new(big.Int).SetUint64(l[i]))
	}
	return b
}

func bigToLimbs(b *big.Int) [4]uint64 {
	var buf [32]byte
	b.FillBytes(buf[:])
	return limbsOf(&buf)
}

func mustHex32(t testing.TB, s string) *[32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	return (*[32]byte)(b)
}

// interestingValues returns edge cases below 2^256 for the field tests,
// including non-canonical ones (p and above), then random ones.
func interestingValues(r *mrand.Rand, random int) []*big.Int {
	vals := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(0x1000003d1)}
	for _, d := range []int64{-2, -1, 0, 1, 2} {
		vals = append(vals, new(big.Int).Add(bigP, big.NewInt(d)))
		vals = append(vals, new(big.Int).Add(bigN, big.NewInt(d)))
	}
	vals = append(vals, new(big.Int).Sub(two, big.NewInt(1)), new(big.Int).Sub(two, big.NewInt(0x1000003d1)),
		new(big.Int).Lsh(big.NewInt(1), 255), new(big.Int).Lsh(big.NewInt(1), 128))
	for range random {
		var b [32]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		switch r.IntN(4) {
		case 0: // mostly ones
			for i := range 24 {
				b[i] = 0xff
			}
		case 1: // mostly zeros
			for i := range 24 {
				b[i] = 0
			}
		}
		vals = append(vals, new(big.Int).SetBytes(b[:]))
	}
	return vals
}

func TestK256FieldArithmetic(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	vals := interestingValues(r, 300)
	type impl struct {
		name          string
		add, sub, mul func(z, a, b *fe)
		sqr           func(z, a *fe)
	}
	impls := []impl{
		{"generic", feAddGeneric, feSubGeneric, feMulGeneric, feSqrGeneric},
		{"dispatch", feAdd, feSub, feMul, feSqr},
	}
	t.Logf("feUseADX = %v", feUseADX)
	check := func(t *testing.T, op string, a, b *big.Int, got fe, want *big.Int) {
		t.Helper()
		want = new(big.Int).Mod(want, bigP)
		g := limbsToBig(got)
		if g.Cmp(two) >= 0 || new(big.Int).Mod(g, bigP).Cmp(want) != 0 {
			t.Fatalf("%s(%x, %x) = %x, want %x mod p", op, a, b, g, want)
		}
	}
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			for _, a := range vals {
				fa := fe(bigToLimbs(a))
				for _, b := range vals[:60] {
					fb := fe(bigToLimbs(b))
					var z fe
					im.add(&z, &fa, &fb)
					check(t, "add", a, b, z, new(big.Int).Add(a, b))
					im.sub(&z, &fa, &fb)
					check(t, "sub", a, b, z, new(big.Int).Sub(a, b))
					im.mul(&z, &fa, &fb)
					check(t, "mul", a, b, z, new(big.Int).Mul(a, b))
					// Aliasing.
					z = fa
					im.mul(&z, &z, &fb)
					check(t, "mul (aliased)", a, b, z, new(big.Int).Mul(a, b))
				}
				var z fe
				im.sqr(&z, &fa)
				check(t, "sqr", a, a, z, new(big.Int).Mul(a, a))
			}
		})
	}

	for _, a := range vals {
		fa := fe(bigToLimbs(a))
		var z fe
		feNeg(&z, &fa)
		check(t, "neg", a, a, z, new(big.Int).Neg(a))
		feMulSmall(&z, &fa, 21)
		check(t, "mulSmall", a, a, z, new(big.Int).Mul(a, big.NewInt(21)))
		feHalf(&z, &fa)
		feAddGeneric(&z, &z, &z)
		check(t, "2 half", a, a, z, a)
		feNormalize(&z, &fa)
		if limbsToBig(z).Cmp(new(big.Int).Mod(a, bigP)) != 0 {
			t.Fatalf("normalize(%x) = %x", a, limbsToBig(z))
		}
		feInv(&z, &fa)
		am := new(big.Int).Mod(a, bigP)
		want := new(big.Int)
		if am.Sign() != 0 {
			want.ModInverse(am, bigP)
		}
		check(t, "inv", a, a, z, want)
	}
}

func TestModInverseVartime(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	pl := feP
	for _, m := range []*big.Int{bigN, bigP} {
		ml := bigToLimbs(m)
		md := newInvModulus(&ml)
		if m.Cmp(bigP) == 0 && [4]uint64(pl) != ml {
			t.Fatal("feP does not match p")
		}
		xs := []*big.Int{big.NewInt(1), big.NewInt(2), big.NewInt(3),
			new(big.Int).Sub(m, big.NewInt(1)), new(big.Int).Sub(m, big.NewInt(2)),
			new(big.Int).Rsh(m, 1), new(big.Int).Add(new(big.Int).Rsh(m, 1), big.NewInt(1)),
			new(big.Int).Lsh(big.NewInt(1), 255), new(big.Int).Lsh(big.NewInt(1), 62), new(big.Int).Lsh(big.NewInt(1), 124)}
		for _, v := range interestingValues(r, 5000) {
			v.Mod(v, m)
			if v.Sign() != 0 {
				xs = append(xs, v)
			}
		}
		for _, x := range xs {
			xl := bigToLimbs(x)
			got := limbsToBig(modInverseVartime(&xl, md))
			if want := new(big.Int).ModInverse(x, m); got.Cmp(want) != 0 {
				t.Fatalf("1/%x mod %x = %x, want %x", x, m, got, want)
			}
		}
	}
}

func TestInvertBlinded(t *testing.T) {
	var zero, ones [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	blinds := []*[32]byte{&zero, &ones, &orderK256.n, mustHex32(t, "0000000000000000000000000000000000000000000000000000000000000001")}
	for range 20 {
		var b [32]byte
		rand.Read(b[:])
		blinds = append(blinds, &b)
	}
	for i := range 200 {
		var kb [32]byte
		rand.Read(kb[:])
		if i < 2 {
			kb = [32]byte{31: byte(i + 1)}
		}
		k, _ := secp256k1.NewScalarFromBytes(&kb)
		if k.IsZero() == 1 {
			continue
		}
		want := secp256k1.NewScalar().Invert(k)
		var got secp256k1.Scalar
		invertBlinded(&got, k, blinds[i%len(blinds)])
		if got.Equal(want) != 1 {
			t.Fatalf("invertBlinded(%x) = %x, want %x", k.Bytes(), got.Bytes(), want.Bytes())
		}
	}
}

// testBlind is a fixed blinding value for benchmarks.
var testBlind = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}

// blindFor returns blinding bytes for the i-th test call: random ones,
// and every tenth an edge case (zero, p, 2^256-1), which the code must
// handle (by substituting 1, or reducing mod p).
func blindFor(i int) *[32]byte {
	var b [32]byte
	switch i % 30 {
	case 0:
	case 10:
		bigP.FillBytes(b[:])
	case 20:
		for j := range b {
			b[j] = 0xff
		}
	default:
		rand.Read(b[:])
	}
	return &b
}

// voiX returns the x-coordinate of k*G computed by secp256k1-voi.
func voiX(t testing.TB, k *big.Int) []byte {
	t.Helper()
	var kb [32]byte
	k.FillBytes(kb[:])
	s, err := secp256k1.NewScalarFromCanonicalBytes(&kb)
	if err != nil {
		t.Fatal(err)
	}
	x, err := secp256k1.NewIdentityPoint().ScalarBaseMult(s).XBytes()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestK256BaseTable(t *testing.T) {
	tbl := k256Table()
	for i := range 64 {
		for j := range 8 {
			k := new(big.Int).Lsh(big.NewInt(int64(j+1)), uint(4*i))
			var kb [32]byte
			k.FillBytes(kb[:])
			s, _ := secp256k1.NewScalarFromCanonicalBytes(&kb)
			want := secp256k1.NewIdentityPoint().ScalarBaseMult(s).UncompressedBytes()
			var x, y [32]byte
			feBytes(&x, &tbl[i][j].x)
			feBytes(&y, &tbl[i][j].y)
			if !bytes.Equal(want[1:33], x[:]) || !bytes.Equal(want[33:], y[:]) {
				t.Fatalf("table[%d][%d] = (%x, %x), want %x", i, j, x, y, want)
			}
			if tbl[i][j].x != fe(limbsOf(&x)) || tbl[i][j].y != fe(limbsOf(&y)) {
				t.Fatalf("table[%d][%d] is not canonical", i, j)
			}
		}
	}
}

func TestK256BaseMultX(t *testing.T) {
	half := new(big.Int).Rsh(bigN, 1)
	ks := []*big.Int{big.NewInt(1), big.NewInt(2), big.NewInt(8), big.NewInt(9), big.NewInt(15), big.NewInt(16), big.NewInt(17),
		new(big.Int).Sub(bigN, big.NewInt(1)), new(big.Int).Sub(bigN, big.NewInt(2)),
		half, new(big.Int).Add(half, big.NewInt(1)), new(big.Int).Sub(half, big.NewInt(1)),
		new(big.Int).Lsh(big.NewInt(1), 252), new(big.Int).Lsh(big.NewInt(1), 255),
		new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))}
	// Digit patterns: all 8s (a carry at every position), all 7s, all Fs,
	// alternating, and single non-zero digits at each position.
	for _, pat := range []string{"8", "7", "f", "9", "80", "08", "f0", "0f", "78"} {
		s := ""
		for len(s) < 64 {
			s += pat
		}
		k, _ := new(big.Int).SetString(s[:64], 16)
		k.Mod(k, bigN)
		ks = append(ks, k)
		k2, _ := new(big.Int).SetString(s[:63], 16)
		ks = append(ks, k2)
	}
	for i := range 64 {
		for _, d := range []int64{1, 7, 8, 9, 15} {
			k := new(big.Int).Lsh(big.NewInt(d), uint(4*i))
			if k.Cmp(bigN) < 0 {
				ks = append(ks, k, new(big.Int).Sub(bigN, k))
			}
		}
	}
	for range 300 {
		k, _ := rand.Int(rand.Reader, bigN)
		if k.Sign() != 0 {
			ks = append(ks, k)
		}
	}
	for i, k := range ks {
		kl := bigToLimbs(k)
		var got [32]byte
		if !k256BaseMultX(&got, &kl, blindFor(i)) {
			t.Fatalf("k256BaseMultX(%x) reports a fault", k)
		}
		if want := voiX(t, k); !bytes.Equal(got[:], want) {
			t.Fatalf("x(%x G) = %x, want %x", k, got, want)
		}
	}
}

func TestK256BaseMultXGeneric(t *testing.T) {
	if !feUseADX {
		t.Skip("the generic field code is already what runs")
	}
	feUseADX = false
	defer func() { feUseADX = true }()
	for i := range 50 {
		k, _ := rand.Int(rand.Reader, bigN)
		if k.Sign() == 0 {
			continue
		}
		kl := bigToLimbs(k)
		var got [32]byte
		if !k256BaseMultX(&got, &kl, blindFor(i)) {
			t.Fatalf("k256BaseMultX(%x) reports a fault", k)
		}
		if want := voiX(t, k); !bytes.Equal(got[:], want) {
			t.Fatalf("x(%x G) = %x, want %x", k, got, want)
		}
	}
}

// The expected signatures below are deterministic RFC 6979 (HMAC-SHA256)
// ECDSA over SHA-256 of the message, low-S, computed independently with
// github.com/decred/dcrd/dcrec/secp256k1/v4 (ecdsa.SignCompact). The first
// one is the widely published key-1 "Satoshi Nakamoto" vector.
var rfc6979Vectors = []struct{ key, msg, sig string }{
	{"0000000000000000000000000000000000000000000000000000000000000001", "Satoshi Nakamoto", "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d82442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5"},
	{"0000000000000000000000000000000000000000000000000000000000000001", "sample", "58db657bcd631038bea07b4941172f0167aca98f12b55e3176bd1c35435d65013a78e73d8ff8ab554e13c10f6390d81a882f91945d6275493882676170b53a57"},
	{"0000000000000000000000000000000000000000000000000000000000000001", "", "77c8d336572f6f466055b5f70f433851f8f535f6c4fc71133a6cfd71079d03b70ed9f5eb8aa5b266abac35d416c3207e7a538bf5f37649727d7a9823b1069577"},
	{"0000000000000000000000000000000000000000000000000000000000000001", "All those moments will be lost in time, like tears in rain. Time to die...", "8600dbd41e348fe5c9465ab92d23e3db8b98b873beecd930736488696438cb6b547fe64427496db33bf66019dacbf0039c04199abb0122918601db38a72cfc21"},
	{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "Satoshi Nakamoto", "fd567d121db66e382991534ada77a6bd3106f0a1098c231e47993447cd6af2d06b39cd0eb1bc8603e159ef5c20a5c8ad685a45b06ce9bebed3f153d10d93bed5"},
	{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "sample", "cc7c4b3ead174e1dcc27848877adb23e41df74e365f5a8ac7106b930e061f0d227916deb83f42167970ab2efab2787323875d5e7fbb033dc1950ec2f4869fdba"},
	{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "", "ea045bf0962ecc4d5aa84c8e716c87c9d5f49fba8e1ff0300ab2631de3d83b4351270ec8105346fddf35da5958d99ff55a0c0f720d6ae7f3e3eadd40a9ccfe0e"},
	{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "All those moments will be lost in time, like tears in rain. Time to die...", "059385ce615b7ab6a0db2a3b83f0566d3bc750e958121635ba497ccb4e3ce801391bf93814fda99c98014ada8567dd7c067a50ac0a7ef7aa613b87e0eec17eb5"},
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "Satoshi Nakamoto", "032a850249b329e2a03c4d2c7eb6d5053054902f6b2aad3555097c5ea058ff94452fae0efcd58effefac198404d55dfb8eda447cd01041eca4fe7f6e2f97b48a"},
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "sample", "432310e32cb80eb6503a26ce83cc165c783b870845fb8aad6d970889fcd7a6c8530128b6b81c548874a6305d93ed071ca6e05074d85863d4056ce89b02bfab69"},
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "", "725f4086bb24a2617205d2594c7dd8644b1e3329b90144ba65cea39cc9bff45d2b5457da4e41448045d484fc5ef401e13ebe92e46f7d8620e855a7625fbec41a"},
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "All those moments will be lost in time, like tears in rain. Time to die...", "92dd32a5992cd3ff8ed508fa29cf817cd50d928fc02e1bfa1199569afd54bdf97889ca4d0bfa28e20da45792be41773f3ebf310146981469aeb2dbfdd0b28524"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "Satoshi Nakamoto", "79a26de9b72367ecb6056899e05200a14d5fda02f6fdd3e728ccafdc7e2d8cf61276465177c4f4e3e38eafd922dbf9b93c81592b699c69658ddfc00d41f48c7f"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "sample", "91a4a05da81ab4b78e8871374ab9a5d816c3fa0b76da9400363da8f09f66af2870d1aa297f567c5ba067d4c9bd6780ce2abf8153ab8c191033d153bdef1908ef"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "", "bcc6041d251cdffe1fd821eee86c0e4a5c5610e69cd81bbfaeafac391c8cce4b76f6e74801f0a6b29e0bd03a96863c8226e1699b7ba3eeed2eaf0e75e6f4e5b3"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "All those moments will be lost in time, like tears in rain. Time to die...", "50445604cd433e9cb9b5ffe17621cd3a5711c99f4ee1bb19d92fc9421b918f1a2d62075b09db2f4e8bd4fe946fe7657ea0ce8aa05e3dc0dd93b808051b0e3589"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "Satoshi Nakamoto", "74859db3f0f1d668d316b3f7b81bad53d58dd51bd471f837948940a7277af70357c466e336f1b905ee71bd8aab59ba3560bdc76c1a3606624e9391c22d558f8b"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "sample", "e8a558fba8a7667f8f687bac17e5253af83943e4af24b17fc4fb54ea5cfb82ab4bf2579c5e8d8d7b6e381e63a1a7f8cd98f338645f3390f0eadce097b1b4e245"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "", "abf6d5fc099a738944afa491783ea0abf3981959808850d86d167853fdeafd022dfb6f08fdb7c7d583022761d2ac3734ae81b6185c28783ff114ad0390a6d163"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "All those moments will be lost in time, like tears in rain. Time to die...", "56a85e89071eaaf97806a6d6f2df4a2cbd4cb8600b56b14542f516708a64e831652adc250ccd6c7c653f1a7ba4e7f2cfd432f1a108f590e6b00e33b1dfd93d93"},
}

// With 32 bytes of extra data (RFC 6979 section 3.6, as libsecp256k1's
// ndata): the nonce from decred's secp256k1.NonceRFC6979(key, hash, extra,
// nil, 0) and the low-S signature made with it (math/big arithmetic).
var rfc6979ExtraVectors = []struct{ key, msg, extra, nonce, sig string }{
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "Satoshi Nakamoto", "0000000000000000000000000000000000000000000000000000000000000001", "8b0486c88d4b59e9c3d0ea920f244f16eb73f012821bcee08cdfa79b404f72cd", "b3c9b4e37402c48471d869f0d76d46f5c6097e46c3111e59e162eaed8c7bbaa31c3857c62f940c61600687b7e795c8c348e2d753ef1052bb5778a510fecd23ad"},
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "sample", "0000000000000000000000000000000000000000000000000000000000000001", "f347545e6af311c5cfefa9dcc1c5afe4f338b1b024d558eef8228705dca36a83", "3ded82d32da1b5e12b3a145f073c5c42dd83fac07c55be141f27f63517c2f44d25aa9f7db8e1d2da9a113b354a206b848c43f225ccb70d42ed95e7cbe70bb7aa"},
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "Satoshi Nakamoto", "9d3a6ef3ab5e9d0b6f3f6c1e35f0df5e59d95e3ab0a4b7e0a3c2d1f0e9d8c7b6", "98ca08611c8deb81e0460cdac19c2d8ba6378f0d622a388df10039add52bf7d7", "c734edaa15492fd4fc7dbdada1e63ec526bd03168a8c4be230086f0911e7ed7206d9258dcbc61f823194a08e7ed9aa496c29a03fc89fa98013423c5c9c58b8c7"},
	{"c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", "sample", "9d3a6ef3ab5e9d0b6f3f6c1e35f0df5e59d95e3ab0a4b7e0a3c2d1f0e9d8c7b6", "0333f08b4cc075e7e2e5ab62702815297108ee5ac1f9a16577b52ecd417d0e84", "178c1ee3e66920d9c61c509f208729f93265ca6ab2f1d3a2a0a06418402d37425b661a82643a4e06a6b751fd1abd161a1e32be2486eaef954565f8652ee832c8"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "Satoshi Nakamoto", "0000000000000000000000000000000000000000000000000000000000000001", "e8d44cbafd6ded26e915c3eb81edc1a00af68c310340919ecf6a670788e3aed3", "7b98ea1f9224628c6fdda9d8e5bd8cea0647a4f5ae10a4c5ca41cbf6ad4520355ae3a3910eaacd3e634c58424ca0094f589ca8bc5ef4e4e8cc4d11cfca2c032e"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "sample", "0000000000000000000000000000000000000000000000000000000000000001", "99ab9cc09e13e2d77ef5c7fb9a8a26c47a4f244c5ad80be79dafe850c87f3151", "c03456f8ff353576f240cd36be44a4a01446e09148d97c3210697f3180c739743a8d215cc7ac105311d5fa68c6c66562e830a4771d9b91ed19ecaaef4955a8f6"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "Satoshi Nakamoto", "9d3a6ef3ab5e9d0b6f3f6c1e35f0df5e59d95e3ab0a4b7e0a3c2d1f0e9d8c7b6", "fd0592e1f8762806f8783127f222375c333c9dcc1a6dcc1708f85c586f521887", "c593c23f3143118c6a5c5eafc094e385bf44840a261a191ef9c7ba721b5df92f145ba3f628222bf4698571ce1eae8291d930e79cf2cf0f2f66a35a7271c53907"},
	{"3c11160b1a25342f3e49505b676a7d747f898a989da6b6b0c3c9d0dfe4ebf8f1", "sample", "9d3a6ef3ab5e9d0b6f3f6c1e35f0df5e59d95e3ab0a4b7e0a3c2d1f0e9d8c7b6", "8731147529d70dc6f109414aa8c008a7208f1cc03f1dde0235deae5befaca9f6", "b5b20f8f89427e153e92ab92f7ce0c7a34dbd6d04c27e0af19bf36cd375e09765c9edc00cb6d68c4754ac178d3cd02627c6061572d1361c7d667d06b060f8162"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "Satoshi Nakamoto", "0000000000000000000000000000000000000000000000000000000000000001", "d9724b0cd790114f4085e1eace2649d3c30de4da30c8a25980d0fd09947baceb", "8cf844553f702e5ee10ae1e2e27b65ec24c7ee115b4ad49c354c03a065a4b25f692500166ca914e2240da826c64a6e8939c8a926b46614bcfcc68545750939fa"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "sample", "0000000000000000000000000000000000000000000000000000000000000001", "f52715209db3f5796ada69ea6ed9b7a8f4bac4691f254e58ddc8523958a74f05", "5d87d3b83ad8b177a7edd3aacdad244a0d372694566ca1b9985fe514b3b5fe3b56b73b64f7eb5b03b7bd00c5ab7fce70c9c7a1f665d78a2f09991cbe81d47016"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "Satoshi Nakamoto", "9d3a6ef3ab5e9d0b6f3f6c1e35f0df5e59d95e3ab0a4b7e0a3c2d1f0e9d8c7b6", "bfcf3312f3f25c92f0dee8166af1fdbc92eb2d93dd766f1b31a10b7ed6ce7ccc", "7e89ba8f6b08eba07b0e41a5dda91faa0aee964ecdd86990d93c5d4ef5f3f6c94d344683a2d50634379ee5a08000b8f2a6642cea10c02890a53806b969d17617"},
	{"e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", "sample", "9d3a6ef3ab5e9d0b6f3f6c1e35f0df5e59d95e3ab0a4b7e0a3c2d1f0e9d8c7b6", "087e580ccd1f3972181a1c0e9283614846352f4901cfe21c4ceea349bf435d6f", "3ea518f9bd25789c2fbd979017f9a1a54eacb9c8cb8a57d57e4f8be82d8eb5a74630cf181bb6ff2385aa829c2ddd1cd0424c9fe04219baa77ed528181fdfee8d"},
}

// mustSignK256 is signK256 with the key's scalar, failing the test on an
// error (which only a fault can cause).
func mustSignK256(t testing.TB, k *privateKeyK256, h *[32]byte, extra []byte) [64]byte {
	t.Helper()
	sig, err := signK256(k.d, &k.raw, h, extra)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func parseK256(t testing.TB, keyHex string) *privateKeyK256 {
	t.Helper()
	b, _ := hex.DecodeString(keyHex)
	k, err := ParsePrivateBytesK256(b)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*privateKeyK256)
}

func TestK256RFC6979Vectors(t *testing.T) {
	for _, v := range rfc6979Vectors {
		k := parseK256(t, v.key)
		h := sha256.Sum256([]byte(v.msg))
		sig := mustSignK256(t, k, &h, nil)
		if got := hex.EncodeToString(sig[:]); got != v.sig {
			t.Errorf("key %s, message %q: signature %s, want %s", v.key, v.msg, got, v.sig)
		}
		if err := k.Public().HashAndVerify([]byte(v.msg), sig[:]); err != nil {
			t.Errorf("key %s, message %q: %v", v.key, v.msg, err)
		}
	}
}

func TestK256RFC6979ExtraData(t *testing.T) {
	for _, v := range rfc6979ExtraVectors {
		k := parseK256(t, v.key)
		h := sha256.Sum256([]byte(v.msg))
		extra, _ := hex.DecodeString(v.extra)
		var drbg rfc6979
		drbg.init(&k.raw, &h, extra)
		if nonce := drbg.next(); hex.EncodeToString(nonce[:]) != v.nonce {
			t.Errorf("key %s, message %q, extra %s: nonce %x, want %s", v.key, v.msg, v.extra, nonce, v.nonce)
		}
		sig := mustSignK256(t, k, &h, extra)
		if got := hex.EncodeToString(sig[:]); got != v.sig {
			t.Errorf("key %s, message %q, extra %s: signature %s, want %s", v.key, v.msg, v.extra, got, v.sig)
		}
	}
}

// TestK256RFC6979Reject checks the DRBG's path for a refused candidate
// (step h.3), which real nonces take with probability about 2^-128, against
// RFC 6979's own description, by running the same steps with crypto/hmac.
func TestK256RFC6979Reject(t *testing.T) {
	var x, h [32]byte
	x[31] = 1
	var d rfc6979
	d.init(&x, &h, nil)
	d.next()
	d.reject()
	got := d.next()

	mac := func(key []byte, parts ...[]byte) []byte {
		var k [32]byte
		copy(k[:], key)
		var out [32]byte
		hmacSHA256(&out, &k, parts...)
		return out[:]
	}
	v := bytes.Repeat([]byte{1}, 32)
	k := make([]byte, 32)
	k = mac(k, v, []byte{0}, x[:], h[:])
	v = mac(k, v)
	k = mac(k, v, []byte{1}, x[:], h[:])
	v = mac(k, v)
	v = mac(k, v) // first candidate
	k = mac(k, v, []byte{0})
	v = mac(k, v)
	v = mac(k, v) // second candidate
	if !bytes.Equal(got[:], v) {
		t.Fatalf("second candidate %x, want %x", got, v)
	}
}

func TestHMACSHA256(t *testing.T) {
	// RFC 4231 test case 2 has a short key; use a 32-byte key checked
	// against crypto/hmac instead, at every message length the DRBG uses.
	var key [32]byte
	for i := range key {
		key[i] = byte(i * 7)
	}
	for n := 0; n <= 160; n++ {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i)
		}
		var got [32]byte
		hmacSHA256(&got, &key, msg[:n/2], msg[n/2:])
		if want := stdHMAC(key[:], msg); !bytes.Equal(got[:], want) {
			t.Fatalf("length %d: %x, want %x", n, got, want)
		}
	}
}

func stdHMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func TestK256SignProperties(t *testing.T) {
	key, err := GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	k := key.(*privateKeyK256)
	pub := k.Public()
	voiPub, err := secec.NewPublicKey(pub.UncompressedBytes())
	if err != nil {
		t.Fatal(err)
	}
	strictVoi := &secec.ECDSAOptions{Encoding: secec.EncodingCompact, RejectMalleable: true}
	seen := map[string]bool{}
	for i := range 300 {
		msg := fmt.Appendf(nil, "message %d", i)
		sig, err := k.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 64 {
			t.Fatalf("signature length %d", len(sig))
		}
		if orderK256.isHigh((*[32]byte)(sig[32:])) {
			t.Fatalf("high S: %x", sig)
		}
		if err := pub.HashAndVerify(msg, sig); err != nil {
			t.Fatalf("strict verification: %v", err)
		}
		h := sha256.Sum256(msg)
		if !voiPub.Verify(h[:], sig, strictVoi) {
			t.Fatalf("secp256k1-voi rejects %x", sig)
		}
		if err := pub.HashAndVerify(append(msg, 'x'), sig); err == nil {
			t.Fatal("signature verifies for another message")
		}
		if seen[string(sig)] || seen[string(sig[:32])] {
			t.Fatalf("repeated signature or r: %x", sig)
		}
		seen[string(sig)] = true
		seen[string(sig[:32])] = true

		// Deterministic without extra data, and the randomness changes
		// the signature.
		d1 := mustSignK256(t, k, &h, nil)
		d2 := mustSignK256(t, k, &h, nil)
		if d1 != d2 {
			t.Fatal("deterministic signing is not deterministic")
		}
		if bytes.Equal(d1[:], sig) {
			t.Fatal("hedged signature equals the deterministic one")
		}
	}
	// The same message signed twice gives two different signatures.
	msg := []byte("same message")
	a, _ := k.HashAndSign(msg)
	b, _ := k.HashAndSign(msg)
	if bytes.Equal(a, b) {
		t.Fatal("two hedged signatures of one message are equal")
	}
}

// TestK256SignManyKeys signs with many random keys, including tiny and
// huge scalars, and checks each signature with secp256k1-voi.
func TestK256SignManyKeys(t *testing.T) {
	var keys [][]byte
	for _, s := range []string{
		"0000000000000000000000000000000000000000000000000000000000000001",
		"0000000000000000000000000000000000000000000000000000000000000002",
		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140",
		"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0",
		"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1",
	} {
		b, _ := hex.DecodeString(s)
		keys = append(keys, b)
	}
	for range 100 {
		b := make([]byte, 32)
		rand.Read(b)
		keys = append(keys, b)
	}
	strictVoi := &secec.ECDSAOptions{Encoding: secec.EncodingCompact, RejectMalleable: true}
	for i, kb := range keys {
		key, err := ParsePrivateBytesK256(kb)
		if err != nil {
			continue // out of range
		}
		voiPub, err := secec.NewPublicKey(key.Public().UncompressedBytes())
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Appendf(nil, "key %d", i)
		sig, err := key.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(msg)
		if !voiPub.Verify(h[:], sig, strictVoi) {
			t.Fatalf("key %x: secp256k1-voi rejects %x", kb, sig)
		}
		if err := key.Public().HashAndVerify(msg, sig); err != nil {
			t.Fatalf("key %x: %v", kb, err)
		}
	}
}

// TestK256SignConcurrent signs with one key from several goroutines at
// once, the first signatures of the process among them (the table is built
// on first use).
func TestK256SignConcurrent(t *testing.T) {
	key, err := GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 20 {
				msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
				sig, err := key.HashAndSign(msg)
				if err == nil {
					err = key.Public().HashAndVerify(msg, sig)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
