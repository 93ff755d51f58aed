package crypto

import "math/bits"

// Variable-time modular inversion for 256-bit odd moduli, by Bernstein and
// Yang's "divsteps" ("Fast constant-time gcd computation and modular
// inversion", 2019) in batches of 62 on the low bits, with the transition
// matrix of each batch then applied to the full numbers.
//
// Its running time depends on the input. Signing uses it only on a blinded
// value (k*b for a secret random b, see signK256), which is uniformly
// distributed whatever the nonce k is, so the timing says nothing about k.

const mask62 = 1<<62 - 1

// int62x5 is the signed integer v[0] + v[1]*2^62 + ... + v[4]*2^248, with
// v[0..3] in [0, 2^62) and v[4] carrying the sign.
type int62x5 [5]int64

// invModulus is an odd modulus m for modInverseVartime.
type invModulus struct {
	m    int62x5
	mInv uint64 // m^-1 mod 2^62
}

func toInt62x5(a *[4]uint64) int62x5 {
	return int62x5{
		int64(a[0] & mask62),
		int64((a[0]>>62 | a[1]<<2) & mask62),
		int64((a[1]>>60 | a[2]<<4) & mask62),
		int64((a[2]>>58 | a[3]<<6) & mask62),
		int64(a[3] >> 56),
	}
}

func newInvModulus(m *[4]uint64) *invModulus {
	// Newton's iteration x <- x(2 - m x) doubles the number of correct
	// low bits of m^-1, starting from x = m, right to 3 bits for odd m.
	x := m[0]
	for range 5 {
		x *= 2 - m[0]*x
	}
	return &invModulus{m: toInt62x5(m), mInv: x & mask62}
}

// acc128 is a signed 128-bit accumulator.
type acc128 struct {
	hi int64
	lo uint64
}

// mulAdd adds x*y, for signed x and y.
func (a *acc128) mulAdd(x, y int64) {
	h, l := bits.Mul64(uint64(x), uint64(y))
	// The unsigned product of the two's complement patterns is off by
	// y*2^64 when x < 0 and by x*2^64 when y < 0.
	h -= uint64(x>>63) & uint64(y)
	h -= uint64(y>>63) & uint64(x)
	var c uint64
	a.lo, c = bits.Add64(a.lo, l, 0)
	a.hi += int64(h + c)
}

// shr62 is an arithmetic shift right by 62.
func (a *acc128) shr62() {
	a.lo = a.lo>>62 | uint64(a.hi)<<2
	a.hi >>= 62
}

// divsteps62 runs 62 divsteps on the low 64 bits of f (odd) and g:
//
//	eta < 0 and g odd: (eta, f, g) <- (-eta-1, g, (g-f)/2)
//	g odd:             (eta, f, g) <- (eta-1, f, (g+f)/2)
//	g even:            (eta, f, g) <- (eta-1, f, g/2)
//
// (eta is minus the paper's delta), and returns the new eta and the
// matrix (u v; q r) with 2^62 (f', g') = (u v; q r) (f, g), whose rows
// have |u|+|v| <= 2^62 and |q|+|r| <= 2^62. Step j only reads bit j of the
// inputs, so 64 bits are enough.
func divsteps62(eta int64, f, g uint64) (int64, int64, int64, int64, int64) {
	// Invariant after j steps: 2^j f_j = u f + v g and 2^j g_j = q f + r g.
	u, v, q, r := int64(1), int64(0), int64(0), int64(1)
	left := 62
	for {
		// Runs of even steps at once.
		z := bits.TrailingZeros64(g | 1<<uint(left))
		g >>= uint(z)
		u <<= uint(z)
		v <<= uint(z)
		eta -= int64(z)
		left -= z
		if left == 0 {
			break
		}
		if eta < 0 {
			eta = -eta - 1
			f, g = g, (g-f)>>1
			u, v, q, r = q<<1, r<<1, q-u, r-v
		} else {
			eta--
			g = (g + f) >> 1
			q, r = q+u, r+v
			u, v = u<<1, v<<1
		}
		left--
		if left == 0 {
			break
		}
	}
	return eta, u, v, q, r
}

