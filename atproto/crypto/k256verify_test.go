package crypto

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"testing"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
	"gitlab.com/yawning/secp256k1-voi/secec"
)

// Tests of the K-256 verifier (k256verify.go) against math/big and
// secp256k1-voi: its constants derived again from p, n and G, each piece
// on its own, and whole verifications, including signatures built to land
// on the cases the point formulas get wrong unless handled (equal and
// opposite points, infinity) and on x(R) = r + n.

// voiScalar returns v mod n as a secp256k1-voi scalar.
func voiScalar(v *big.Int) *secp256k1.Scalar {
	var b [32]byte
	new(big.Int).Mod(v, bigN).FillBytes(b[:])
	s, _ := secp256k1.NewScalarFromBytes(&b)
	return s
}

// voiMul returns v*P, or v*G for a nil P.
func voiMul(v *big.Int, p *secp256k1.Point) *secp256k1.Point {
	if p == nil {
		return secp256k1.NewIdentityPoint().ScalarBaseMult(voiScalar(v))
	}
	return secp256k1.NewIdentityPoint().ScalarMult(voiScalar(v), p)
}

// affineOf returns the affine coordinates of a point not at infinity.
func affineOf(p *secp256k1.Point) affinePoint {
	unc := p.UncompressedBytes()
	var a affinePoint
	feSetBytes(&a.x, (*[32]byte)(unc[1:33]))
	feSetBytes(&a.y, (*[32]byte)(unc[33:65]))
	return a
}

// jacToAffineRef converts a Jacobian point with math/big.
func jacToAffineRef(p *jacPoint) (x, y *big.Int) {
	z := new(big.Int).Mod(feToBig(&p.z), bigP)
	zi := new(big.Int).ModInverse(z, bigP)
	zi2 := new(big.Int).Mul(zi, zi)
	x = new(big.Int).Mul(feToBig(&p.x), zi2)
	y = new(big.Int).Mul(feToBig(&p.y), zi2.Mul(zi2, zi))
	return x.Mod(x, bigP), y.Mod(y, bigP)
}

// samePoint reports whether the Jacobian p is the voi point want.
func samePoint(p *jacPoint, want *secp256k1.Point) bool {
	x, y := jacToAffineRef(p)
	unc := want.UncompressedBytes()
	return x.Cmp(new(big.Int).SetBytes(unc[1:33])) == 0 && y.Cmp(new(big.Int).SetBytes(unc[33:65])) == 0
}

// glvRef holds the endomorphism constants derived from first principles.
type glvRef struct {
	beta, lambda           *big.Int
	a1, b1, a2, b2, g1, g2 *big.Int
}

// deriveGLV computes beta and lambda as cube roots of unity, pairs them
// by checking lambda G = (beta x, y), and finds the short lattice basis
// by the extended Euclidean algorithm on (n, lambda), as in Gallant,
// Lambert and Vanstone's paper.
func deriveGLV(t testing.TB) *glvRef {
	t.Helper()
	cubeRoot := func(m *big.Int) *big.Int {
		e := new(big.Int).Div(new(big.Int).Sub(m, big.NewInt(1)), big.NewInt(3))
		for g := int64(2); ; g++ {
			r := new(big.Int).Exp(big.NewInt(g), e, m)
			if r.Cmp(big.NewInt(1)) != 0 {
				return r
			}
		}
	}
	ref := new(glvRef)
	b := cubeRoot(bigP)
	l := cubeRoot(bigN)
	gx := feToBig(&k256G.x)
	// Of lambda and lambda^2, one goes with beta; take the one matching
	// the code's lambda if it is either (the other is checked to fail).
	for _, lam := range []*big.Int{l, new(big.Int).Exp(l, big.NewInt(2), bigN)} {
		for _, bet := range []*big.Int{b, new(big.Int).Exp(b, big.NewInt(2), bigP)} {
			x := new(big.Int).SetBytes(voiMul(lam, nil).UncompressedBytes()[1:33])
			if x.Cmp(new(big.Int).Mod(new(big.Int).Mul(bet, gx), bigP)) == 0 {
				if ref.lambda == nil || lam.Cmp(limbsToBig(scalarLimbs(glvLambda))) == 0 {
					ref.lambda, ref.beta = lam, bet
				}
			}
		}
	}
	if ref.lambda == nil {
		t.Fatal("no (beta, lambda) pair found")
	}

	// r_i = s_i n + t_i lambda; the basis comes from where r_i drops
	// below sqrt(n).
	sq := new(big.Int).Sqrt(bigN)
	rs := []*big.Int{new(big.Int).Set(bigN), new(big.Int).Set(ref.lambda)}
	ts := []*big.Int{big.NewInt(0), big.NewInt(1)}
	for rs[len(rs)-1].Sign() != 0 {
		i := len(rs) - 1
		q := new(big.Int).Div(rs[i-1], rs[i])
		rs = append(rs, new(big.Int).Sub(rs[i-1], new(big.Int).Mul(q, rs[i])))
		ts = append(ts, new(big.Int).Sub(ts[i-1], new(big.Int).Mul(q, ts[i])))
	}
	last := 0
	for i, r := range rs {
		if r.Cmp(sq) >= 0 {
			last = i
		}
	}
	norm := func(a, b *big.Int) *big.Int {
		return new(big.Int).Add(new(big.Int).Mul(a, a), new(big.Int).Mul(b, b))
	}
	ref.a1, ref.b1 = rs[last+1], new(big.Int).Neg(ts[last+1])
	ref.a2, ref.b2 = rs[last], new(big.Int).Neg(ts[last])
	if a3, b3 := rs[last+2], new(big.Int).Neg(ts[last+2]); norm(a3, b3).Cmp(norm(ref.a2, ref.b2)) < 0 {
		ref.a2, ref.b2 = a3, b3
	}
	det := new(big.Int).Sub(new(big.Int).Mul(ref.a1, ref.b2), new(big.Int).Mul(ref.a2, ref.b1))
	if det.CmpAbs(bigN) != 0 {
		t.Fatalf("basis determinant %x is not +-n", det)
	}
	if det.Sign() < 0 {
		ref.a2.Neg(ref.a2)
		ref.b2.Neg(ref.b2)
	}
	// round(2^384 b / n) for b > 0.
	round := func(b *big.Int) *big.Int {
		num := new(big.Int).Lsh(b, 385)
		num.Add(num, bigN)
		return num.Div(num, new(big.Int).Lsh(bigN, 1))
	}
	ref.g1 = round(ref.b2)
	ref.g2 = round(new(big.Int).Neg(ref.b1))
	return ref
}

