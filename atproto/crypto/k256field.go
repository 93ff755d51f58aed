package crypto

import (
	"encoding/binary"
	"math/bits"
)

// This file is arithmetic modulo the secp256k1 field prime
// p = 2^256 - 2^32 - 977, used by the constant-time base-point
// multiplication that K-256 signing runs on the secret nonce.
//
// An element is four little-endian 64-bit limbs holding any value below
// 2^256 that is congruent to the element: values in [p, 2^256) are allowed
// between operations and only canonicalised when encoded. Every function
// here runs in time independent of the limb values: no branches or memory
// indices depend on them, and the math/bits functions used (Add64, Sub64,
// Mul64) are documented to take time independent of their inputs. On
// amd64 the four basic operations are in assembly (k256field_amd64.s),
// with the same property; the Go versions here are the reference and the
// fallback.

type fe [4]uint64

// feC is 2^256 mod p, so a carry out of the top limb folds back in as feC.
const feC = 0x1000003d1

// feP is p itself, limb by limb.
var feP = fe{0xfffffffefffffc2f, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff}

// feAddGeneric sets z = a + b mod p.
func feAddGeneric(z, a, b *fe) {
	r0, c := bits.Add64(a[0], b[0], 0)
	r1, c := bits.Add64(a[1], b[1], c)
	r2, c := bits.Add64(a[2], b[2], c)
	r3, c := bits.Add64(a[3], b[3], c)
	// A carry is worth 2^256 = feC mod p. Folding it in can carry once
	// more only if the sum was at least 2^257 - feC, and then what is
	// left is tiny, so the second fold cannot carry.
	r0, c = bits.Add64(r0, c*feC, 0)
	r1, c = bits.Add64(r1, 0, c)
	r2, c = bits.Add64(r2, 0, c)
	r3, c = bits.Add64(r3, 0, c)
	r0 += c * feC
	z[0], z[1], z[2], z[3] = r0, r1, r2, r3
}

// feSubGeneric sets z = a - b mod p.
func feSubGeneric(z, a, b *fe) {
	r0, bo := bits.Sub64(a[0], b[0], 0)
	r1, bo := bits.Sub64(a[1], b[1], bo)
	r2, bo := bits.Sub64(a[2], b[2], bo)
	r3, bo := bits.Sub64(a[3], b[3], bo)
	// A borrow means the limbs hold a - b + 2^256; subtracting feC more
	// turns that into a - b + p. If that borrows again the limbs are at
	// least 2^256 - feC, and one more feC cannot borrow.
	r0, bo = bits.Sub64(r0, bo*feC, 0)
	r1, bo = bits.Sub64(r1, 0, bo)
	r2, bo = bits.Sub64(r2, 0, bo)
	r3, bo = bits.Sub64(r3, 0, bo)
	r0 -= bo * feC
	z[0], z[1], z[2], z[3] = r0, r1, r2, r3
}

// feNeg sets z = -a mod p.
func feNeg(z, a *fe) {
	var zero fe
	feSub(z, &zero, a)
}

// feMulSmall sets z = a * m mod p for a small constant m (m < 2^31).
func feMulSmall(z, a *fe, m uint64) {
	h0, l0 := bits.Mul64(a[0], m)
	h1, l1 := bits.Mul64(a[1], m)
	h2, l2 := bits.Mul64(a[2], m)
	h3, l3 := bits.Mul64(a[3], m)
	r1, c := bits.Add64(l1, h0, 0)
	r2, c := bits.Add64(l2, h1, c)
	r3, c := bits.Add64(l3, h2, c)
	top := h3 + c // below 2^31
	feFold(z, l0, r1, r2, r3, top)
}

// feHalf sets z = a/2 mod p: a/2 for even a, (a + p)/2 for odd a.
func feHalf(z, a *fe) {
	m := -(a[0] & 1) // all ones when a is odd
	r0, c := bits.Add64(a[0], feP[0]&m, 0)
	r1, c := bits.Add64(a[1], feP[1]&m, c)
	r2, c := bits.Add64(a[2], feP[2]&m, c)
	r3, c := bits.Add64(a[3], feP[3]&m, c)
	z[0] = r0>>1 | r1<<63
	z[1] = r1>>1 | r2<<63
	z[2] = r2>>1 | r3<<63
	z[3] = r3>>1 | c<<63
}

// feFold sets z = (r0..r3) + top * 2^256 mod p, for top < 2^35.
func feFold(z *fe, r0, r1, r2, r3, top uint64) {
	// top * feC < 2^68: two limbs.
	th, tl := bits.Mul64(top, feC)
	r0, c := bits.Add64(r0, tl, 0)
	r1, c = bits.Add64(r1, th, c)
	r2, c = bits.Add64(r2, 0, c)
	r3, c = bits.Add64(r3, 0, c)
	// On a carry out, the value wrapped past 2^256 and is now below 2^68,
	// so adding feC once more touches only the two low limbs.
	r0, c = bits.Add64(r0, c*feC, 0)
	r1 += c
	z[0], z[1], z[2], z[3] = r0, r1, r2, r3
}

