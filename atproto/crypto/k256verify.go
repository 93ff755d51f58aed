package crypto

import (
	"encoding/hex"
	"math/bits"
	"sync"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
)

// K-256 ECDSA verification: R = u1*G + u2*Q with u1 = e/s and u2 = r/s
// modulo n, accepted when R is not the point at infinity and its
// x-coordinate is r modulo n. Everything here is public (key, digest,
// signature), so it runs in variable time: it branches on the scalars'
// digits and on the points, and skips work where it can.
//
// Method:
//
//   - u1 G is u1_lo G + u1_hi (2^128 G) for the two 128-bit halves of u1.
//     For u2 Q, whose base is not fixed, secp256k1's endomorphism does the
//     same: (x, y) -> (beta x, y), for beta a cube root of unity modulo p,
//     is multiplication by lambda, a cube root of unity modulo n, and
//     glvSplit writes u2 as k1 + k2 lambda with k1 and k2 of about 128
//     bits. R is then the sum of four half-length multiples, of G,
//     2^128 G, Q and lambda Q, computed together (Straus): one shared
//     chain of about 128 doublings, with the additions each half's digits
//     call for.
//   - Each half is in width-w non-adjacent form (wnaf): odd digits with at
//     least w-1 zeros after each non-zero one, so a half of 128 bits needs
//     about 128/(w+1) additions of precomputed odd multiples. G and
//     2^128 G have wide static tables (window k256WindowG); Q has a small
//     table (window k256WindowQ) built once per public key and cached on
//     it, and lambda Q's is derived from it on each call (one
//     multiplication per entry).
//   - x(R) = X/Z^2 is compared with r without inverting Z: x(R) mod n = r
//     exactly when x(R) is r or r + n (the latter only when r + n < p),
//     that is when X = r Z^2 or X = (r + n) Z^2.
//
// The point formulas are the incomplete ones of k256point.go. Unlike the
// signer's comb, the sum here can meet the point being added or its
// opposite (u1 G = -u2 Q gives R at infinity, and a key like Q = G makes
// equal points common), and it starts at infinity; addAffineVar detects
// those cases and doubles or goes to infinity, and the accumulator's
// infinity is tracked by a flag.

const (
	// k256WindowG is the wNAF width for G and 2^128 G: tables of
	// 2^(w-2) affine points each, built once per process.
	k256WindowG = 10
	// k256WindowQ is the wNAF width for the public key: a cached table of
	// 2^(w-2) affine points per key.
	k256WindowQ = 5

	// wnafLen bounds the digit positions of a scalar below 2^256 with a
	// window of at most 16 bits (see wnaf).
	wnafLen = 256 + 16
)

// hexLimbs reads a big-endian hex number of at most 64 digits as four
// little-endian 64-bit limbs.
func hexLimbs(s string) [4]uint64 {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) > 32 {
		panic("crypto: bad built-in constant " + s)
	}
	var b [32]byte
	copy(b[32-len(raw):], raw)
	return limbsOf(&b)
}

func hexScalar(s string) *secp256k1.Scalar {
	l := hexLimbs(s)
	var sc secp256k1.Scalar
	scalarFromLimbs(&sc, &l)
	return &sc
}

// The endomorphism and the lattice basis behind glvSplit; the tests derive
// all of them again from p, n and G.
var (
	// k256Beta is the cube root of unity modulo p with
	// lambda (x, y) = (beta x, y).
	k256Beta = fe(hexLimbs("7ae96a2b657c07106e64479eac3434e99cf0497512f58995c1396c28719501ee"))
	// glvLambda is the cube root of unity modulo n that goes with beta.
	glvLambda = hexScalar("5363ad4cc05c30e0a5261c028812645a122e22ea20816678df02967c1b23bd72")

	// (a1, b1) and (a2, b2) are short vectors with a + b lambda = 0 mod n
	// and a1 b2 - a2 b1 = n:
	//
	//	a1 = b2 = 0x3086d221a7d46bcde86c90e49284eb15
	//	b1 = -0xe4437ed6010e88286f547fa90abfe4c3
	//	a2 = 0x114ca50f7a8e2f3f657c1108d9d44cfd8
	//
	// glvMinusB1 and glvMinusB2 are -b1 and -b2 modulo n.
	glvMinusB1 = hexScalar("e4437ed6010e88286f547fa90abfe4c3")
	glvMinusB2 = hexScalar("fffffffffffffffffffffffffffffffe8a280ac50774346dd765cda83db1562c")
	// glvG1 = round(2^384 b2 / n) and glvG2 = round(2^384 (-b1) / n).
	glvG1 = hexLimbs("3086d221a7d46bcde86c90e49284eb153daa8a1471e8ca7fe893209a45dbb031")
	glvG2 = hexLimbs("e4437ed6010e88286f547fa90abfe4c4221208ac9df506c61571b4ae8ac47f71")

	// k256PMinusN is p - n: r + n < p exactly when r < p - n.
	k256PMinusN = hexLimbs("014551231950b75fc4402da1722fc9baee")
)