func TestK256VerifyConstants(t *testing.T) {
	ref := deriveGLV(t)
	one := big.NewInt(1)
	if new(big.Int).Exp(ref.lambda, big.NewInt(3), bigN).Cmp(one) != 0 || ref.lambda.Cmp(one) == 0 {
		t.Fatal("lambda is not a non-trivial cube root of unity mod n")
	}
	if new(big.Int).Exp(ref.beta, big.NewInt(3), bigP).Cmp(one) != 0 || ref.beta.Cmp(one) == 0 {
		t.Fatal("beta is not a non-trivial cube root of unity mod p")
	}
	eq := func(name string, got, want *big.Int) {
		t.Helper()
		if got.Cmp(want) != 0 {
			t.Errorf("%s = %x, want %x", name, got, want)
		}
	}
	eq("lambda", limbsToBig(scalarLimbs(glvLambda)), ref.lambda)
	eq("beta", feToBig(&k256Beta), ref.beta)
	// lambda (x, y) = (beta x, y) on another point than G.
	p := voiMul(big.NewInt(0xabcdef), nil)
	lp := affineOf(secp256k1.NewIdentityPoint().ScalarMult(glvLambda, p))
	pa := affineOf(p)
	var bx fe
	feMul(&bx, &pa.x, &k256Beta)
	feNormalize(&bx, &bx)
	if bx != lp.x || pa.y != lp.y {
		t.Error("lambda P is not (beta x, y)")
	}
	for i, v := range [][2]*big.Int{{ref.a1, ref.b1}, {ref.a2, ref.b2}} {
		s := new(big.Int).Add(v[0], new(big.Int).Mul(v[1], ref.lambda))
		if s.Mod(s, bigN).Sign() != 0 {
			t.Errorf("basis vector %d is not in the lattice", i+1)
		}
	}
	eq("-b1", limbsToBig(scalarLimbs(glvMinusB1)), new(big.Int).Neg(ref.b1))
	eq("-b2 mod n", limbsToBig(scalarLimbs(glvMinusB2)), new(big.Int).Mod(new(big.Int).Neg(ref.b2), bigN))
	eq("g1", limbsToBig(glvG1), ref.g1)
	eq("g2", limbsToBig(glvG2), ref.g2)
	eq("p - n", limbsToBig(k256PMinusN), new(big.Int).Sub(bigP, bigN))
	t.Logf("a1 %x b1 %x a2 %x b2 %x", ref.a1, ref.b1, ref.a2, ref.b2)
}

func TestMulShift384(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 8))
	vals := interestingValues(r, 200)
	for i, a := range vals {
		b := vals[(i*7+3)%len(vals)]
		got := mulShift384((*[4]uint64)(ptrLimbs(a)), (*[4]uint64)(ptrLimbs(b)))
		want := new(big.Int).Mul(a, b)
		want.Add(want, new(big.Int).Lsh(big.NewInt(1), 383))
		want.Rsh(want, 384)
		if limbsToBig(got).Cmp(want) != 0 {
			t.Fatalf("round(%x * %x / 2^384) = %x, want %x", a, b, limbsToBig(got), want)
		}
	}
}

func ptrLimbs(v *big.Int) *[4]uint64 {
	l := bigToLimbs(v)
	return &l
}

// checkGLVSplit checks glvSplit(k) against k with math/big and returns
// the larger bit length of the two halves.
func checkGLVSplit(t *testing.T, k *big.Int) int {
	t.Helper()
	k1, neg1, k2, neg2 := glvSplit(voiScalar(k))
	b1, b2 := limbsToBig(k1), limbsToBig(k2)
	if neg1 {
		b1.Neg(b1)
	}
	if neg2 {
		b2.Neg(b2)
	}
	sum := new(big.Int).Mul(b2, limbsToBig(scalarLimbs(glvLambda)))
	sum.Add(sum, b1).Sub(sum, k).Mod(sum, bigN)
	if sum.Sign() != 0 {
		t.Fatalf("glvSplit(%x) = (%x, %x): k1 + k2 lambda != k", k, b1, b2)
	}
	return max(b1.BitLen(), b2.BitLen())
}

