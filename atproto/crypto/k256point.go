package crypto

import (
	"math/bits"
	"sync"
)

// This file is the constant-time multiplication k*G of the secp256k1
// generator by a secret scalar, which is all that ECDSA signing needs from
// the curve. Only the x-coordinate of the result is returned.
//
// Method: k is first replaced by min(k, n-k), which changes k*G only by
// its sign and so keeps the x-coordinate, and puts k below 2^255. It is
// then written in 64 signed base-16 digits d_i in [-8, 8], and
// k*G = sum d_i * 16^i * G. A precomputed table holds j * 16^i * G for
// j = 1..8 as affine points, so the sum needs point additions only, no
// doublings. The even-numbered and the odd-numbered digits go to two
// separate running sums, so that the CPU can overlap their independent
// additions, and one last addition joins them. Each addition reads all
// eight entries of its row and keeps the one wanted with masks, negates it
// by mask when d_i < 0, and keeps or discards the addition's result by
// mask when d_i = 0: the instructions and memory addresses are the same
// whatever k is.
//
// The additions use the fast incomplete formulas in Jacobian coordinates,
// which are wrong when the two points are equal, opposite, or one is the
// point at infinity. The first two cannot happen here. Before digit i a
// running sum is Q = q*G where q, as an integer, is a sum of some of the
// d_j*16^j for j < i, so |q| <= 8*(16^i - 1)/15 < 16^i, and the addend is
// d*16^i*G with 16^i <= |d*16^i| <= 8*16^i. q - d*16^i and q + d*16^i are
// then non-zero integers of magnitude below 9*16^i <= 9*2^252 < n, so
// neither is a multiple of n: Q is never the addend or its opposite. For
// the last addition, of the two running sums q0 and q1, q0 + q1 = k is not
// a multiple of n, and q0 - q1 is a signed-digit number, sum +-d_j*16^j,
// below 8*16^64/15 < n in magnitude, and non-zero unless all digits are
// (its lowest non-zero digit d_m leaves it non-zero modulo 16^(m+1)). For
// the same reason a running sum is at infinity exactly when all of its
// digits so far are zero, which a mask tracks, selecting the other operand
// in that case.
//
// The x-coordinate X/Z^2 needs an inversion of Z, which depends on k. It
// is blinded: 1/Z = beta / (Z beta) for a secret uniform beta, which makes
// Z beta uniform on the non-zero elements whatever Z is, so that it may be
// inverted in variable time.

// affinePoint is a point (x, y) with canonical coordinates.
type affinePoint struct {
	x, y fe
}

// jacPoint is a point in Jacobian coordinates: (X/Z^2, Y/Z^3).
type jacPoint struct {
	x, y, z fe
}

// k256BaseTable is the table of j * 16^i * G, for i = 0..63 (row) and
// j = 1..8 (column j-1). 32 KiB, built on first use.
type k256BaseTable [64][8]affinePoint

var k256Table = sync.OnceValue(buildK256Table)

// The generator G.
var k256G = affinePoint{
	x: fe{0x59f2815b16f81798, 0x029bfcdb2dce28d9, 0x55a06295ce870b07, 0x79be667ef9dcbbac},
	y: fe{0x9c47d08ffb10d4b8, 0xfd17b448a6855419, 0x5da4fbfc0e1108a8, 0x483ada7726a3c465},
}

// jacDouble sets r = 2p, for p not at infinity (3M + 4S). Constant time.
//
// With x = X/Z^2, y = Y/Z^3, the tangent's slope is
// 3x^2/(2y) = L/(YZ) for L = 3X^2/2, so taking Z3 = YZ and S = Y^2,
// U = XS:
//
//	X3 = L^2 - 2U, Y3 = L(U - X3) - S^2, Z3 = YZ.
//
// (secp256k1 has no point of order two, so Y is never zero.)
func jacDouble(r, p *jacPoint) {
	var l, s, u, t, x3, y3, z3 fe
	feSqr(&t, &p.x)
	feHalf(&l, &t)
	feAdd(&l, &l, &t)
	feSqr(&s, &p.y)
	feMul(&u, &p.x, &s)
	feSqr(&x3, &l)
	feSub(&x3, &x3, &u)
	feSub(&x3, &x3, &u)
	feSub(&t, &u, &x3)
	feMul(&y3, &l, &t)
	feSqr(&t, &s)
	feSub(&y3, &y3, &t)
	feMul(&z3, &p.y, &p.z)
	r.x, r.y, r.z = x3, y3, z3
}

