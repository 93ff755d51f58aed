package crypto

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
)

// K-256 ECDSA signing. The nonce comes from RFC 6979's HMAC-SHA256 DRBG
// seeded with the private key and the digest, plus (RFC 6979 section 3.6)
// 32 bytes of fresh randomness: the same hedged construction as
// libsecp256k1's with auxiliary data. Without the randomness it is plain
// deterministic RFC 6979, which the tests check against known vectors.
//
// Nothing that the private key or the nonce k affects changes the
// instructions run or the memory addresses read, apart from the rejection
// of out-of-range nonce candidates (probability about 2^-128): the HMACs
// are crypto/sha256's, k*G is k256BaseMultX, and the arithmetic modulo n
// is secp256k1-voi's fiat-crypto code. The two inversions, of k modulo n
// and of a coordinate of k*G modulo p, take a variable time, but run only
// on values multiplied by secret uniform blinding factors from the same
// DRBG, which are uniform whatever k is.

// scN and scHalfN are n and floor(n/2) as little-endian 64-bit limbs.
var scN, scHalfN = limbsOf(&orderK256.n), limbsOf(&orderK256.halfN)

// limbsOf reads 32 big-endian bytes as four little-endian 64-bit limbs.
func limbsOf(b *[32]byte) [4]uint64 {
	return [4]uint64{
		binary.BigEndian.Uint64(b[24:]),
		binary.BigEndian.Uint64(b[16:]),
		binary.BigEndian.Uint64(b[8:]),
		binary.BigEndian.Uint64(b[0:]),
	}
}

// hmacSHA256 writes HMAC-SHA256(key, msg...) to out. The key is 32 bytes
// and the message at most 160 bytes, so everything stays on the stack.
func hmacSHA256(out, key *[32]byte, msg ...[]byte) {
	var buf [64 + 160]byte
	for i := range 32 {
		buf[i] = key[i] ^ 0x36
	}
	for i := 32; i < 64; i++ {
		buf[i] = 0x36
	}
	n := 64
	for _, m := range msg {
		n += copy(buf[n:], m)
	}
	inner := sha256.Sum256(buf[:n])
	for i := range 32 {
		buf[i] = key[i] ^ 0x5c
	}
	for i := 32; i < 64; i++ {
		buf[i] = 0x5c
	}
	copy(buf[64:], inner[:])
	*out = sha256.Sum256(buf[:96])
}

// rfc6979 is the HMAC_DRBG state (K, V) of RFC 6979 section 3.2.
type rfc6979 struct {
	k, v [32]byte
}

// init runs steps b to g: the DRBG seeded with the private key x, the
// reduced digest h and the optional extra data.
func (d *rfc6979) init(x, h *[32]byte, extra []byte) {
	for i := range d.v {
		d.v[i] = 0x01
		d.k[i] = 0
	}
	hmacSHA256(&d.k, &d.k, d.v[:], []byte{0x00}, x[:], h[:], extra)
	hmacSHA256(&d.v, &d.k, d.v[:])
	hmacSHA256(&d.k, &d.k, d.v[:], []byte{0x01}, x[:], h[:], extra)
	hmacSHA256(&d.v, &d.k, d.v[:])
}

// next returns the next candidate nonce (step h.2: qlen = hlen = 256, so
// one block).
func (d *rfc6979) next() [32]byte {
	hmacSHA256(&d.v, &d.k, d.v[:])
	return d.v
}

// reject updates the state after a candidate is refused (step h.3).
func (d *rfc6979) reject() {
	hmacSHA256(&d.k, &d.k, d.v[:], []byte{0x00})
	hmacSHA256(&d.v, &d.k, d.v[:])
}

// scalarInRange reports whether the limbs are in [1, n-1]. Variable time
// in whether it is, which only says that a candidate nonce was refused.
func scalarInRange(l *[4]uint64) bool {
	_, bo := bits.Sub64(l[0], scN[0], 0)
	_, bo = bits.Sub64(l[1], scN[1], bo)
	_, bo = bits.Sub64(l[2], scN[2], bo)
	_, bo = bits.Sub64(l[3], scN[3], bo)
	return bo == 1 && l[0]|l[1]|l[2]|l[3] != 0
}