func TestK256GLVSplit(t *testing.T) {
	ref := deriveGLV(t)
	r := mrand.New(mrand.NewPCG(9, 10))
	vals := interestingValues(r, 2000)
	half := new(big.Int).Rsh(bigN, 1)
	vals = append(vals, half, new(big.Int).Add(half, big.NewInt(1)), ref.lambda,
		new(big.Int).Sub(bigN, ref.lambda), ref.a1, ref.a2, new(big.Int).Neg(ref.b1))
	// Values near where b2 k / n and -b1 k / n are half-integers, where
	// the rounding of c1 and c2 may go either way.
	for i := int64(1); i < 200; i++ {
		for _, b := range []*big.Int{ref.b2, new(big.Int).Neg(ref.b1)} {
			k := new(big.Int).Mul(big.NewInt(2*i+1), bigN)
			k.Div(k, new(big.Int).Lsh(b, 1))
			vals = append(vals, k, new(big.Int).Add(k, big.NewInt(1)))
		}
	}
	longest := 0
	for _, k := range vals {
		longest = max(longest, checkGLVSplit(t, new(big.Int).Mod(k, bigN)))
	}
	// The halves are below 2^128 (see glvSplit); the verifier is only
	// slower, not wrong, if they are longer.
	if longest > 128 {
		t.Fatalf("a half has %d bits, want at most 128", longest)
	}
	t.Logf("longest half: %d bits", longest)
}

// checkWNAF checks the width-w NAF of k.
func checkWNAF(t *testing.T, k *big.Int, w uint, neg bool) {
	t.Helper()
	var out [wnafLen]int16
	kl := bigToLimbs(k)
	top := wnaf(&out, &kl, w, neg)
	sum := new(big.Int)
	last := -int(w) // position of the previous non-zero digit
	highest := -1
	for i := len(out) - 1; i >= 0; i-- {
		sum.Lsh(sum, 1)
		sum.Add(sum, big.NewInt(int64(out[i])))
	}
	for i, d := range out {
		if d == 0 {
			continue
		}
		if d%2 == 0 || int(d) >= 1<<(w-1) || int(d) <= -(1<<(w-1)) {
			t.Fatalf("wnaf(%x, %d): digit %d at %d", k, w, d, i)
		}
		if i-last < int(w) {
			t.Fatalf("wnaf(%x, %d): digits at %d and %d are too close", k, w, last, i)
		}
		last, highest = i, i
	}
	if top != highest+1 {
		t.Fatalf("wnaf(%x, %d) returned %d, highest digit at %d", k, w, top, highest)
	}
	if neg {
		sum.Neg(sum)
	}
	if sum.Cmp(k) != 0 {
		t.Fatalf("wnaf(%x, %d) sums to %x", k, w, sum)
	}
}

func TestK256WNAF(t *testing.T) {
	r := mrand.New(mrand.NewPCG(11, 12))
	vals := interestingValues(r, 300)
	vals = append(vals, big.NewInt(3), big.NewInt(255), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 129), big.NewInt(1)))
	for _, k := range vals {
		for w := uint(2); w <= 16; w++ {
			checkWNAF(t, k, w, w%2 == 0)
		}
	}
}

func TestK256VerifyTables(t *testing.T) {
	gt := k256VerifyTables()
	g128 := voiMul(new(big.Int).Lsh(big.NewInt(1), 128), nil)
	for i := range gt.g {
		m := big.NewInt(int64(2*i + 1))
		if gt.g[i] != affineOf(voiMul(m, nil)) {
			t.Fatalf("G table entry %d is not %d G (or not canonical)", i, m)
		}
		if gt.g128[i] != affineOf(voiMul(m, g128)) {
			t.Fatalf("2^128 G table entry %d is not %d 2^128 G (or not canonical)", i, m)
		}
	}
	q := voiMul(big.NewInt(0x1234567), nil)
	qt := newK256QTable((*[65]byte)(q.UncompressedBytes()))
	for i := range qt {
		if qt[i] != affineOf(voiMul(big.NewInt(int64(2*i+1)), q)) {
			t.Fatalf("Q table entry %d is wrong", i)
		}
	}
}

// scaledJac returns p in Jacobian form with Z = z.
func scaledJac(p affinePoint, z uint64) jacPoint {
	zf := fe{z, z * 3, 0, z << 20}
	var z2, z3 fe
	feSqr(&z2, &zf)
	feMul(&z3, &z2, &zf)
	var j jacPoint
	feMul(&j.x, &p.x, &z2)
	feMul(&j.y, &p.y, &z3)
	j.z = zf
	return j
}