// jacAddAffine2 sets ra = pa + qa and rb = pb + qb, two independent
// additions of a Jacobian and an affine point (madd-2004-hmv, 8M + 3S
// each), one field operation of each in turn so that their latencies
// overlap. Neither pa nor pb may be at infinity or equal or opposite to
// its addend (see the note at the top). Constant time.
//
//	H = x2 Z1^2 - X1, R = y2 Z1^3 - Y1, V = X1 H^2
//	X3 = R^2 - H^3 - 2V, Y3 = R (V - X3) - Y1 H^3, Z3 = Z1 H
func jacAddAffine2(ra, pa *jacPoint, qa *affinePoint, rb, pb *jacPoint, qb *affinePoint) {
	var z1z1a, u2a, s2a, ha, rra, hha, hhha, va, ta fe
	var z1z1b, u2b, s2b, hb, rrb, hhb, hhhb, vb, tb fe
	feSqr(&z1z1a, &pa.z)
	feSqr(&z1z1b, &pb.z)
	feMul(&u2a, &qa.x, &z1z1a)
	feMul(&u2b, &qb.x, &z1z1b)
	feMul(&s2a, &pa.z, &z1z1a)
	feMul(&s2b, &pb.z, &z1z1b)
	feMul(&s2a, &s2a, &qa.y)
	feMul(&s2b, &s2b, &qb.y)
	feSub(&ha, &u2a, &pa.x)
	feSub(&hb, &u2b, &pb.x)
	feSub(&rra, &s2a, &pa.y)
	feSub(&rrb, &s2b, &pb.y)
	feSqr(&hha, &ha)
	feSqr(&hhb, &hb)
	feMul(&hhha, &hha, &ha)
	feMul(&hhhb, &hhb, &hb)
	feMul(&va, &pa.x, &hha)
	feMul(&vb, &pb.x, &hhb)

	var x3a, y3a, z3a, x3b, y3b, z3b fe
	feSqr(&x3a, &rra)
	feSqr(&x3b, &rrb)
	feSub(&x3a, &x3a, &hhha)
	feSub(&x3b, &x3b, &hhhb)
	feSub(&x3a, &x3a, &va)
	feSub(&x3b, &x3b, &vb)
	feSub(&x3a, &x3a, &va)
	feSub(&x3b, &x3b, &vb)
	feSub(&ta, &va, &x3a)
	feSub(&tb, &vb, &x3b)
	feMul(&y3a, &rra, &ta)
	feMul(&y3b, &rrb, &tb)
	feMul(&ta, &pa.y, &hhha)
	feMul(&tb, &pb.y, &hhhb)
	feSub(&y3a, &y3a, &ta)
	feSub(&y3b, &y3b, &tb)
	feMul(&z3a, &pa.z, &ha)
	feMul(&z3b, &pb.z, &hb)

	ra.x, ra.y, ra.z = x3a, y3a, z3a
	rb.x, rb.y, rb.z = x3b, y3b, z3b
}

// jacAdd sets r = p + q for Jacobian points that are neither equal,
// opposite, nor at infinity (add-2007-bl, 11M + 5S). Constant time.
func jacAdd(r, p, q *jacPoint) {
	var z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t fe
	feSqr(&z1z1, &p.z)
	feSqr(&z2z2, &q.z)
	feMul(&u1, &p.x, &z2z2)
	feMul(&u2, &q.x, &z1z1)
	feMul(&s1, &p.y, &q.z)
	feMul(&s1, &s1, &z2z2)
	feMul(&s2, &q.y, &p.z)
	feMul(&s2, &s2, &z1z1)
	feSub(&h, &u2, &u1)
	feAdd(&i, &h, &h)
	feSqr(&i, &i)
	feMul(&j, &h, &i)
	feSub(&rr, &s2, &s1)
	feAdd(&rr, &rr, &rr)
	feMul(&v, &u1, &i)

	var x3, y3, z3 fe
	feSqr(&x3, &rr)
	feSub(&x3, &x3, &j)
	feSub(&x3, &x3, &v)
	feSub(&x3, &x3, &v)
	feSub(&t, &v, &x3)
	feMul(&y3, &rr, &t)
	feMul(&t, &s1, &j)
	feAdd(&t, &t, &t)
	feSub(&y3, &y3, &t)
	feAdd(&z3, &p.z, &q.z)
	feSqr(&z3, &z3)
	feSub(&z3, &z3, &z1z1)
	feSub(&z3, &z3, &z2z2)
	feMul(&z3, &z3, &h)

	r.x, r.y, r.z = x3, y3, z3
}