// feReduce512 sets z to the 512-bit value t (little-endian limbs) mod p.
func feReduce512(z *fe, t0, t1, t2, t3, t4, t5, t6, t7 uint64) {
	// t = lo + hi * 2^256 = lo + hi * feC (mod p); hi * feC has 5 limbs.
	h0, l0 := bits.Mul64(t4, feC)
	h1, l1 := bits.Mul64(t5, feC)
	h2, l2 := bits.Mul64(t6, feC)
	h3, l3 := bits.Mul64(t7, feC)
	p1, c := bits.Add64(l1, h0, 0)
	p2, c := bits.Add64(l2, h1, c)
	p3, c := bits.Add64(l3, h2, c)
	p4 := h3 + c // below 2^33

	r0, c := bits.Add64(t0, l0, 0)
	r1, c := bits.Add64(t1, p1, c)
	r2, c := bits.Add64(t2, p2, c)
	r3, c := bits.Add64(t3, p3, c)
	feFold(z, r0, r1, r2, r3, p4+c)
}

// feMulGeneric sets z = a * b mod p.
func feMulGeneric(z, a, b *fe) {
	a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
	b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
	var c, c2 uint64

	// Row 0: a0 * b.
	h0, t0 := bits.Mul64(a0, b0)
	h1, l1 := bits.Mul64(a0, b1)
	h2, l2 := bits.Mul64(a0, b2)
	h3, l3 := bits.Mul64(a0, b3)
	t1, c := bits.Add64(l1, h0, 0)
	t2, c := bits.Add64(l2, h1, c)
	t3, c := bits.Add64(l3, h2, c)
	t4 := h3 + c

	// Row 1: a1 * b, shifted one limb.
	h0, l0 := bits.Mul64(a1, b0)
	h1, l1 = bits.Mul64(a1, b1)
	h2, l2 = bits.Mul64(a1, b2)
	h3, l3 = bits.Mul64(a1, b3)
	t1, c = bits.Add64(t1, l0, 0)
	t2, c = bits.Add64(t2, l1, c)
	t3, c = bits.Add64(t3, l2, c)
	t4, c = bits.Add64(t4, l3, c)
	t2, c2 = bits.Add64(t2, h0, 0)
	t3, c2 = bits.Add64(t3, h1, c2)
	t4, c2 = bits.Add64(t4, h2, c2)
	t5 := h3 + c + c2

	// Row 2.
	h0, l0 = bits.Mul64(a2, b0)
	h1, l1 = bits.Mul64(a2, b1)
	h2, l2 = bits.Mul64(a2, b2)
	h3, l3 = bits.Mul64(a2, b3)
	t2, c = bits.Add64(t2, l0, 0)
	t3, c = bits.Add64(t3, l1, c)
	t4, c = bits.Add64(t4, l2, c)
	t5, c = bits.Add64(t5, l3, c)
	t3, c2 = bits.Add64(t3, h0, 0)
	t4, c2 = bits.Add64(t4, h1, c2)
	t5, c2 = bits.Add64(t5, h2, c2)
	t6 := h3 + c + c2

	// Row 3.
	h0, l0 = bits.Mul64(a3, b0)
	h1, l1 = bits.Mul64(a3, b1)
	h2, l2 = bits.Mul64(a3, b2)
	h3, l3 = bits.Mul64(a3, b3)
	t3, c = bits.Add64(t3, l0, 0)
	t4, c = bits.Add64(t4, l1, c)
	t5, c = bits.Add64(t5, l2, c)
	t6, c = bits.Add64(t6, l3, c)
	t4, c2 = bits.Add64(t4, h0, 0)
	t5, c2 = bits.Add64(t5, h1, c2)
	t6, c2 = bits.Add64(t6, h2, c2)
	t7 := h3 + c + c2

	feReduce512(z, t0, t1, t2, t3, t4, t5, t6, t7)
}

// feSqrGeneric sets z = a * a mod p.
func feSqrGeneric(z, a *fe) {
	a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
	var c, c2 uint64

	// The cross products a_i * a_j for i < j, at limb i + j.
	h01, l01 := bits.Mul64(a0, a1)
	h02, l02 := bits.Mul64(a0, a2)
	h03, l03 := bits.Mul64(a0, a3)
	h12, l12 := bits.Mul64(a1, a2)
	h13, l13 := bits.Mul64(a1, a3)
	h23, l23 := bits.Mul64(a2, a3)

	// Sum them into x1..x6 (x_k at limb k).
	x1 := l01
	x2, c := bits.Add64(h01, l02, 0)
	x3, c := bits.Add64(h02, l03, c)
	x4, c := bits.Add64(h03, l13, c)
	x5, c := bits.Add64(h13, l23, c)
	x6 := h23 + c
	x3, c2 = bits.Add64(x3, l12, 0)
	x4, c2 = bits.Add64(x4, h12, c2)
	x5, c2 = bits.Add64(x5, 0, c2)
	x6 += c2

	// Double them.
	x7 := x6 >> 63
	x6 = x6<<1 | x5>>63
	x5 = x5<<1 | x4>>63
	x4 = x4<<1 | x3>>63
	x3 = x3<<1 | x2>>63
	x2 = x2<<1 | x1>>63
	x1 <<= 1

	// Add the squares a_i^2 at limb 2i.
	s0h, s0l := bits.Mul64(a0, a0)
	s1h, s1l := bits.Mul64(a1, a1)
	s2h, s2l := bits.Mul64(a2, a2)
	s3h, s3l := bits.Mul64(a3, a3)
	t0 := s0l
	t1, c := bits.Add64(x1, s0h, 0)
	t2, c := bits.Add64(x2, s1l, c)
	t3, c := bits.Add64(x3, s1h, c)
	t4, c := bits.Add64(x4, s2l, c)
	t5, c := bits.Add64(x5, s2h, c)
	t6, c := bits.Add64(x6, s3l, c)
	t7 := x7 + s3h + c

	feReduce512(z, t0, t1, t2, t3, t4, t5, t6, t7)
}