func TestAddAffineVar(t *testing.T) {
	p := voiMul(big.NewInt(1234567), nil)
	q := voiMul(big.NewInt(7654321), nil)
	pa, qa := affineOf(p), affineOf(q)
	var negP affinePoint
	negP.x = pa.x
	feNeg(&negP.y, &pa.y)
	for _, z := range []uint64{1, 2, 0xdeadbeef} {
		// At infinity: the sum is the point added.
		var acc jacPoint
		inf := true
		addAffineVar(&acc, &inf, &pa)
		if inf || !samePoint(&acc, p) {
			t.Fatal("infinity + P != P")
		}
		// P + Q.
		acc, inf = scaledJac(pa, z), false
		addAffineVar(&acc, &inf, &qa)
		if inf || !samePoint(&acc, secp256k1.NewIdentityPoint().Add(p, q)) {
			t.Fatalf("P + Q wrong (z = %d)", z)
		}
		// P + P.
		acc, inf = scaledJac(pa, z), false
		addAffineVar(&acc, &inf, &pa)
		if inf || !samePoint(&acc, secp256k1.NewIdentityPoint().Double(p)) {
			t.Fatalf("P + P wrong (z = %d)", z)
		}
		// P + (-P).
		acc, inf = scaledJac(pa, z), false
		addAffineVar(&acc, &inf, &negP)
		if !inf {
			t.Fatalf("P + (-P) is not infinity (z = %d)", z)
		}
		// A doubling of a scaled point.
		acc = scaledJac(qa, z)
		jacDouble(&acc, &acc)
		if !samePoint(&acc, secp256k1.NewIdentityPoint().Double(q)) {
			t.Fatalf("2Q wrong (z = %d)", z)
		}
	}
	// Non-canonical limbs for zero differences: Z = p + 1 (= 1), so
	// that U2 - X1 and S2 - Y1 can come out as p rather than 0.
	acc := jacPoint{x: pa.x, y: pa.y}
	acc.z = feP
	acc.z[0]++
	inf := false
	addAffineVar(&acc, &inf, &pa)
	if inf || !samePoint(&acc, secp256k1.NewIdentityPoint().Double(p)) {
		t.Fatal("P + P with non-canonical Z wrong")
	}
}

// verifyRef runs k256VerifyDigest with every reachable field
// implementation, fails the test if they disagree with each other or with
// secp256k1-voi (when r and s are in range), and returns the verdict.
func verifyRef(t *testing.T, q *secp256k1.Point, digest *[32]byte, r, s *big.Int) bool {
	t.Helper()
	unc := q.UncompressedBytes()
	qt := newK256QTable((*[65]byte)(unc))
	var rb, sb [32]byte
	if r.Sign() < 0 || r.BitLen() > 256 || s.Sign() < 0 || s.BitLen() > 256 {
		t.Fatalf("test bug: r or s out of 256 bits")
	}
	r.FillBytes(rb[:])
	s.FillBytes(sb[:])
	got := k256VerifyDigest(qt, digest, &rb, &sb)
	if feUseADX {
		feUseADX = false
		generic := k256VerifyDigest(qt, digest, &rb, &sb)
		feUseADX = true
		if generic != got {
			t.Fatalf("generic field code says %v, assembly %v", generic, got)
		}
	}
	inRange := r.Sign() > 0 && r.Cmp(bigN) < 0 && s.Sign() > 0 && s.Cmp(bigN) < 0
	if !inRange {
		if got {
			t.Fatalf("accepted r = %x, s = %x out of range", r, s)
		}
		return false
	}
	pub, err := secec.NewPublicKey(unc)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := secp256k1.NewScalarFromCanonicalBytes(&rb)
	ss, _ := secp256k1.NewScalarFromCanonicalBytes(&sb)
	if want := pub.VerifyRaw(digest[:], rs, ss); got != want {
		t.Fatalf("verify(Q %x, e %x, r %x, s %x) = %v, secp256k1-voi says %v", unc, digest, r, s, got, want)
	}
	return got
}

// sigFor builds a signature (r, s) and digest e for the key Q such that
// verification computes exactly R = u1 G + u2 Q (u2 != 0 mod n): s =
// r/u2 and e = u1 s, with r = x(R) mod n, or rInf when R is at infinity.
// It reports false if r would be 0.
func sigFor(q *secp256k1.Point, u1, u2, rInf *big.Int) (digest [32]byte, r, s *big.Int, ok bool) {
	rp := secp256k1.NewIdentityPoint().DoubleScalarMultBasepointVartime(voiScalar(u1), voiScalar(u2), q)
	if rp.IsIdentity() == 1 {
		r = new(big.Int).Mod(rInf, bigN)
	} else {
		x, _ := rp.XBytes()
		r = new(big.Int).SetBytes(x)
		r.Mod(r, bigN)
	}
	if r.Sign() == 0 {
		return digest, nil, nil, false
	}
	s = new(big.Int).ModInverse(new(big.Int).Mod(u2, bigN), bigN)
	s.Mul(s, r).Mod(s, bigN)
	e := new(big.Int).Mul(u1, s)
	e.Mod(e, bigN).FillBytes(digest[:])
	return digest, r, s, true
}

// refSign signs the digest with d and nonce k, with math/big and voi's
// base-point multiplication; s is left as it comes (high or low).
func refSign(d, k *big.Int, digest *[32]byte) (r, s *big.Int, ok bool) {
	x, _ := voiMul(k, nil).XBytes()
	r = new(big.Int).Mod(new(big.Int).SetBytes(x), bigN)
	e := new(big.Int).Mod(new(big.Int).SetBytes(digest[:]), bigN)
	s = new(big.Int).Mul(r, d)
	s.Add(s, e).Mul(s, new(big.Int).ModInverse(k, bigN)).Mod(s, bigN)
	return r, s, r.Sign() != 0 && s.Sign() != 0
}

