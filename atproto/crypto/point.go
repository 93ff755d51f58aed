package crypto

import (
	"crypto/subtle"
	"fmt"
)

// points holds both SEC1 encodings of a public key, computed once when the
// key is made.
type points struct {
	compressed   [33]byte
	uncompressed [65]byte
}

// setFromUncompressed fills both encodings from a 65-byte 0x04||x||y point.
func (p *points) setFromUncompressed(unc []byte) {
	copy(p.uncompressed[:], unc)
	p.compressed[0] = 0x02 | unc[64]&1
	copy(p.compressed[1:], unc[1:33])
}

func (p *points) Bytes() []byte             { return append([]byte(nil), p.compressed[:]...) }
func (p *points) UncompressedBytes() []byte { return append([]byte(nil), p.uncompressed[:]...) }

// checkPointEncoding reports, before any curve arithmetic, whether b has the
// length and leading byte of a compressed or uncompressed SEC1 point. The
// hybrid (0x06/0x07) and identity (0x00) encodings are refused.
func checkPointEncoding(b []byte, curve string) error {
	switch len(b) {
	case 33:
		if b[0] != 0x02 && b[0] != 0x03 {
			return fmt.Errorf("crypto: %s compressed public key must start with 0x02 or 0x03, got 0x%02x", curve, b[0])
		}
	case 65:
		if b[0] != 0x04 {
			return fmt.Errorf("crypto: %s uncompressed public key must start with 0x04, got 0x%02x", curve, b[0])
		}
	default:
		return fmt.Errorf("crypto: %s public key must be 33 bytes (compressed) or 65 bytes (uncompressed), got %d", curve, len(b))
	}
	return nil
}

// checkPrivateScalar validates a raw private key: exactly 32 bytes holding
// an integer in [1, n-1].
func checkPrivateScalar(b []byte, o *order) error {
	if len(b) != 32 {
		return fmt.Errorf("crypto: %s private key must be 32 bytes, got %d", o.curve, len(b))
	}
	var v [32]byte
	copy(v[:], b)
	if err := o.checkScalar(&v); err != nil {
		return fmt.Errorf("crypto: %s private key scalar %w", o.curve, err)
	}
	return nil
}

// equalPublic compares two public keys of any implementation by curve and
// compressed point.
func equalPublic(a PublicKey, b PublicKey) bool {
	if b == nil || a.KeyType() != b.KeyType() {
		return false
	}
	return subtle.ConstantTimeCompare(a.Bytes(), b.Bytes()) == 1
}

// equalPrivate compares two private keys by curve and scalar, in constant
// time with respect to the scalar.
func equalPrivate(a PrivateKey, b PrivateKey) bool {
	if b == nil || a.KeyType() != b.KeyType() {
		return false
	}
	return subtle.ConstantTimeCompare(a.Bytes(), b.Bytes()) == 1
}

// describePrivate is the text form of a private key, used by its String
// and Format methods: the curve and public key, never the secret. Format
// covers every verb (%v, %+v, %#v, %d, %x, ...), so printing a key cannot
// write the raw scalar into a log.
func describePrivate(k PrivateKey) string {
	return "crypto.PrivateKey(" + string(k.KeyType()) + ", public " + k.Public().DIDKey() + ")"
}