// updateFG sets (f, g) to (u v; q r) (f, g) / 2^62, which is exact.
func updateFG(f, g *int62x5, u, v, q, r int64) {
	var cf, cg acc128
	cf.mulAdd(u, f[0])
	cf.mulAdd(v, g[0])
	cg.mulAdd(q, f[0])
	cg.mulAdd(r, g[0])
	cf.shr62()
	cg.shr62()
	for i := 1; i < 5; i++ {
		cf.mulAdd(u, f[i])
		cf.mulAdd(v, g[i])
		cg.mulAdd(q, f[i])
		cg.mulAdd(r, g[i])
		f[i-1] = int64(cf.lo & mask62)
		g[i-1] = int64(cg.lo & mask62)
		cf.shr62()
		cg.shr62()
	}
	f[4] = int64(cf.lo)
	g[4] = int64(cg.lo)
}

// updateDE sets (d, e) to (u v; q r) (d, e) / 2^62 mod m: it adds the
// multiples kd*m and ke*m, kd and ke in [0, 2^62), that make the low 62
// bits zero, then shifts. Each call grows max(|d|, |e|) by at most m.
func updateDE(d, e *int62x5, u, v, q, r int64, md *invModulus) {
	lowD := uint64(u*d[0] + v*e[0])
	lowE := uint64(q*d[0] + r*e[0])
	kd := int64(-lowD * md.mInv & mask62)
	ke := int64(-lowE * md.mInv & mask62)
	var cd, ce acc128
	cd.mulAdd(u, d[0])
	cd.mulAdd(v, e[0])
	cd.mulAdd(kd, md.m[0])
	ce.mulAdd(q, d[0])
	ce.mulAdd(r, e[0])
	ce.mulAdd(ke, md.m[0])
	cd.shr62()
	ce.shr62()
	for i := 1; i < 5; i++ {
		cd.mulAdd(u, d[i])
		cd.mulAdd(v, e[i])
		cd.mulAdd(kd, md.m[i])
		ce.mulAdd(q, d[i])
		ce.mulAdd(r, e[i])
		ce.mulAdd(ke, md.m[i])
		d[i-1] = int64(cd.lo & mask62)
		e[i-1] = int64(ce.lo & mask62)
		cd.shr62()
		ce.shr62()
	}
	d[4] = int64(cd.lo)
	e[4] = int64(ce.lo)
}

// addMul62 sets a = a + s*b for s = +-1.
func addMul62(a, b *int62x5, s int64) {
	var c int64
	for i := range 4 {
		t := a[i] + s*b[i] + c
		a[i] = t & mask62
		c = t >> 62
	}
	a[4] += s*b[4] + c
}

// cmp62 returns the sign of a - b.
func cmp62(a, b *int62x5) int {
	for i := 4; i >= 0; i-- {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// modInverseVartime returns x^-1 mod m, for x in [1, m) (four little-endian
// limbs). Variable time: only for blinded values.
func modInverseVartime(x *[4]uint64, md *invModulus) [4]uint64 {
	// Throughout, f = d x and g = e x (mod m). Starting from f = m, g = x,
	// the divsteps end with g = 0 and f = gcd = +-1, within 741 steps for
	// 256-bit inputs (12 batches), so |d| stays below 13m.
	f := md.m
	g := toInt62x5(x)
	var d, e int62x5
	e[0] = 1
	eta := int64(-1)
	for g != (int62x5{}) {
		var u, v, q, r int64
		eta, u, v, q, r = divsteps62(eta, uint64(f[0])|uint64(f[1])<<62, uint64(g[0])|uint64(g[1])<<62)
		updateDE(&d, &e, u, v, q, r, md)
		updateFG(&f, &g, u, v, q, r)
	}
	if f[4] < 0 { // f = -1: the inverse is -d
		var zero int62x5
		addMul62(&zero, &d, -1)
		d = zero
	}
	for d[4] < 0 {
		addMul62(&d, &md.m, 1)
	}
	for cmp62(&d, &md.m) >= 0 {
		addMul62(&d, &md.m, -1)
	}
	return [4]uint64{
		uint64(d[0]) | uint64(d[1])<<62,
		uint64(d[1])>>2 | uint64(d[2])<<60,
		uint64(d[2])>>4 | uint64(d[3])<<58,
		uint64(d[3])>>6 | uint64(d[4])<<56,
	}
}