// pointWithX returns a point whose x-coordinate is in [lo, lo + span),
// searching from lo + (start mod span).
func pointWithX(lo, span, start *big.Int) (*secp256k1.Point, *big.Int) {
	x := new(big.Int).Mod(start, span)
	for {
		var enc [33]byte
		enc[0] = 0x02
		xv := new(big.Int).Add(lo, x)
		xv.FillBytes(enc[1:])
		if p, err := secp256k1.NewIdentityPoint().SetCompressedBytes(enc[:]); err == nil {
			return p, xv
		}
		x.Add(x, big.NewInt(1))
		x.Mod(x, span)
	}
}

// sigWithR returns a key and a valid signature for the given u1 and u2
// (u2 != 0) whose R is the point rp: Q = (R - u1 G) / u2.
func sigWithR(rp *secp256k1.Point, u1, u2 *big.Int) (q *secp256k1.Point, digest [32]byte, r, s *big.Int, ok bool) {
	q = secp256k1.NewIdentityPoint().Subtract(rp, voiMul(u1, nil))
	q = voiMul(new(big.Int).ModInverse(new(big.Int).Mod(u2, bigN), bigN), q)
	if q.IsIdentity() == 1 {
		return nil, digest, nil, nil, false
	}
	digest, r, s, ok = sigFor(q, u1, u2, big.NewInt(1))
	return q, digest, r, s, ok
}

// largeXSig is sigWithR for an R whose x-coordinate is r + n (so r < p - n),
// searched from start.
func largeXSig(start, u1, u2 *big.Int) (q *secp256k1.Point, digest [32]byte, r, s *big.Int, ok bool) {
	// x in [n + 1, p): r = x - n is never 0.
	lo := new(big.Int).Add(bigN, big.NewInt(1))
	rp, x := pointWithX(lo, new(big.Int).Sub(bigP, lo), start)
	q, digest, r, s, ok = sigWithR(rp, u1, u2)
	if ok && new(big.Int).Add(r, bigN).Cmp(x) != 0 {
		panic("largeXSig: R is not the point chosen")
	}
	return q, digest, r, s, ok
}