// mulShift384 returns round(a b / 2^384) for a, b below 2^256.
func mulShift384(a, b *[4]uint64) [4]uint64 {
	var t [8]uint64
	for i := range 4 {
		var carry uint64
		for j := range 4 {
			hi, lo := bits.Mul64(a[i], b[j])
			var c uint64
			lo, c = bits.Add64(lo, t[i+j], 0)
			hi += c
			lo, c = bits.Add64(lo, carry, 0)
			hi += c
			t[i+j] = lo
			carry = hi
		}
		t[i+4] = carry
	}
	// Bits 384 and up, plus bit 383 for the rounding.
	r0, c := bits.Add64(t[6], t[5]>>63, 0)
	r1, c := bits.Add64(t[7], 0, c)
	return [4]uint64{r0, r1, c}
}

// scalarAbs returns the limbs of s read as a signed value in
// (-n/2, n/2]: |s| and whether s is negative.
func scalarAbs(s *secp256k1.Scalar) ([4]uint64, bool) {
	if s.IsGreaterThanHalfN() == 1 {
		var ns secp256k1.Scalar
		ns.Negate(s)
		return scalarLimbs(&ns), true
	}
	return scalarLimbs(s), false
}

// glvSplit returns k1 and k2 with k = k1 + k2 lambda (mod n), as
// magnitudes and signs. Following Gallant, Lambert and Vanstone, (k, 0)
// is written in the basis (a1, b1), (a2, b2) with real coefficients
// b2 k / n and -b1 k / n, which are rounded to c1 and c2; then
// (k1, k2) = (k, 0) - c1 (a1, b1) - c2 (a2, b2) is (k, 0)'s offset from a
// lattice point, at most half a basis vector of each kind: |k1| <=
// (|a1| + |a2|)/2 < 0.64 * 2^128 and |k2| <= (|b1| + |b2|)/2 < 0.55 *
// 2^128. The rounding is done as round(k g / 2^384) with
// g = round(2^384 b / n), which differs from the exact one only within
// 2^-129 of a half-integer, and then by one, a margin the bounds absorb.
// k2 is computed modulo n as -c1 b1 - c2 b2 and k1 as k - k2 lambda, so
// the split is exact whatever the rounding; only the lengths depend on
// it, and the verifier is correct for any lengths below 2^255.
func glvSplit(k *secp256k1.Scalar) (k1 [4]uint64, neg1 bool, k2 [4]uint64, neg2 bool) {
	kl := scalarLimbs(k)
	c1 := mulShift384(&kl, &glvG1)
	c2 := mulShift384(&kl, &glvG2)
	var s1, s2, r1, r2 secp256k1.Scalar
	scalarFromLimbs(&s1, &c1) // both below 2^129 < n
	scalarFromLimbs(&s2, &c2)
	r2.Multiply(&s1, glvMinusB1)
	s2.Multiply(&s2, glvMinusB2)
	r2.Add(&r2, &s2)
	r1.Multiply(&r2, glvLambda)
	r1.Subtract(k, &r1)
	k1, neg1 = scalarAbs(&r1)
	k2, neg2 = scalarAbs(&r2)
	return
}

// bits64At returns bits bit..bit+63 of k (zero beyond bit 255).
func bits64At(k *[4]uint64, bit int) uint64 {
	i, off := bit>>6, uint(bit&63)
	var lo, hi uint64
	if i < 4 {
		lo = k[i]
	}
	if i+1 < 4 {
		hi = k[i+1]
	}
	return lo>>off | hi<<(64-off) // hi << 64 is zero in Go
}

// wnaf writes the width-w non-adjacent form of k (w in [2, 16]) to out,
// negated when neg is set: k = sum out[i] 2^i with every non-zero digit
// odd and below 2^(w-1) in magnitude, and at least w-1 zero digits above
// each non-zero one. out must be zero on entry. It returns one more than
// the position of the highest non-zero digit (0 for k = 0).
//
// It walks k from the bottom with a carry c of 0 or 1 (the value still to
// be represented is the rest of k plus c). Where bit i of k equals c the
// digit is zero (0 + 0, or 1 + 1 passing the carry on). Elsewhere the w
// bits from i, plus c, form an odd number v below 2^w; the digit is v,
// or v - 2^w with a carry into bit i + w when v > 2^(w-1), and the next
// w-1 digits are zero.
func wnaf(out *[wnafLen]int16, k *[4]uint64, w uint, neg bool) int {
	var carry uint64
	top, bit := 0, 0
	for bit < 256 || carry != 0 {
		// Ones where the bit differs from the carry.
		x := bits64At(k, bit) ^ -carry
		if x == 0 {
			bit += 64
			continue
		}
		bit += bits.TrailingZeros64(x)
		v := bits64At(k, bit)&(1<<w-1) + carry
		carry = v >> (w - 1)
		d := int(v) - int(carry<<w)
		if neg {
			d = -d
		}
		out[bit] = int16(d)
		top = bit + 1
		bit += int(w)
	}
	return top
}

