package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
	"gitlab.com/yawning/secp256k1-voi/secec"
)

// Differential tests and fuzz targets for the K-256 signer: every piece is
// compared with an independent implementation (math/big, secp256k1-voi,
// crypto/hmac). The field tests run every implementation this build can
// reach (fieldImpls, per architecture), calling the assembly directly
// rather than through the CPU dispatch.

// fieldImpl is one implementation of the four basic field operations.
type fieldImpl struct {
	name          string
	add, sub, mul func(z, a, b *fe)
	sqr           func(z, a *fe)
}

// pad32 returns the first 32 bytes of b, zero-padded at the end.
func pad32(b []byte) *[32]byte {
	var out [32]byte
	copy(out[:], b)
	return &out
}

func feToBig(a *fe) *big.Int { return limbsToBig([4]uint64(*a)) }

// checkFieldOps runs every field operation on a and b with every reachable
// implementation and compares the results with math/big modulo p. It
// returns a description of the first mismatch, or "".
func checkFieldOps(a, b *[32]byte, small uint64) string {
	var fa, fb fe
	feSetBytes(&fa, a)
	feSetBytes(&fb, b)
	ba, bb := new(big.Int).SetBytes(a[:]), new(big.Int).SetBytes(b[:])
	modP := func(x *big.Int) *big.Int { return x.Mod(x, bigP) }
	eq := func(got *fe, want *big.Int) bool {
		// Limbs are always below 2^256; they need only be congruent.
		return modP(feToBig(got)).Cmp(modP(new(big.Int).Set(want))) == 0
	}
	fail := func(impl, op string, got *fe, want *big.Int) string {
		return impl + ": " + op + "(" + ba.Text(16) + ", " + bb.Text(16) + ") = " +
			feToBig(got).Text(16) + ", want " + modP(new(big.Int).Set(want)).Text(16) + " mod p"
	}

	wantAdd := new(big.Int).Add(ba, bb)
	wantSub := new(big.Int).Sub(ba, bb)
	wantMul := new(big.Int).Mul(ba, bb)
	wantSqrA := new(big.Int).Mul(ba, ba)
	wantSqrB := new(big.Int).Mul(bb, bb)
	wantDblA := new(big.Int).Add(ba, ba)

	// The reference for limb-for-limb agreement between implementations:
	// the assembly is documented to take the same reduction steps.
	var refs [6]fe
	for n, im := range fieldImpls() {
		var res [6]fe
		im.add(&res[0], &fa, &fb)
		im.sub(&res[1], &fa, &fb)
		im.mul(&res[2], &fa, &fb)
		im.sqr(&res[3], &fa)
		im.sqr(&res[4], &fb)
		im.add(&res[5], &fa, &fa)
		for i, w := range []*big.Int{wantAdd, wantSub, wantMul, wantSqrA, wantSqrB, wantDblA} {
			if !eq(&res[i], w) {
				return fail(im.name, []string{"add", "sub", "mul", "sqrA", "sqrB", "dbl"}[i], &res[i], w)
			}
		}
		if n == 0 {
			refs = res
		} else if res != refs {
			return im.name + ": limbs differ from the generic code for " + ba.Text(16) + ", " + bb.Text(16)
		}

		// Aliased outputs.
		z := fa
		im.mul(&z, &z, &fb)
		if !eq(&z, wantMul) {
			return fail(im.name, "mul (z = a)", &z, wantMul)
		}
		z = fb
		im.mul(&z, &fa, &z)
		if !eq(&z, wantMul) {
			return fail(im.name, "mul (z = b)", &z, wantMul)
		}
		z = fa
		im.sqr(&z, &z)
		if !eq(&z, wantSqrA) {
			return fail(im.name, "sqr (z = a)", &z, wantSqrA)
		}
		z = fa
		im.add(&z, &z, &z)
		if !eq(&z, wantDblA) {
			return fail(im.name, "add (z = a = b)", &z, wantDblA)
		}
		z = fa
		im.sub(&z, &z, &fb)
		if !eq(&z, wantSub) {
			return fail(im.name, "sub (z = a)", &z, wantSub)
		}
		z = fb
		im.sub(&z, &fa, &z)
		if !eq(&z, wantSub) {
			return fail(im.name, "sub (z = b)", &z, wantSub)
		}
	}

	// The operations that exist once, on the dispatching primitives.
	var z fe
	feNeg(&z, &fa)
	if w := new(big.Int).Neg(ba); !eq(&z, w) {
		return fail("dispatch", "neg", &z, w)
	}
	small &= 1<<31 - 1
	feMulSmall(&z, &fa, small)
	if w := new(big.Int).Mul(ba, new(big.Int).SetUint64(small)); !eq(&z, w) {
		return fail("dispatch", "mulSmall", &z, w)
	}
	feHalf(&z, &fa)
	if twice := new(big.Int).Lsh(feToBig(&z), 1); modP(twice).Cmp(modP(new(big.Int).Set(ba))) != 0 {
		return fail("generic", "half", &z, new(big.Int).Rsh(ba, 1))
	}
	feNormalize(&z, &fa)
	if w := modP(new(big.Int).Set(ba)); feToBig(&z).Cmp(w) != 0 {
		return fail("dispatch", "normalize", &z, w)
	}
	var enc [32]byte
	feBytes(&enc, &fa)
	if w := modP(new(big.Int).Set(ba)); new(big.Int).SetBytes(enc[:]).Cmp(w) != 0 {
		return "feBytes(" + ba.Text(16) + ") is not canonical"
	}
	feInv(&z, &fa)
	wantInv := new(big.Int)
	if am := modP(new(big.Int).Set(ba)); am.Sign() != 0 {
		wantInv.ModInverse(am, bigP)
	}
	if !eq(&z, wantInv) {
		return fail("dispatch", "inv", &z, wantInv)
	}
	feSelect(&z, &fa, &fb, 0)
	if z != fa {
		return "feSelect(m = 0) did not pick a"
	}
	feSelect(&z, &fa, &fb, ^uint64(0))
	if z != fb {
		return "feSelect(m = ones) did not pick b"
	}

	// The 512-bit reduction on its own, on all inputs (the products only
	// reach values below (2^256-1)^2).
	t := [8]uint64{fa[0], fa[1], fa[2], fa[3], fb[0], fb[1], fb[2], fb[3]}
	feReduce512(&z, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7])
	if w := new(big.Int).Add(ba, new(big.Int).Lsh(bb, 256)); !eq(&z, w) {
		return fail("generic", "reduce512", &z, w)
	}
	return ""
}