func TestK256VerifyEdgeCases(t *testing.T) {
	ref := deriveGLV(t)
	lam := ref.lambda
	nm := func(v *big.Int) *big.Int { return new(big.Int).Sub(bigN, v) }
	u := new(big.Int).SetBytes(bytes.Repeat([]byte{0x5a, 0xc3, 0x17}, 11)[:32])
	u.Mod(u, bigN)
	neg := func(v *big.Int) *big.Int { return new(big.Int).Mod(new(big.Int).Neg(v), bigN) }

	type tc struct {
		name   string
		d      *big.Int // Q = d G
		u1, u2 *big.Int
		want   bool
	}
	// A scalar whose digits are the same in both windows (odd, below 16,
	// at least 10 apart): as u1 with Q = G, or as u2 with Q = 2^128 G and
	// u1 = 2^128 u2, the G part and the Q part add the same point at the
	// same step, and the sum meets an equal point (or, with -G, its
	// opposite) at every digit.
	sparse := big.NewInt(3)
	for _, pd := range [][2]int64{{17, 5}, {40, 9}, {60, 15}, {100, 7}, {126, 1}} {
		sparse.Add(sparse, new(big.Int).Lsh(big.NewInt(pd[1]), uint(pd[0])))
	}
	t128 := new(big.Int).Lsh(big.NewInt(1), 128)
	cases := []tc{
		{"Q = G, u1 = u2 = 1", big.NewInt(1), big.NewInt(1), big.NewInt(1), true},
		{"Q = G, u1 = u2 sparse", big.NewInt(1), sparse, sparse, true},
		{"Q = -G, u1 = u2 sparse", nm(big.NewInt(1)), sparse, sparse, false},
		{"Q = 2^128 G, u1 = 2^128 u2 sparse", t128, new(big.Int).Lsh(sparse, 128), sparse, true},
		{"Q = -2^128 G, u1 = 2^128 u2 sparse", nm(t128), new(big.Int).Lsh(sparse, 128), sparse, false},
		{"Q = G, u1 = u2", big.NewInt(1), u, u, true},
		{"Q = -G, u1 = u2", nm(big.NewInt(1)), u, u, false},
		// The same with a small difference left over.
		{"Q = -G, u1 = u2 + 5", nm(big.NewInt(1)), new(big.Int).Add(u, big.NewInt(5)), u, true},
		{"Q = -G, u1 = u2 - 2^130", nm(big.NewInt(1)), new(big.Int).Sub(u, new(big.Int).Lsh(big.NewInt(1), 130)), u, true},
		{"Q = lambda G, u1 = -lambda u2", lam, neg(new(big.Int).Mul(lam, u)), u, false},
		{"Q = lambda G, u1 = -lambda u2 + 1", lam, new(big.Int).Add(neg(new(big.Int).Mul(lam, u)), big.NewInt(1)), u, true},
		{"Q = -lambda G, u1 = lambda u2", nm(lam), new(big.Int).Mod(new(big.Int).Mul(lam, u), bigN), u, false},
		{"Q = lambda^2 G, u1 = lambda^2 u2", new(big.Int).Exp(lam, big.NewInt(2), bigN),
			new(big.Int).Exp(lam, big.NewInt(2), bigN).Mod(new(big.Int).Mul(new(big.Int).Exp(lam, big.NewInt(2), bigN), u), bigN), u, true},
		{"Q = 2^128 G, u1 = -2^128 u2", new(big.Int).Lsh(big.NewInt(1), 128), neg(new(big.Int).Lsh(u, 128)), u, false},
		{"Q = 2^128 G, u1 = 2^128 u2", new(big.Int).Lsh(big.NewInt(1), 128), new(big.Int).Mod(new(big.Int).Lsh(u, 128), bigN), u, true},
		// e = 0 mod n: no G term at all.
		{"u1 = 0", big.NewInt(0xabcdef), big.NewInt(0), u, true},
		{"u1 = 0, u2 = 1", big.NewInt(0xabcdef), big.NewInt(0), big.NewInt(1), true},
		{"u1 = u2 = 1", big.NewInt(3), big.NewInt(1), big.NewInt(1), true},
		{"u1 = n - 1, u2 = n - 1", big.NewInt(3), nm(big.NewInt(1)), nm(big.NewInt(1)), true},
		{"R at infinity", big.NewInt(0x1234567), neg(big.NewInt(0x1234567)), big.NewInt(1), false},
		{"R at infinity, random", new(big.Int).Add(u, big.NewInt(99)), neg(new(big.Int).Mul(u, new(big.Int).Add(u, big.NewInt(99)))), u, false},
	}
	for _, c := range cases {
		q := voiMul(c.d, nil)
		digest, r, s, ok := sigFor(q, c.u1, c.u2, big.NewInt(0x1111))
		if !ok {
			t.Fatalf("%s: r = 0", c.name)
		}
		if got := verifyRef(t, q, &digest, r, s); got != c.want {
			t.Errorf("%s: verify = %v, want %v", c.name, got, c.want)
		}
		if c.want {
			// -s gives -R, with the same x: still valid.
			if !verifyRef(t, q, &digest, r, nm(s)) {
				t.Errorf("%s: rejected with n - s", c.name)
			}
			// Another r is not.
			if verifyRef(t, q, &digest, new(big.Int).Mod(new(big.Int).Add(r, big.NewInt(1)), bigN), s) {
				t.Errorf("%s: accepted with r + 1", c.name)
			}
		}
	}

	// The digest is reduced mod n: a digest equal to n is e = 0.
	q := voiMul(big.NewInt(77), nil)
	digest, r, s, _ := sigFor(q, big.NewInt(0), u, nil)
	if digest != [32]byte{} {
		t.Fatal("e = 0 should give a zero digest")
	}
	var dn [32]byte
	bigN.FillBytes(dn[:])
	if !verifyRef(t, q, &dn, r, s) {
		t.Error("digest n (e = 0) rejected")
	}
	// And n + 1 is e = 1.
	var e1, dn1 [32]byte
	e1[31] = 1
	new(big.Int).Add(bigN, big.NewInt(1)).FillBytes(dn1[:])
	if r1, s1, ok := refSign(big.NewInt(77), u, &e1); !ok || !verifyRef(t, q, &dn1, r1, s1) {
		t.Error("digest n + 1 (e = 1) rejected")
	}

	// Out of range r and s are refused without any arithmetic.
	for _, rs := range [][2]*big.Int{{big.NewInt(0), s}, {r, big.NewInt(0)}, {bigN, s}, {r, bigN},
		{new(big.Int).Add(bigN, big.NewInt(1)), s}, {r, new(big.Int).Sub(two, big.NewInt(1))}} {
		verifyRef(t, q, &digest, rs[0], rs[1])
	}

	// x(R) = r + n, with r + n < p.
	for i, start := range []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(bigP, bigN), new(big.Int).Sub(bigP, big.NewInt(3)), u} {
		q, digest, r, s, ok := largeXSig(start, u, new(big.Int).Add(u, big.NewInt(int64(i+1))))
		if !ok {
			t.Fatal("largeXSig failed")
		}
		if !verifyRef(t, q, &digest, r, s) {
			t.Errorf("x(R) = r + n (r = %x) rejected", r)
		}
		if verifyRef(t, q, &digest, new(big.Int).Add(r, big.NewInt(1)), s) {
			t.Errorf("x(R) = r + n accepted with r + 1")
		}
		// u1 = 0 too.
		q, digest, r, s, ok = largeXSig(start, big.NewInt(0), u)
		if !ok || !verifyRef(t, q, &digest, r, s) {
			t.Errorf("x(R) = r + n with u1 = 0 rejected")
		}
	}
	// r < p - n with x(R) = r itself: the first comparison matches.
	for _, start := range []*big.Int{big.NewInt(1), u} {
		rp, x := pointWithX(big.NewInt(1), new(big.Int).Sub(bigP, bigN), start)
		q, digest, r, s, ok := sigWithR(rp, u, new(big.Int).Add(u, big.NewInt(3)))
		if !ok || r.Cmp(x) != 0 {
			t.Fatal("sigWithR failed")
		}
		if !verifyRef(t, q, &digest, r, s) {
			t.Errorf("x(R) = r = %x rejected", r)
		}
	}
}