// k256GTables holds the odd multiples 1, 3, ..., 2^(w-1) - 1 of G and of
// 2^128 G for w = k256WindowG, affine: 32 KiB, built on first use.
type k256GTables struct {
	g, g128 [1 << (k256WindowG - 2)]affinePoint
}

var k256VerifyTables = sync.OnceValue(func() *k256GTables {
	t := new(k256GTables)
	oddMultiples(t.g[:], &k256G)
	p := jacPoint{x: k256G.x, y: k256G.y, z: fe{1}}
	for range 128 {
		jacDouble(&p, &p)
	}
	var g128 [1]affinePoint
	toAffineVar(g128[:], []jacPoint{p})
	oddMultiples(t.g128[:], &g128[0])
	return t
})

// k256QTable holds the odd multiples 1, 3, ..., 2^(w-1) - 1 of a public
// key for w = k256WindowQ, affine: 512 bytes.
type k256QTable [1 << (k256WindowQ - 2)]affinePoint

// oddMultiples sets out[i] = (2i + 1) p for a point p (not at infinity),
// as canonical affine points.
func oddMultiples(out []affinePoint, p *affinePoint) {
	jac := make([]jacPoint, len(out))
	jac[0] = jacPoint{x: p.x, y: p.y, z: fe{1}}
	var p2 jacPoint
	jacDouble(&p2, &jac[0])
	// (2i - 1) p + 2p: the two are neither equal nor opposite (2i - 1
	// is not +-2 modulo the prime order n), nor at infinity.
	for i := 1; i < len(jac); i++ {
		jacAdd(&jac[i], &jac[i-1], &p2)
	}
	toAffineVar(out, jac)
}

// toAffineVar sets out[i] to the affine form of in[i], none at infinity,
// with one inversion for all (Montgomery's trick), in variable time.
func toAffineVar(out []affinePoint, in []jacPoint) {
	prefix := make([]fe, len(in)) // prefix[i] = z_0 ... z_i
	prefix[0] = in[0].z
	for i := 1; i < len(in); i++ {
		feMul(&prefix[i], &prefix[i-1], &in[i].z)
	}
	var inv fe
	feNormalize(&inv, &prefix[len(in)-1])
	inv = fe(modInverseVartime((*[4]uint64)(&inv), k256PInv))
	for i := len(in) - 1; i >= 0; i-- {
		zi := inv // 1/z_i
		if i > 0 {
			feMul(&zi, &inv, &prefix[i-1])
			feMul(&inv, &inv, &in[i].z)
		}
		var zi2, zi3 fe
		feSqr(&zi2, &zi)
		feMul(&zi3, &zi2, &zi)
		feMul(&out[i].x, &in[i].x, &zi2)
		feMul(&out[i].y, &in[i].y, &zi3)
		feNormalize(&out[i].x, &out[i].x)
		feNormalize(&out[i].y, &out[i].y)
	}
}

// newK256QTable builds the table of a public key given as its uncompressed
// SEC1 encoding (a point already checked to be on the curve).
func newK256QTable(unc *[65]byte) *k256QTable {
	var q affinePoint
	feSetBytes(&q.x, (*[32]byte)(unc[1:33]))
	feSetBytes(&q.y, (*[32]byte)(unc[33:65]))
	t := new(k256QTable)
	oddMultiples(t[:], &q)
	return t
}

// feIsZeroVar reports whether a is 0 modulo p, in variable time: the
// limbs hold a value below 2^256, so 0 or p.
func feIsZeroVar(a *fe) bool {
	return *a == fe{} || *a == feP
}

// addAffineVar sets p = p + q, where inf says whether p is at infinity
// and is updated, for any affine point q. It is madd-2004-hmv (see
// jacAddAffine2), with the cases that formula gets wrong handled: p at
// infinity, p = q (doubled instead) and p = -q (infinity).
func addAffineVar(p *jacPoint, inf *bool, q *affinePoint) {
	if *inf {
		p.x, p.y, p.z = q.x, q.y, fe{1}
		*inf = false
		return
	}
	var z1z1, u2, s2, h, rr fe
	feSqr(&z1z1, &p.z)
	feMul(&u2, &q.x, &z1z1)
	feMul(&s2, &p.z, &z1z1)
	feMul(&s2, &s2, &q.y)
	feSub(&h, &u2, &p.x)
	feSub(&rr, &s2, &p.y)
	if feIsZeroVar(&h) {
		// Same x: p = q or p = -q.
		if feIsZeroVar(&rr) {
			jacDouble(p, p)
		} else {
			*inf = true
		}
		return
	}
	var hh, hhh, v, t fe
	feSqr(&hh, &h)
	feMul(&hhh, &hh, &h)
	feMul(&v, &p.x, &hh)
	var x3, y3 fe
	feSqr(&x3, &rr)
	feSub(&x3, &x3, &hhh)
	feSub(&x3, &x3, &v)
	feSub(&x3, &x3, &v)
	feSub(&t, &v, &x3)
	feMul(&y3, &rr, &t)
	feMul(&t, &p.y, &hhh)
	feSub(&p.y, &y3, &t)
	feMul(&p.z, &p.z, &h)
	p.x = x3
}