// fieldSeeds are edge values for the field tests, as 32-byte strings.
func fieldSeeds() [][32]byte {
	var out [][32]byte
	vals := interestingValues(mrand.New(mrand.NewPCG(5, 6)), 0)
	for _, pr := range finalCarryPairs()[:3] {
		vals = append(vals, pr[0], pr[1])
	}
	for _, v := range vals {
		var b [32]byte
		v.FillBytes(b[:])
		out = append(out, b)
	}
	return out
}

func FuzzK256Field(f *testing.F) {
	seeds := fieldSeeds()
	for i, a := range seeds {
		for j, b := range seeds {
			if (i+j)%3 == 0 {
				f.Add(append(append(a[:], b[:]...), byte(i), byte(j), 0, 0))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 64 {
			data = append(data, make([]byte, 64-len(data))...)
		}
		small := uint64(0)
		if len(data) >= 68 {
			small = uint64(binary.LittleEndian.Uint32(data[64:]))
		}
		if msg := checkFieldOps(pad32(data[:32]), pad32(data[32:64]), small); msg != "" {
			t.Fatal(msg)
		}
	})
}

// TestK256FieldLimbPatterns runs the field checks on values whose limbs
// are drawn from carry-provoking patterns (all ones, one, 2^63, p's limbs,
// ...), where random bytes rarely go: these are what exercise the second
// folds and final carries of the reductions.
func TestK256FieldLimbPatterns(t *testing.T) {
	limbs := []uint64{0, 1, 2, 0x3d1, feC, feC - 1, 1 << 32, 1 << 63, 1<<63 - 1, 1<<64 - 1, 1<<64 - 2,
		1<<64 - feC, 1<<64 - feC - 1, feP[0], feP[0] + 1, feP[0] - 1, 0xffffffff00000000, 0x00000000ffffffff}
	r := mrand.New(mrand.NewPCG(7, 8))
	val := func() *[32]byte {
		var b [32]byte
		for i := range 4 {
			binary.BigEndian.PutUint64(b[8*i:], limbs[r.IntN(len(limbs))])
		}
		return &b
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		if msg := checkFieldOps(val(), val(), r.Uint64()); msg != "" {
			t.Fatal(msg)
		}
	}
}

// finalCarryPairs returns pairs (p - A, p - B), that is -A and -B, with
// A*B in [2^64, 2^64 + 0x1000003d1): their product's reduction is the
// rare case where the last fold carries out of the low limb (into the
// second), which random inputs reach with probability about 2^-224. The
// first pair, -2^32 and itself, does the same for squaring.
func finalCarryPairs() [][2]*big.Int {
	var out [][2]*big.Int
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	neg := func(x *big.Int) *big.Int { return new(big.Int).Sub(bigP, x) }
	for k := 32; k >= 0; k-- {
		a := new(big.Int).Lsh(big.NewInt(1), uint(k))
		for _, extra := range []int64{0, 1, 977} {
			// b = ceil(2^64 / a) + extra, kept while a*b is in range.
			b := new(big.Int).Add(two64, new(big.Int).Sub(a, big.NewInt(1)))
			b.Div(b, a)
			b.Add(b, big.NewInt(extra))
			ab := new(big.Int).Mul(a, b)
			if ab.Cmp(two64) >= 0 && ab.Cmp(new(big.Int).Add(two64, big.NewInt(feC))) < 0 {
				out = append(out, [2]*big.Int{neg(a), neg(b)})
			}
		}
	}
	a := big.NewInt(3)
	b := new(big.Int).Div(new(big.Int).Add(two64, big.NewInt(2)), a)
	return append(out, [2]*big.Int{neg(a), neg(b)})
}

func TestK256FieldFinalCarry(t *testing.T) {
	pairs := finalCarryPairs()
	if len(pairs) < 30 {
		t.Fatalf("only %d pairs", len(pairs))
	}
	for _, pr := range pairs {
		var a, b [32]byte
		pr[0].FillBytes(a[:])
		pr[1].FillBytes(b[:])
		if msg := checkFieldOps(&a, &b, 3); msg != "" {
			t.Fatal(msg)
		}
		if msg := checkFieldOps(&b, &a, 3); msg != "" {
			t.Fatal(msg)
		}
	}
}

// checkBaseMult compares k256BaseMultX with secp256k1-voi for the scalar
// (mod n) in kb, with every reachable field implementation, and
// k256AffineX on other Jacobian representations of the same point.
func checkBaseMult(t *testing.T, kb, blind *[32]byte, lambda *[32]byte) {
	t.Helper()
	var sc secp256k1.Scalar
	sc.SetBytes(kb)
	if sc.IsZero() == 1 {
		return
	}
	k := new(big.Int).SetBytes(sc.Bytes())
	want := voiX(t, k)
	kl := bigToLimbs(k)

	run := func(name string) {
		var got [32]byte
		if !k256BaseMultX(&got, &kl, blind) {
			t.Fatalf("%s: k256BaseMultX(%x) reports a fault", name, k)
		}
		if !bytes.Equal(got[:], want) {
			t.Fatalf("%s: x(%x G) = %x, want %x", name, k, got, want)
		}
		// n - k has the same x-coordinate.
		nk := bigToLimbs(new(big.Int).Sub(bigN, k))
		if !k256BaseMultX(&got, &nk, blind) || !bytes.Equal(got[:], want) {
			t.Fatalf("%s: x((n - %x) G) = %x, want %x", name, k, got, want)
		}
	}
	run("dispatch")
	if feUseADX {
		feUseADX = false
		func() {
			defer func() { feUseADX = true }()
			run("generic")
		}()
	}

	// The same point as (l^2 x, l^3 y, l) for some l != 0, with limbs
	// not necessarily canonical.
	pt := secp256k1.NewIdentityPoint().ScalarBaseMult(&sc).UncompressedBytes()
	var x, y, l, l2, l3 fe
	feSetBytes(&x, (*[32]byte)(pt[1:33]))
	feSetBytes(&y, (*[32]byte)(pt[33:65]))
	feSetBytes(&l, lambda)
	var ln fe
	feNormalize(&ln, &l)
	if ln == (fe{}) {
		return
	}
	feSqr(&l2, &l)
	feMul(&l3, &l2, &l)
	var p jacPoint
	feMul(&p.x, &x, &l2)
	feMul(&p.y, &y, &l3)
	p.z = l
	var got [32]byte
	if !k256AffineX(&got, &p, blind) || !bytes.Equal(got[:], want) {
		t.Fatalf("k256AffineX of %x G with Z = %x gives %x, want %x", k, l, got, want)
	}
}

func FuzzK256BaseMult(f *testing.F) {
	// A few digit patterns and edge scalars; k is read mod n.
	for _, s := range []string{
		"01", "08", "09", "10", "11", "ff",
		"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0",
		"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1",
		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140",
		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142",
		"8888888888888888888888888888888888888888888888888888888888888888",
		"7777777777777777777777777777777777777777777777777777777777777777",
		"0808080808080808080808080808080808080808080808080808080808080808",
	} {
		k, _ := new(big.Int).SetString(s, 16)
		var kb [32]byte
		k.FillBytes(kb[:])
		f.Add(kb[:], []byte{}, []byte{2})
	}
	f.Add([]byte{1}, bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0xff}, 32))
	pb := bigP.Bytes()
	f.Add([]byte{3}, pb, pb)
	f.Fuzz(func(t *testing.T, kb, blind, lambda []byte) {
		// Scalars shorter than 32 bytes are right-aligned (small values).
		var k [32]byte
		if len(kb) > 32 {
			kb = kb[:32]
		}
		copy(k[32-len(kb):], kb)
		checkBaseMult(t, &k, pad32(blind), pad32(lambda))
	})
}