// feSqrN sets z = a^(2^n) mod p.
func feSqrN(z, a *fe, n int) {
	feSqr(z, a)
	for i := 1; i < n; i++ {
		feSqr(z, z)
	}
}

// feInv sets z = 1/a mod p (0 when a is 0), as a^(p-2) by a fixed
// addition chain: constant time.
func feInv(z, a *fe) {
	// p - 2 in binary, from the top: 223 ones, a zero, 22 ones, 0000,
	// 1, 0, 11, 0, 1. Build a^(2^k - 1), a run of k ones, for the run
	// lengths needed, then shift and append.
	var x2, x3, x6, x9, x11, x22, x44, x88, x176, x220, x223, t fe
	feSqr(&x2, a)
	feMul(&x2, &x2, a) // 11
	feSqr(&x3, &x2)
	feMul(&x3, &x3, a) // 111
	feSqrN(&x6, &x3, 3)
	feMul(&x6, &x6, &x3)
	feSqrN(&x9, &x6, 3)
	feMul(&x9, &x9, &x3)
	feSqrN(&x11, &x9, 2)
	feMul(&x11, &x11, &x2)
	feSqrN(&x22, &x11, 11)
	feMul(&x22, &x22, &x11)
	feSqrN(&x44, &x22, 22)
	feMul(&x44, &x44, &x22)
	feSqrN(&x88, &x44, 44)
	feMul(&x88, &x88, &x44)
	feSqrN(&x176, &x88, 88)
	feMul(&x176, &x176, &x88)
	feSqrN(&x220, &x176, 44)
	feMul(&x220, &x220, &x44)
	feSqrN(&x223, &x220, 3)
	feMul(&x223, &x223, &x3)

	feSqrN(&t, &x223, 23) // 223 ones, then 0 and 22 ones
	feMul(&t, &t, &x22)
	feSqrN(&t, &t, 5) // 0000 1
	feMul(&t, &t, a)
	feSqrN(&t, &t, 3) // 0 11
	feMul(&t, &t, &x2)
	feSqrN(&t, &t, 2) // 0 1
	feMul(z, &t, a)
}

// feNormalize sets z to the canonical representative of a, in [0, p).
func feNormalize(z, a *fe) {
	// a < 2^256 < 2p, so at most one p comes off: a >= p exactly when
	// a + feC carries out of 2^256, and then a + feC - 2^256 = a - p.
	r0, c := bits.Add64(a[0], feC, 0)
	r1, c := bits.Add64(a[1], 0, c)
	r2, c := bits.Add64(a[2], 0, c)
	r3, c := bits.Add64(a[3], 0, c)
	m := -c // all ones when a >= p
	z[0] = a[0] ^ (m & (a[0] ^ r0))
	z[1] = a[1] ^ (m & (a[1] ^ r1))
	z[2] = a[2] ^ (m & (a[2] ^ r2))
	z[3] = a[3] ^ (m & (a[3] ^ r3))
}

// feSelect sets z = b when m is all ones and z = a when m is zero.
func feSelect(z, a, b *fe, m uint64) {
	z[0] = a[0] ^ (m & (a[0] ^ b[0]))
	z[1] = a[1] ^ (m & (a[1] ^ b[1]))
	z[2] = a[2] ^ (m & (a[2] ^ b[2]))
	z[3] = a[3] ^ (m & (a[3] ^ b[3]))
}

// feSetBytes sets z from 32 big-endian bytes. The value may be at or above
// p; the arithmetic treats it modulo p.
func feSetBytes(z *fe, b *[32]byte) {
	z[3] = binary.BigEndian.Uint64(b[0:])
	z[2] = binary.BigEndian.Uint64(b[8:])
	z[1] = binary.BigEndian.Uint64(b[16:])
	z[0] = binary.BigEndian.Uint64(b[24:])
}

// feBytes writes the canonical 32-byte big-endian encoding of a.
func feBytes(out *[32]byte, a *fe) {
	var n fe
	feNormalize(&n, a)
	binary.BigEndian.PutUint64(out[0:], n[3])
	binary.BigEndian.PutUint64(out[8:], n[2])
	binary.BigEndian.PutUint64(out[16:], n[1])
	binary.BigEndian.PutUint64(out[24:], n[0])
}