func buildK256Table() *k256BaseTable {
	// All 512 points in Jacobian form first, then one batch inversion
	// (Montgomery's trick) to make them affine.
	var jac [64 * 8]jacPoint
	base := jacPoint{x: k256G.x, y: k256G.y, z: fe{1}}
	for i := range 64 {
		row := jac[i*8 : i*8+8]
		row[0] = base
		jacDouble(&row[1], &base)
		for j := 2; j < 8; j++ {
			jacAdd(&row[j], &row[j-1], &base)
		}
		jacDouble(&base, &row[7]) // 16 * 16^i * G
	}

	// prefix[i] = z_0 * ... * z_i.
	var prefix [64 * 8]fe
	prefix[0] = jac[0].z
	for i := 1; i < len(jac); i++ {
		feMul(&prefix[i], &prefix[i-1], &jac[i].z)
	}
	var inv fe
	feInv(&inv, &prefix[len(jac)-1])

	t := new(k256BaseTable)
	for i := len(jac) - 1; i >= 0; i-- {
		var zi fe // 1/z_i
		if i > 0 {
			feMul(&zi, &inv, &prefix[i-1])
			feMul(&inv, &inv, &jac[i].z)
		} else {
			zi = inv
		}
		var zi2, zi3 fe
		feSqr(&zi2, &zi)
		feMul(&zi3, &zi2, &zi)
		p := &t[i/8][i%8]
		feMul(&p.x, &jac[i].x, &zi2)
		feMul(&p.y, &jac[i].y, &zi3)
		feNormalize(&p.x, &p.x)
		feNormalize(&p.y, &p.y)
	}
	return t
}

// ctEq returns all ones if a == b and zero otherwise.
func ctEq(a, b uint64) uint64 {
	// a ^ b is zero exactly when they are equal; subtracting one then
	// borrows out of bit 63 only in that case.
	_, bo := bits.Sub64(a^b, 1, 0)
	return -bo
}

// k256BaseMultX writes the canonical big-endian x-coordinate of k*G,
// where k is given as four little-endian 64-bit limbs and must be in
// [1, n-1]. blind must be 32 secret, uniformly random bytes, used once
// (they blind an inversion). It runs in time independent of k. It reports
// false if the result fails a consistency check (see k256AffineX), which
// only a fault in the computation can cause; out must then not be used.
func k256BaseMultX(out *[32]byte, k *[4]uint64, blind *[32]byte) bool {
	tbl := k256Table()

	// kk = min(k, n - k): same x-coordinate, and below 2^255.
	var nk [4]uint64
	var bo uint64
	nk[0], bo = bits.Sub64(scN[0], k[0], 0)
	nk[1], bo = bits.Sub64(scN[1], k[1], bo)
	nk[2], bo = bits.Sub64(scN[2], k[2], bo)
	nk[3], _ = bits.Sub64(scN[3], k[3], bo)
	// k > n/2 exactly when n/2 - k borrows.
	_, bo = bits.Sub64(scHalfN[0], k[0], 0)
	_, bo = bits.Sub64(scHalfN[1], k[1], bo)
	_, bo = bits.Sub64(scHalfN[2], k[2], bo)
	_, bo = bits.Sub64(scHalfN[3], k[3], bo)
	m := -bo
	var kk [4]uint64
	for i := range kk {
		kk[i] = k[i] ^ (m & (k[i] ^ nk[i]))
	}

	// Signed digits: d_i = nibble_i + carry_i, moved into [-8, 7] by
	// taking 16 off and carrying one when it is 8 or more. The top
	// nibble is at most 7, so the last digit is at most 8 and is left as
	// it is.
	var digits [64]int64
	var carry uint64
	for i := range 64 {
		d := (kk[i/16] >> (4 * (i % 16)) & 0xf) + carry
		if i < 63 {
			carry = (d + 8) >> 4
			d -= carry << 4
		}
		digits[i] = int64(d)
	}

	// Two running sums, of the even-numbered and the odd-numbered
	// windows, so that the CPU can overlap their independent additions.
	var q [2]jacPoint
	qInf := [2]uint64{^uint64(0), ^uint64(0)} // all ones while q[c] is at infinity
	var pt [2]affinePoint
	var sum [2]jacPoint
	for i := 0; i < 64; i += 2 {
		var zero [2]uint64
		for c := range 2 {
			zero[c] = lookupSigned(&pt[c], &tbl[i+c], digits[i+c])
		}
		jacAddAffine2(&sum[0], &q[0], &pt[0], &sum[1], &q[1], &pt[1])
		for c := range 2 {
			accumulate(&q[c], &qInf[c], &sum[c], &pt[c], zero[c])
		}
	}
	// total = q[0] + q[1], or whichever is not at infinity (both cannot be).
	var total jacPoint
	jacAdd(&total, &q[0], &q[1])
	jacSelect(&total, &total, &q[1], qInf[0])
	jacSelect(&total, &total, &q[0], qInf[1])

	return k256AffineX(out, &total, blind)
}

