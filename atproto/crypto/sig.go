package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrInvalidSignature is matched (with errors.Is) by every error that
// HashAndVerify or HashAndVerifyLenient returns: malformed encodings,
// out-of-range scalars, high-S values in strict mode and plain mismatches.
var ErrInvalidSignature = errors.New("crypto: invalid signature")

// ErrHighS is additionally matched by the error strict verification returns
// for a signature whose s lies in the upper half of the curve order. Such a
// signature is mathematically valid ECDSA but not canonical, and atproto
// requires the low-S form.
var ErrHighS = errors.New("high-S signature (s > n/2); atproto requires low-S")

// sigSize is the length of a compact signature: r and s as 32-byte
// big-endian integers, one after the other.
const sigSize = 64

// order holds the group order n of a curve and n/2 (rounded down), both as
// 32-byte big-endian integers, so that range and low-S checks need no big
// integer arithmetic.
type order struct {
	curve string
	n     [32]byte
	halfN [32]byte
}

func newOrder(curve, nHex string) *order {
	raw, err := hex.DecodeString(nHex)
	if err != nil || len(raw) != 32 {
		panic("crypto: bad built-in curve order for " + curve)
	}
	o := &order{curve: curve}
	copy(o.n[:], raw)
	// Shift right by one bit, carrying each low bit into the next byte.
	var carry byte
	for i := range o.n {
		o.halfN[i] = o.n[i]>>1 | carry
		carry = o.n[i] << 7
	}
	return o
}

var (
	orderK256 = newOrder("secp256k1", "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	orderP256 = newOrder("P-256", "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
)

func isZero32(v *[32]byte) bool {
	var acc byte
	for _, b := range v {
		acc |= b
	}
	return acc == 0
}

// checkScalar reports why v is not in [1, n-1], or nil if it is.
func (o *order) checkScalar(v *[32]byte) error {
	if isZero32(v) {
		return errors.New("is zero")
	}
	if bytes.Compare(v[:], o.n[:]) >= 0 {
		return fmt.Errorf("is not below the %s group order", o.curve)
	}
	return nil
}

// isHigh reports whether s > n/2.
func (o *order) isHigh(s *[32]byte) bool {
	return bytes.Compare(s[:], o.halfN[:]) > 0
}

// negate sets s to n - s. s must be in [1, n-1], so no wrap-around occurs.
func (o *order) negate(s *[32]byte) {
	var borrow int
	for i := 31; i >= 0; i-- {
		d := int(o.n[i]) - int(s[i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		s[i] = byte(d)
	}
}

// sigScalars is a signature split into its two scalars.
type sigScalars struct {
	r, s [32]byte
}

// compact returns the 64-byte r||s encoding.
func (sc *sigScalars) compact() []byte {
	out := make([]byte, sigSize)
	copy(out, sc.r[:])
	copy(out[32:], sc.s[:])
	return out
}

// parseCompactStrict parses a 64-byte r||s signature the way atproto
// requires: exact length, r and s in [1, n-1], and s no greater than n/2.
func parseCompactStrict(sig []byte, o *order) (*sigScalars, error) {
	if len(sig) != sigSize {
		if len(sig) > 0 && sig[0] == 0x30 {
			if _, err := parseDER(sig); err == nil {
				return nil, fmt.Errorf("%w: DER-encoded signature; atproto requires the 64-byte compact r||s form (HashAndVerifyLenient accepts DER)", ErrInvalidSignature)
			}
		}
		return nil, fmt.Errorf("%w: want %d bytes (compact r||s), got %d", ErrInvalidSignature, sigSize, len(sig))
	}
	sc, err := parseCompact(sig, o)
	if err != nil {
		return nil, err
	}
	if o.isHigh(&sc.s) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, ErrHighS)
	}
	return sc, nil
}

// parseCompact parses a 64-byte r||s signature with r and s in [1, n-1],
// without any low-S requirement.
func parseCompact(sig []byte, o *order) (*sigScalars, error) {
	if len(sig) != sigSize {
		return nil, fmt.Errorf("%w: want %d bytes (compact r||s), got %d", ErrInvalidSignature, sigSize, len(sig))
	}
	sc := new(sigScalars)
	copy(sc.r[:], sig[:32])
	copy(sc.s[:], sig[32:])
	if err := o.checkScalar(&sc.r); err != nil {
		return nil, fmt.Errorf("%w: r %w", ErrInvalidSignature, err)
	}
	if err := o.checkScalar(&sc.s); err != nil {
		return nil, fmt.Errorf("%w: s %w", ErrInvalidSignature, err)
	}
	return sc, nil
}

// parseLenient returns every reading of sig that lenient verification should
// try: the compact form when sig is 64 bytes with scalars in range, and the
// DER form when sig is well-formed DER with scalars in range. A 64-byte
// string can in principle be both. High-S values are allowed.
func parseLenient(sig []byte, o *order) ([]*sigScalars, error) {
	var out []*sigScalars
	var firstErr error
	if len(sig) == sigSize {
		sc, err := parseCompact(sig, o)
		if err == nil {
			out = append(out, sc)
		} else {
			firstErr = err
		}
	}
	if len(sig) > 0 && sig[0] == 0x30 {
		sc, err := parseDER(sig)
		if err == nil {
			if err = o.checkScalar(&sc.r); err != nil {
				err = fmt.Errorf("%w: DER r %w", ErrInvalidSignature, err)
			} else if err = o.checkScalar(&sc.s); err != nil {
				err = fmt.Errorf("%w: DER s %w", ErrInvalidSignature, err)
			}
		}
		if err == nil {
			out = append(out, sc)
		} else if firstErr == nil {
			firstErr = err
		}
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: want 64 bytes (compact r||s) or a DER sequence, got %d bytes", ErrInvalidSignature, len(sig))
		}
		return nil, firstErr
	}
	return out, nil
}