// k256NInv is the group order n, for modInverseVartime.
var k256NInv = newInvModulus(&scN)

// scalarLimbs returns the canonical value of s as little-endian limbs.
func scalarLimbs(s *secp256k1.Scalar) [4]uint64 {
	var b [32]byte
	copy(b[:], s.Bytes())
	return limbsOf(&b)
}

// scalarFromLimbs sets s to the value of l, which must be below n.
func scalarFromLimbs(s *secp256k1.Scalar, l *[4]uint64) {
	var b [32]byte
	binary.BigEndian.PutUint64(b[0:], l[3])
	binary.BigEndian.PutUint64(b[8:], l[2])
	binary.BigEndian.PutUint64(b[16:], l[1])
	binary.BigEndian.PutUint64(b[24:], l[0])
	s.SetBytes(&b)
}

// invertBlinded sets kInv = 1/k for a non-zero k, in time independent of
// k: it inverts k*b in variable time, where b (from blind, a secret
// pseudorandom block) is uniform and non-zero, so k*b is uniform whatever
// k is, and multiplies the result by b.
func invertBlinded(kInv, k *secp256k1.Scalar, blind *[32]byte) {
	var b, kb secp256k1.Scalar
	b.SetBytes(blind)
	// b = 0 has probability 2^-256; use 1 rather than fail.
	b.ConditionalSelect(&b, secp256k1.NewScalarFromUint64(1), b.IsZero())
	kb.Multiply(k, &b)
	kbl := scalarLimbs(&kb)
	inv := modInverseVartime(&kbl, k256NInv)
	scalarFromLimbs(kInv, &inv)
	kInv.Multiply(kInv, &b)
}

// errK256Fault is returned when the nonce point fails its consistency
// check: the arithmetic went wrong (a hardware or induced fault), and the
// signature, which could leak the private key, is withheld.
var errK256Fault = errors.New("crypto: secp256k1 signing: internal consistency check failed (arithmetic fault)")

// signK256 signs the 32-byte digest h with the private scalar d (also
// given as its big-endian bytes), mixing extra (nil, or 32 bytes) into the
// nonce. The result is the compact r||s form with s low. It fails only
// with errK256Fault.
func signK256(d *secp256k1.Scalar, dBytes, h *[32]byte, extra []byte) ([64]byte, error) {
	if len(extra) != 0 && len(extra) != 32 {
		panic("crypto: signK256: extra data must be 32 bytes")
	}
	var e secp256k1.Scalar
	e.SetBytes(h) // e = h mod n
	var eBytes [32]byte
	copy(eBytes[:], e.Bytes())

	var drbg rfc6979
	drbg.init(dBytes, &eBytes, extra)
	for {
		kb := drbg.next()
		kl := limbsOf(&kb)
		if !scalarInRange(&kl) {
			drbg.reject()
			continue
		}

		// The blinding factors for the two inversions come from the
		// DRBG's next block, computed without advancing the state so
		// that the nonces stay RFC 6979's: the block itself for 1/k, and
		// its SHA-256 for the field inversion in k256BaseMultX.
		var blind [32]byte
		hmacSHA256(&blind, &drbg.k, drbg.v[:])
		fieldBlind := sha256.Sum256(blind[:])

		var rx [32]byte
		if !k256BaseMultX(&rx, &kl, &fieldBlind) {
			return [64]byte{}, errK256Fault
		}
		var r secp256k1.Scalar
		r.SetBytes(&rx) // r = x mod n; public
		if r.IsZero() == 1 {
			drbg.reject()
			continue
		}

		var k, kInv, s secp256k1.Scalar
		k.SetBytes(&kb)
		invertBlinded(&kInv, &k, &blind)
		s.Multiply(&r, d)
		s.Add(&s, &e)
		s.Multiply(&s, &kInv)
		if s.IsZero() == 1 {
			drbg.reject()
			continue
		}
		s.ConditionalNegate(&s, s.IsGreaterThanHalfN())

		var sig [64]byte
		copy(sig[:32], r.Bytes())
		copy(sig[32:], s.Bytes())
		return sig, nil
	}
}