// k256AffineX writes the canonical big-endian x-coordinate of the
// Jacobian point p, whose Z must be non-zero, inverting Z blinded by blind
// (see k256BaseMultX). It also computes the affine y and reports whether
// (x, y) is on the curve, y^2 = x^3 + 7.
//
// That check is a defence against faults (glitches, bit flips): an error
// in the point arithmetic or in the inversion almost surely gives a point
// off the curve, and a signature made from a wrong R can reveal the key.
// It costs three multiplications and two squarings, and whether it passes
// depends on no secret in a correct computation, so it may branch.
func k256AffineX(out *[32]byte, p *jacPoint, blind *[32]byte) bool {
	// 1/Z = beta / (Z beta), with the inversion of Z beta in variable time.
	var beta, zb, zi, zi2, zi3, x, y fe
	feSetBytes(&beta, blind)
	feNormalize(&beta, &beta)
	// beta = 0 has probability about 2^-256; use 1 rather than fail.
	feSelect(&beta, &beta, &fe{1}, ctEq(beta[0]|beta[1]|beta[2]|beta[3], 0))
	feMul(&zb, &p.z, &beta)
	feNormalize(&zb, &zb)
	zbInv := fe(modInverseVartime((*[4]uint64)(&zb), k256PInv))
	feMul(&zi, &zbInv, &beta)
	feSqr(&zi2, &zi)
	feMul(&zi3, &zi2, &zi)
	feMul(&x, &p.x, &zi2)
	feMul(&y, &p.y, &zi3)

	var lhs, rhs fe
	feSqr(&lhs, &y)
	feSqr(&rhs, &x)
	feMul(&rhs, &rhs, &x)
	feAdd(&rhs, &rhs, &fe{7})
	feNormalize(&lhs, &lhs)
	feNormalize(&rhs, &rhs)
	onCurve := (lhs[0]^rhs[0])|(lhs[1]^rhs[1])|(lhs[2]^rhs[2])|(lhs[3]^rhs[3]) == 0

	feBytes(out, &x)
	return onCurve
}

// k256PInv is the field prime p, for modInverseVartime.
var k256PInv = newInvModulus((*[4]uint64)(&feP))

// lookupSigned sets pt = d * row[0] for d in [-8, 8] from the row of
// multiples 1..8, reading every entry, and returns all ones if d = 0 (pt
// is then (0, 0), not a point) and zero otherwise.
func lookupSigned(pt *affinePoint, row *[8]affinePoint, d int64) uint64 {
	neg := uint64(d >> 63) // all ones when d < 0
	abs := uint64((d ^ int64(neg)) - int64(neg))
	*pt = affinePoint{}
	for j := range row {
		m := ctEq(abs, uint64(j+1))
		e := &row[j]
		pt.x[0] |= m & e.x[0]
		pt.x[1] |= m & e.x[1]
		pt.x[2] |= m & e.x[2]
		pt.x[3] |= m & e.x[3]
		pt.y[0] |= m & e.y[0]
		pt.y[1] |= m & e.y[1]
		pt.y[2] |= m & e.y[2]
		pt.y[3] |= m & e.y[3]
	}
	var ny fe
	feNeg(&ny, &pt.y)
	feSelect(&pt.y, &pt.y, &ny, neg)
	return ctEq(abs, 0)
}

// accumulate sets q to sum = q + pt, to pt itself while q is at infinity
// (qInf all ones), or leaves it when zero is all ones (pt is not a point),
// and updates qInf.
func accumulate(q *jacPoint, qInf *uint64, sum *jacPoint, pt *affinePoint, zero uint64) {
	one := fe{1}
	feSelect(&sum.x, &sum.x, &pt.x, *qInf)
	feSelect(&sum.y, &sum.y, &pt.y, *qInf)
	feSelect(&sum.z, &sum.z, &one, *qInf)
	feSelect(&q.x, &sum.x, &q.x, zero)
	feSelect(&q.y, &sum.y, &q.y, zero)
	feSelect(&q.z, &sum.z, &q.z, zero)
	*qInf &= zero
}

// jacSelect sets r = b when m is all ones and r = a when m is zero.
func jacSelect(r, a, b *jacPoint, m uint64) {
	feSelect(&r.x, &a.x, &b.x, m)
	feSelect(&r.y, &a.y, &b.y, m)
	feSelect(&r.z, &a.z, &b.z, m)
}