// parseDER parses a strict DER ECDSA signature, SEQUENCE { r INTEGER,
// s INTEGER }, with minimal length and integer encodings and nothing after
// the sequence. Each integer must be non-negative and fit in 32 bytes. The
// range check against the curve order is left to the caller.
func parseDER(sig []byte) (*sigScalars, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: malformed DER: %s", ErrInvalidSignature, what)
	}
	// The largest valid signature is 2+2*(2+33) = 72 bytes, so every length
	// fits the one-byte short form.
	if len(sig) < 8 || len(sig) > 72 {
		return nil, bad(fmt.Sprintf("length %d outside 8..72", len(sig)))
	}
	if sig[0] != 0x30 {
		return nil, bad("not a SEQUENCE")
	}
	if int(sig[1]) != len(sig)-2 {
		return nil, bad("SEQUENCE length does not match the data")
	}
	sc := new(sigScalars)
	rest := sig[2:]
	for i, dst := range []*[32]byte{&sc.r, &sc.s} {
		name := [2]string{"r", "s"}[i]
		if len(rest) < 2 || rest[0] != 0x02 {
			return nil, bad(name + " is not an INTEGER")
		}
		l := int(rest[1])
		if l == 0 || l > 33 || l > len(rest)-2 {
			return nil, bad(name + " has a bad length")
		}
		v := rest[2 : 2+l]
		if v[0]&0x80 != 0 {
			return nil, bad(name + " is negative")
		}
		if v[0] == 0 && l > 1 && v[1]&0x80 == 0 {
			return nil, bad(name + " has a superfluous leading zero")
		}
		if v[0] == 0 {
			v = v[1:]
		}
		if len(v) > 32 {
			return nil, bad(name + " is longer than 32 bytes")
		}
		copy(dst[32-len(v):], v)
		rest = rest[2+l:]
	}
	if len(rest) != 0 {
		return nil, bad("trailing bytes inside the SEQUENCE")
	}
	return sc, nil
}

// der returns the DER encoding of the signature, for APIs that take it.
func (sc *sigScalars) der() []byte {
	r := derInt(sc.r[:])
	s := derInt(sc.s[:])
	out := make([]byte, 0, 6+len(r)+len(s))
	out = append(out, 0x30, byte(4+len(r)+len(s)))
	out = append(out, 0x02, byte(len(r)))
	out = append(out, r...)
	out = append(out, 0x02, byte(len(s)))
	out = append(out, s...)
	return out
}

// derInt trims leading zeros from a big-endian integer and adds back one
// zero byte if the top bit is set, giving the minimal DER INTEGER content.
func derInt(v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if v[0]&0x80 != 0 {
		return append([]byte{0}, v...)
	}
	return v
}

// lowS returns a copy of sc with s replaced by n - s when s is high.
func (o *order) lowS(sc *sigScalars) *sigScalars {
	out := *sc
	if o.isHigh(&out.s) {
		o.negate(&out.s)
	}
	return &out
}

func digest(msg []byte) []byte {
	h := sha256.Sum256(msg)
	return h[:]
}

// verifyFailed is the error for a well-formed signature that does not match
// the key and message.
func verifyFailed() error {
	return fmt.Errorf("%w: does not match the message and public key", ErrInvalidSignature)
}
