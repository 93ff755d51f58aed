package crypto

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
)

// publicKeyP256 is a NIST P-256 public key.
type publicKeyP256 struct {
	points
	key *ecdsa.PublicKey
}

// privateKeyP256 is a NIST P-256 private key.
type privateKeyP256 struct {
	key *ecdsa.PrivateKey
	raw [32]byte
	pub *publicKeyP256
}

// GenerateP256 makes a new random P-256 private key.
func GenerateP256() (PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("crypto: generating P-256 key: %w", err)
	}
	return newPrivateP256(key)
}

// ParsePrivateBytesP256 loads a P-256 private key from its raw 32-byte
// big-endian scalar, which must be in [1, n-1].
func ParsePrivateBytesP256(b []byte) (PrivateKey, error) {
	if err := checkPrivateScalar(b, orderP256); err != nil {
		return nil, err
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
	if err != nil {
		return nil, fmt.Errorf("crypto: invalid P-256 private key: %w", err)
	}
	return newPrivateP256(key)
}

// ParsePublicBytesP256 loads a P-256 public key from a SEC1 point,
// compressed (33 bytes) or uncompressed (65 bytes).
func ParsePublicBytesP256(b []byte) (PublicKey, error) {
	if err := checkPointEncoding(b, "P-256"); err != nil {
		return nil, err
	}
	unc := b
	if len(b) == 33 {
		x, y := elliptic.UnmarshalCompressed(elliptic.P256(), b)
		if x == nil {
			return nil, fmt.Errorf("crypto: P-256 public key is not a valid point on the curve")
		}
		unc = make([]byte, 65)
		unc[0] = 0x04
		x.FillBytes(unc[1:33])
		y.FillBytes(unc[33:])
	}
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), unc)
	if err != nil {
		return nil, fmt.Errorf("crypto: P-256 public key is not a valid point on the curve")
	}
	return newPublicP256(key, unc), nil
}

func newPublicP256(key *ecdsa.PublicKey, unc []byte) *publicKeyP256 {
	p := &publicKeyP256{key: key}
	p.setFromUncompressed(unc)
	return p
}

func newPrivateP256(key *ecdsa.PrivateKey) (*privateKeyP256, error) {
	raw, err := key.Bytes()
	if err != nil {
		return nil, fmt.Errorf("crypto: encoding P-256 private key: %w", err)
	}
	unc, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("crypto: encoding P-256 public key: %w", err)
	}
	k := &privateKeyP256{key: key, pub: newPublicP256(&key.PublicKey, unc)}
	copy(k.raw[:], raw)
	return k, nil
}

func (k *privateKeyP256) KeyType() KeyType        { return KeyTypeP256 }
func (k *privateKeyP256) Public() PublicKey       { return k.pub }
func (k *privateKeyP256) Bytes() []byte           { return append([]byte(nil), k.raw[:]...) }
func (k *privateKeyP256) Multibase() string       { return encodeMulticodec(codecP256Priv, k.raw[:]) }
func (k *privateKeyP256) JWK() (JWK, error)       { return privateJWK(k) }
func (k *privateKeyP256) Equal(o PrivateKey) bool { return equalPrivate(k, o) }

func (k *privateKeyP256) HashAndSign(msg []byte) ([]byte, error) {
	der, err := ecdsa.SignASN1(rand.Reader, k.key, digest(msg))
	if err != nil {
		return nil, fmt.Errorf("crypto: P-256 signing: %w", err)
	}
	sc, err := parseDER(der)
	if err != nil {
		return nil, fmt.Errorf("crypto: P-256 signing produced a bad signature: %w", err)
	}
	// crypto/ecdsa makes no low-S promise; flip s into the lower half.
	return orderP256.lowS(sc).compact(), nil
}

func (k *publicKeyP256) KeyType() KeyType       { return KeyTypeP256 }
func (k *publicKeyP256) Multibase() string      { return encodeMulticodec(codecP256Pub, k.compressed[:]) }
func (k *publicKeyP256) DIDKey() string         { return didKeyPrefix + k.Multibase() }
func (k *publicKeyP256) JWK() (JWK, error)      { return publicJWK(k), nil }
func (k *publicKeyP256) Equal(o PublicKey) bool { return equalPublic(k, o) }
func (k *publicKeyP256) String() string         { return k.DIDKey() }

func (k *publicKeyP256) HashAndVerify(msg, sig []byte) error {
	sc, err := parseCompactStrict(sig, orderP256)
	if err != nil {
		return err
	}
	return k.verify(digest(msg), sc)
}

func (k *publicKeyP256) HashAndVerifyLenient(msg, sig []byte) error {
	cands, err := parseLenient(sig, orderP256)
	if err != nil {
		return err
	}
	d := digest(msg)
	for _, sc := range cands {
		if k.verify(d, sc) == nil {
			return nil
		}
	}
	return verifyFailed()
}

// verify checks scalars that are already known to be in [1, n-1].
func (k *publicKeyP256) verify(d []byte, sc *sigScalars) error {
	if !ecdsa.VerifyASN1(k.key, d, sc.der()) {
		return verifyFailed()
	}
	return nil
}

func (k *privateKeyP256) String() string             { return describePrivate(k) }
func (k *privateKeyP256) Format(f fmt.State, _ rune) { io.WriteString(f, describePrivate(k)) }