func FuzzK256Inverse(f *testing.F) {
	for _, v := range interestingValues(mrand.New(mrand.NewPCG(5, 6)), 0) {
		var b [32]byte
		v.FillBytes(b[:])
		f.Add(b[:], []byte{})
	}
	f.Fuzz(func(t *testing.T, xb, blind []byte) {
		x := pad32(xb)
		xl := limbsOf(x)
		bx := new(big.Int).SetBytes(x[:])
		for _, m := range []struct {
			name string
			big  *big.Int
			md   *invModulus
		}{{"n", bigN, k256NInv}, {"p", bigP, k256PInv}} {
			xm := new(big.Int).Mod(bx, m.big)
			if xm.Sign() == 0 && bx.Sign() != 0 {
				continue // x = m: outside the documented domain
			}
			// The documented domain is [1, m), but unreduced x below
			// 2^256 and 0 (giving 0) work too; callers rely on neither.
			got := limbsToBig(modInverseVartime(&xl, m.md))
			want := new(big.Int)
			if xm.Sign() != 0 {
				want.ModInverse(xm, m.big)
			}
			if got.Cmp(want) != 0 {
				t.Fatalf("1/%x mod %s = %x, want %x", bx, m.name, got, want)
			}
		}

		// The blinded scalar inversion, for x mod n.
		var k secp256k1.Scalar
		k.SetBytes(x)
		if k.IsZero() == 0 {
			var got secp256k1.Scalar
			invertBlinded(&got, &k, pad32(blind))
			if got.Equal(secp256k1.NewScalar().Invert(&k)) != 1 {
				t.Fatalf("invertBlinded(%x, blind %x) = %x", k.Bytes(), blind, got.Bytes())
			}
		}
	})
}