// TestK256VerifyPublicAPI runs HashAndVerify and HashAndVerifyLenient on
// signatures from the reference signer, high and low S.
func TestK256VerifyPublicAPI(t *testing.T) {
	r := mrand.New(mrand.NewPCG(13, 14))
	for i := range 50 {
		d := randScalar(r)
		if d.Sign() == 0 {
			continue
		}
		var db [32]byte
		d.FillBytes(db[:])
		priv, err := ParsePrivateBytesK256(db[:])
		if err != nil {
			t.Fatal(err)
		}
		pub := priv.Public()
		msg := []byte{byte(i), 'm', 's', 'g'}
		h := sha256.Sum256(msg)
		k := randScalar(r)
		if k.Sign() == 0 {
			continue
		}
		rr, s, ok := refSign(d, k, &h)
		if !ok {
			continue
		}
		sig := make([]byte, 64)
		rr.FillBytes(sig[:32])
		high := s.Cmp(new(big.Int).Rsh(bigN, 1)) > 0
		low := new(big.Int).Set(s)
		if high {
			low.Sub(bigN, s)
		}
		hiS := new(big.Int).Sub(bigN, low)
		low.FillBytes(sig[32:])
		if err := pub.HashAndVerify(msg, sig); err != nil {
			t.Fatalf("low-S signature rejected: %v", err)
		}
		if err := pub.HashAndVerifyLenient(msg, sig); err != nil {
			t.Fatalf("lenient: low-S signature rejected: %v", err)
		}
		hs := bytes.Clone(sig)
		hiS.FillBytes(hs[32:])
		if err := pub.HashAndVerify(msg, hs); !errors.Is(err, ErrHighS) {
			t.Fatalf("high-S signature: %v, want ErrHighS", err)
		}
		if err := pub.HashAndVerifyLenient(msg, hs); err != nil {
			t.Fatalf("lenient: high-S signature rejected: %v", err)
		}
		if err := pub.HashAndVerify(append(msg, 0), sig); !errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrHighS) {
			t.Fatalf("other message: %v", err)
		}
	}
}

// randScalar returns a random scalar mod n (possibly 0).
func randScalar(r *mrand.Rand) *big.Int {
	var b [32]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return fuzzScalar(b[:])
}

// fuzzScalar reads b (up to 32 bytes, right-aligned) mod n.
func fuzzScalar(b []byte) *big.Int {
	if len(b) > 32 {
		b = b[:32]
	}
	return new(big.Int).Mod(new(big.Int).SetBytes(b), bigN)
}

// k256SpecialKeys are secret scalars of keys that make the parts of R
// line up: G, -G, lambda G and so on.
func k256SpecialKeys(t testing.TB) []*big.Int {
	lam := deriveGLV(t).lambda
	lam2 := new(big.Int).Exp(lam, big.NewInt(2), bigN)
	one := big.NewInt(1)
	t128 := new(big.Int).Lsh(one, 128)
	var out []*big.Int
	for _, v := range []*big.Int{one, lam, lam2, t128, new(big.Int).Mul(lam, t128), big.NewInt(3)} {
		v = new(big.Int).Mod(v, bigN)
		out = append(out, v, new(big.Int).Sub(bigN, v))
	}
	return out
}