// addDigitVar adds d times the base point of tbl (which holds its odd
// multiples) to p, for an odd d, |d| < 2 len(tbl).
func addDigitVar(p *jacPoint, inf *bool, tbl []affinePoint, d int16) {
	if d > 0 {
		addAffineVar(p, inf, &tbl[d>>1])
		return
	}
	e := &tbl[(-d)>>1]
	neg := affinePoint{x: e.x}
	feNeg(&neg.y, &e.y)
	addAffineVar(p, inf, &neg)
}

// k256VerifyDigest reports whether (r, s) is a valid ECDSA signature of
// the 32-byte digest under the public key whose table is qt. It returns
// false unless r and s are in [1, n-1]; it accepts s above n/2 (the
// low-S rule is the parser's).
func k256VerifyDigest(qt *k256QTable, digest, rb, sb *[32]byte) bool {
	rl, sl := limbsOf(rb), limbsOf(sb)
	if !scalarInRange(&rl) || !scalarInRange(&sl) {
		return false
	}
	var e, r, w, u1, u2 secp256k1.Scalar
	e.SetBytes(digest) // e = digest mod n
	scalarFromLimbs(&r, &rl)
	wl := modInverseVartime(&sl, k256NInv)
	scalarFromLimbs(&w, &wl)
	u1.Multiply(&e, &w)
	u2.Multiply(&r, &w)

	// u1's halves, and u2 = k1 + k2 lambda.
	ul := scalarLimbs(&u1)
	lo, hi := [4]uint64{ul[0], ul[1]}, [4]uint64{ul[2], ul[3]}
	k1, neg1, k2, neg2 := glvSplit(&u2)
	var dg, dg128, dq, dlq [wnafLen]int16
	top := max(
		wnaf(&dg, &lo, k256WindowG, false),
		wnaf(&dg128, &hi, k256WindowG, false),
		wnaf(&dq, &k1, k256WindowQ, neg1),
		wnaf(&dlq, &k2, k256WindowQ, neg2),
	)

	gt := k256VerifyTables()
	var lq k256QTable // lambda Q's multiples: (beta x, y)
	for i := range qt {
		feMul(&lq[i].x, &qt[i].x, &k256Beta)
		lq[i].y = qt[i].y
	}

	var acc jacPoint
	inf := true
	for i := top - 1; i >= 0; i-- {
		if !inf {
			jacDouble(&acc, &acc)
		}
		if d := dg[i]; d != 0 {
			addDigitVar(&acc, &inf, gt.g[:], d)
		}
		if d := dg128[i]; d != 0 {
			addDigitVar(&acc, &inf, gt.g128[:], d)
		}
		if d := dq[i]; d != 0 {
			addDigitVar(&acc, &inf, qt[:], d)
		}
		if d := dlq[i]; d != 0 {
			addDigitVar(&acc, &inf, lq[:], d)
		}
	}
	if inf {
		return false
	}

	// X = r Z^2, or X = (r + n) Z^2 when r + n < p.
	var x, z2, t fe
	feNormalize(&x, &acc.x)
	feSqr(&z2, &acc.z)
	rf := fe(rl)
	feMul(&t, &rf, &z2)
	feNormalize(&t, &t)
	if t == x {
		return true
	}
	_, bo := bits.Sub64(rl[0], k256PMinusN[0], 0)
	_, bo = bits.Sub64(rl[1], k256PMinusN[1], bo)
	_, bo = bits.Sub64(rl[2], k256PMinusN[2], bo)
	_, bo = bits.Sub64(rl[3], k256PMinusN[3], bo)
	if bo == 0 { // r >= p - n
		return false
	}
	var c uint64
	rf[0], c = bits.Add64(rl[0], scN[0], 0)
	rf[1], c = bits.Add64(rl[1], scN[1], c)
	rf[2], c = bits.Add64(rl[2], scN[2], c)
	rf[3], _ = bits.Add64(rl[3], scN[3], c)
	feMul(&t, &rf, &z2)
	feNormalize(&t, &t)
	return t == x
}