// refNonces is RFC 6979 section 3.2 (with the section 3.6 extra data)
// written out again with crypto/hmac and math/big, independently of the
// rfc6979 type, for secp256k1 and SHA-256: it returns the candidate
// nonces in order.
func refNonces(x, h *big.Int, extra []byte) func() *big.Int {
	mac := func(key []byte, parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	var xo, ho [32]byte
	x.FillBytes(xo[:])
	new(big.Int).Mod(h, bigN).FillBytes(ho[:]) // bits2octets
	v := bytes.Repeat([]byte{1}, 32)
	k := make([]byte, 32)
	k = mac(k, v, []byte{0}, xo[:], ho[:], extra)
	v = mac(k, v)
	k = mac(k, v, []byte{1}, xo[:], ho[:], extra)
	v = mac(k, v)
	first := true
	return func() *big.Int {
		for {
			if !first {
				k = mac(k, v, []byte{0})
				v = mac(k, v)
			}
			first = false
			v = mac(k, v)
			if c := new(big.Int).SetBytes(v); c.Sign() > 0 && c.Cmp(bigN) < 0 {
				return c
			}
		}
	}
}

// refSignK256 is ECDSA over secp256k1 in math/big, with voi for k*G and
// refNonces for k: the low-S compact signature signK256 should produce.
func refSignK256(t *testing.T, d *big.Int, h *[32]byte, extra []byte) [64]byte {
	next := refNonces(d, new(big.Int).SetBytes(h[:]), extra)
	e := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), bigN)
	halfN := new(big.Int).Rsh(bigN, 1)
	for {
		k := next()
		r := new(big.Int).SetBytes(voiX(t, k))
		r.Mod(r, bigN)
		if r.Sign() == 0 {
			continue
		}
		s := new(big.Int).Mul(r, d)
		s.Add(s, e)
		s.Mul(s, new(big.Int).ModInverse(k, bigN))
		s.Mod(s, bigN)
		if s.Sign() == 0 {
			continue
		}
		if s.Cmp(halfN) > 0 {
			s.Sub(bigN, s)
		}
		var sig [64]byte
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
}