func FuzzK256Verify(f *testing.F) {
	special := k256SpecialKeys(f)
	nb := bigN.Bytes()
	nm1 := new(big.Int).Sub(bigN, big.NewInt(1)).Bytes()
	pmn := new(big.Int).Sub(bigP, bigN).Bytes()
	for mode := range uint8(7) {
		f.Add(mode, []byte{1}, []byte{2}, []byte{3}, []byte{0})
		f.Add(mode, nm1, nm1, nm1, []byte{1, 2})
		f.Add(mode, nb, []byte{}, nb, []byte{0xff})
		f.Add(mode, pmn, pmn, []byte{1}, []byte{5})
		f.Add(mode, bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0x80}, 32), bytes.Repeat([]byte{0x01}, 32), []byte{3, 0})
	}
	for i := range special {
		f.Add(uint8(3), []byte{byte(i)}, []byte{0x77}, []byte{1}, []byte{0})
	}
	for i := range special {
		f.Add(uint8(6), []byte{byte(i)}, []byte{0x77, 0x13, 0x2f, 0x80, 0x45}, []byte{1}, []byte{byte(i), 0})
	}
	f.Fuzz(func(t *testing.T, mode uint8, a, b, c, extra []byte) {
		d := fuzzScalar(a)
		if d.Sign() == 0 {
			d.SetInt64(1)
		}
		pick := byte(0)
		if len(extra) > 0 {
			pick = extra[0]
		}
		switch mode % 7 {
		case 0:
			// A signature from the reference signer (digest b, nonce c),
			// then one tampered version: a bit of e, r or s flipped.
			k := fuzzScalar(c)
			if k.Sign() == 0 {
				return
			}
			digest := *pad32(b)
			r, s, ok := refSign(d, k, &digest)
			if !ok {
				return
			}
			q := voiMul(d, nil)
			if !verifyRef(t, q, &digest, r, s) {
				t.Fatalf("valid signature rejected (d %x, k %x, e %x)", d, k, digest)
			}
			bit := int(pick)
			switch (pick >> 1) % 3 {
			case 0:
				digest[bit%32] ^= 1 << (bit % 8)
			case 1:
				r = new(big.Int).Xor(r, new(big.Int).Lsh(big.NewInt(1), uint(bit)))
			default:
				s = new(big.Int).Xor(s, new(big.Int).Lsh(big.NewInt(1), uint(bit)))
			}
			verifyRef(t, q, &digest, r, s)
		case 1:
			// Arbitrary r and s (b, c) and digest (extra).
			r := new(big.Int).SetBytes(pad32(b)[:])
			s := new(big.Int).SetBytes(pad32(c)[:])
			digest := *pad32(extra)
			verifyRef(t, voiMul(d, nil), &digest, r, s)
		case 2:
			// Any u1 and u2: a valid signature, unless R is at infinity.
			u1, u2 := fuzzScalar(b), fuzzScalar(c)
			if u2.Sign() == 0 {
				return
			}
			q := voiMul(d, nil)
			digest, r, s, ok := sigFor(q, u1, u2, d)
			if !ok {
				return
			}
			inf := new(big.Int).Add(u1, new(big.Int).Mul(u2, d))
			want := inf.Mod(inf, bigN).Sign() != 0
			if got := verifyRef(t, q, &digest, r, s); got != want {
				t.Fatalf("u1 %x, u2 %x, d %x: verify = %v, want %v", u1, u2, d, got, want)
			}
		case 3:
			// A special key and u1 = -c u2 + delta, so that u1 G and u2 Q
			// cancel except for delta (small, from extra).
			dd := special[int(pick)%len(special)]
			u2 := fuzzScalar(b)
			if u2.Sign() == 0 {
				return
			}
			delta := new(big.Int).SetBytes(c[:min(len(c), 3)])
			if pick&0x80 != 0 {
				delta.Neg(delta)
			}
			u1 := new(big.Int).Mul(dd, u2)
			u1.Neg(u1).Add(u1, delta).Mod(u1, bigN)
			q := voiMul(dd, nil)
			digest, r, s, ok := sigFor(q, u1, u2, u2)
			if !ok {
				return
			}
			if got := verifyRef(t, q, &digest, r, s); got != (delta.Sign() != 0) {
				t.Fatalf("key %x, u2 %x, delta %d: verify = %v", dd, u2, delta, got)
			}
		case 4:
			// x(R) = r + n.
			u1, u2 := fuzzScalar(b), fuzzScalar(c)
			if u2.Sign() == 0 {
				return
			}
			q, digest, r, s, ok := largeXSig(d, u1, u2)
			if !ok {
				return
			}
			if !verifyRef(t, q, &digest, r, s) {
				t.Fatalf("x(R) = r + n: rejected (u1 %x, u2 %x)", u1, u2)
			}
			r.Add(r, big.NewInt(int64(pick%3)+1))
			verifyRef(t, q, &digest, r, s)
		case 6:
			// A special key d, u2 built from digits that are the same in
			// every window (b: one byte per digit, odd and below 16, the
			// gaps from c), and u1 = +-d u2: with d = 1 or 2^128 the two
			// parts add equal or opposite points at the same steps.
			dd := special[int(pick)%len(special)]
			u2 := new(big.Int)
			pos := 0
			for i, v := range b {
				gap := 10
				if i < len(c) {
					gap += int(c[i] % 16)
				}
				if pos+gap > 250 {
					break
				}
				u2.Add(u2, new(big.Int).Lsh(big.NewInt(int64(v%16|1)), uint(pos)))
				pos += gap
			}
			u2.Mod(u2, bigN)
			if u2.Sign() == 0 {
				return
			}
			u1 := new(big.Int).Mul(dd, u2)
			if len(extra) > 1 && extra[1]&1 == 1 {
				u1.Neg(u1)
			}
			u1.Mod(u1, bigN)
			q := voiMul(dd, nil)
			digest, r, s, ok := sigFor(q, u1, u2, u2)
			if !ok {
				return
			}
			sum := new(big.Int).Add(u1, new(big.Int).Mul(u2, dd))
			want := sum.Mod(sum, bigN).Sign() != 0
			if got := verifyRef(t, q, &digest, r, s); got != want {
				t.Fatalf("key %x, u1 %x, u2 %x: verify = %v, want %v", dd, u1, u2, got, want)
			}
		case 5:
			// R at infinity: u1 = -u2 d, with any r.
			u2 := fuzzScalar(b)
			if u2.Sign() == 0 {
				return
			}
			u1 := new(big.Int).Mul(u2, d)
			u1.Neg(u1).Mod(u1, bigN)
			q := voiMul(d, nil)
			digest, r, s, ok := sigFor(q, u1, u2, new(big.Int).SetBytes(c))
			if !ok {
				return
			}
			if verifyRef(t, q, &digest, r, s) {
				t.Fatalf("R at infinity accepted (d %x, u2 %x)", d, u2)
			}
		}
	})
}

// FuzzK256GLVSplit checks the scalar decomposition and the wNAF digits
// on any scalar.
func FuzzK256GLVSplit(f *testing.F) {
	f.Add([]byte{1}, uint8(5))
	f.Add(bigN.Bytes(), uint8(10))
	f.Add(bytes.Repeat([]byte{0xff}, 32), uint8(16))
	f.Fuzz(func(t *testing.T, kb []byte, w uint8) {
		k := fuzzScalar(kb)
		if bits := checkGLVSplit(t, k); bits > 128 {
			t.Fatalf("glvSplit(%x): a half has %d bits", k, bits)
		}
		checkWNAF(t, new(big.Int).SetBytes(pad32(kb)[:]), uint(w%15)+2, w&1 == 1)
	})
}

// TestK256VerifyConcurrent verifies with fresh keys from several
// goroutines at once, so that they race to build each key's table (run
// with -race).
func TestK256VerifyConcurrent(t *testing.T) {
	for range 5 {
		key, err := GenerateK256()
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("concurrent")
		sig, err := key.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ParsePublicBytesK256(key.Public().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 4)
		for range 4 {
			go func() { errs <- pub.HashAndVerify(msg, sig) }()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
}