func FuzzK256Sign(f *testing.F) {
	f.Add([]byte{1}, []byte("Satoshi Nakamoto"), []byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 32), []byte(""), bytes.Repeat([]byte{0xff}, 32))
	f.Add(orderK256.halfN[:], []byte("sample"), []byte{1})
	f.Add(orderK256.n[:], []byte("x"), []byte{})
	f.Fuzz(func(t *testing.T, kb, msg, extraIn []byte) {
		var raw [32]byte
		if len(kb) > 32 {
			kb = kb[:32]
		}
		copy(raw[32-len(kb):], kb)
		key, err := ParsePrivateBytesK256(raw[:])
		if err != nil {
			return // zero or not below n
		}
		k := key.(*privateKeyK256)
		var extra []byte
		if len(extraIn) >= 32 {
			extra = extraIn[:32]
		}
		h := sha256.Sum256(msg)

		sig, err := signK256(k.d, &k.raw, &h, extra)
		if err != nil {
			t.Fatal(err)
		}
		if want := refSignK256(t, new(big.Int).SetBytes(raw[:]), &h, extra); sig != want {
			t.Fatalf("key %x, message %x, extra %x: signature %x, want %x", raw, msg, extra, sig, want)
		}

		// The hedged signature from the public API: not reproducible, so
		// check it with both verifiers and for low S.
		hedged, err := key.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		voiPub, err := secec.NewPublicKey(key.Public().UncompressedBytes())
		if err != nil {
			t.Fatal(err)
		}
		strict := &secec.ECDSAOptions{Encoding: secec.EncodingCompact, RejectMalleable: true}
		for _, s := range [][]byte{sig[:], hedged} {
			if orderK256.isHigh((*[32]byte)(s[32:])) {
				t.Fatalf("high S: %x", s)
			}
			if !voiPub.Verify(h[:], s, strict) {
				t.Fatalf("secp256k1-voi rejects %x", s)
			}
			if err := key.Public().HashAndVerify(msg, s); err != nil {
				t.Fatalf("strict verification of %x: %v", s, err)
			}
		}
	})
}

// TestK256AffineXFaultCheck corrupts one bit of a correct Jacobian point
// at a time and checks that k256AffineX reports it.
func TestK256AffineXFaultCheck(t *testing.T) {
	r := mrand.New(mrand.NewPCG(11, 12))
	for i := range 20 {
		var kb, lb [32]byte
		for j := range kb {
			kb[j], lb[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		sc, _ := secp256k1.NewScalar().SetBytes(&kb)
		pt := secp256k1.NewIdentityPoint().ScalarBaseMult(sc).UncompressedBytes()
		var x, y, l, l2, l3 fe
		feSetBytes(&x, (*[32]byte)(pt[1:33]))
		feSetBytes(&y, (*[32]byte)(pt[33:65]))
		feSetBytes(&l, &lb)
		feSqr(&l2, &l)
		feMul(&l3, &l2, &l)
		var good jacPoint
		feMul(&good.x, &x, &l2)
		feMul(&good.y, &y, &l3)
		good.z = l
		var out [32]byte
		if !k256AffineX(&out, &good, blindFor(i)) || !bytes.Equal(out[:], pt[1:33]) {
			t.Fatalf("correct point rejected or wrong x")
		}
		for c := range 3 {
			for bit := 0; bit < 256; bit += 17 {
				bad := good
				coord := [3]*fe{&bad.x, &bad.y, &bad.z}[c]
				coord[bit/64] ^= 1 << (bit % 64)
				if k256AffineX(&out, &bad, blindFor(i)) {
					t.Fatalf("coordinate %d, bit %d flipped: not detected", c, bit)
				}
			}
		}
	}
}

// TestK256SignFaultInjection corrupts the precomputed table in memory (a
// stand-in for a fault in the point arithmetic) and checks that signing
// refuses to return a signature, then that it recovers once the table is
// restored. Not parallel-safe: it modifies the shared table.
func TestK256SignFaultInjection(t *testing.T) {
	key, err := GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	tbl := k256Table()
	saved := *tbl
	func() {
		defer func() { *tbl = saved }()
		for i := range tbl {
			for j := range tbl[i] {
				tbl[i][j].y[0] ^= 1 << 5
			}
		}
		for i := range 20 {
			msg := []byte{byte(i)}
			sig, err := key.HashAndSign(msg)
			if !errors.Is(err, errK256Fault) {
				t.Fatalf("signing with a corrupted table: signature %x, error %v", sig, err)
			}
			if sig != nil {
				t.Fatalf("signature returned with the error")
			}
		}
	}()
	msg := []byte("after")
	sig, err := key.HashAndSign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Public().HashAndVerify(msg, sig); err != nil {
		t.Fatal(err)
	}
}
