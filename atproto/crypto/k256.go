package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"sync/atomic"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
	"gitlab.com/yawning/secp256k1-voi/secec"
)

// publicKeyK256 is a secp256k1 public key.
type publicKeyK256 struct {
	points
	// table holds the key's multiples for verification (k256verify.go),
	// built by the first verification: keys are often parsed and never
	// used to verify.
	table atomic.Pointer[k256QTable]
}

// privateKeyK256 is a secp256k1 private key.
type privateKeyK256 struct {
	key *secec.PrivateKey
	pub *publicKeyK256
	d   *secp256k1.Scalar // the private scalar, for signK256
	raw [32]byte          // and its big-endian bytes
}

// GenerateK256 makes a new random secp256k1 private key.
func GenerateK256() (PrivateKey, error) {
	key, err := secec.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("crypto: generating secp256k1 key: %w", err)
	}
	return newPrivateK256(key), nil
}

// ParsePrivateBytesK256 loads a secp256k1 private key from its raw 32-byte
// big-endian scalar, which must be in [1, n-1].
func ParsePrivateBytesK256(b []byte) (PrivateKey, error) {
	if err := checkPrivateScalar(b, orderK256); err != nil {
		return nil, err
	}
	key, err := secec.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("crypto: invalid secp256k1 private key: %w", err)
	}
	return newPrivateK256(key), nil
}

// ParsePublicBytesK256 loads a secp256k1 public key from a SEC1 point,
// compressed (33 bytes) or uncompressed (65 bytes).
func ParsePublicBytesK256(b []byte) (PublicKey, error) {
	if err := checkPointEncoding(b, "secp256k1"); err != nil {
		return nil, err
	}
	// secp256k1-voi decompresses the point and checks it is on the curve;
	// only the encodings are kept.
	key, err := secec.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("crypto: secp256k1 public key is not a valid point on the curve")
	}
	return newPublicK256(key), nil
}

func newPublicK256(key *secec.PublicKey) *publicKeyK256 {
	p := new(publicKeyK256)
	p.setFromUncompressed(key.Bytes())
	return p
}

func newPrivateK256(key *secec.PrivateKey) *privateKeyK256 {
	k := &privateKeyK256{key: key, pub: newPublicK256(key.PublicKey()), d: key.Scalar()}
	copy(k.raw[:], key.Bytes())
	return k
}

func (k *privateKeyK256) KeyType() KeyType        { return KeyTypeK256 }
func (k *privateKeyK256) Public() PublicKey       { return k.pub }
func (k *privateKeyK256) Bytes() []byte           { return k.key.Bytes() }
func (k *privateKeyK256) Multibase() string       { return encodeMulticodec(codecK256Priv, k.key.Bytes()) }
func (k *privateKeyK256) JWK() (JWK, error)       { return privateJWK(k) }
func (k *privateKeyK256) Equal(o PrivateKey) bool { return equalPrivate(k, o) }

func (k *privateKeyK256) HashAndSign(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	// Fresh randomness hedges the otherwise deterministic RFC 6979 nonce
	// (see signK256). crypto/rand.Read does not fail on supported systems.
	var extra [32]byte
	if _, err := rand.Read(extra[:]); err != nil {
		return nil, fmt.Errorf("crypto: secp256k1 signing: reading randomness: %w", err)
	}
	sig, err := signK256(k.d, &k.raw, &h, extra[:])
	if err != nil {
		return nil, err
	}
	return sig[:], nil
}

func (k *publicKeyK256) KeyType() KeyType       { return KeyTypeK256 }
func (k *publicKeyK256) Multibase() string      { return encodeMulticodec(codecK256Pub, k.compressed[:]) }
func (k *publicKeyK256) DIDKey() string         { return didKeyPrefix + k.Multibase() }
func (k *publicKeyK256) JWK() (JWK, error)      { return publicJWK(k), nil }
func (k *publicKeyK256) Equal(o PublicKey) bool { return equalPublic(k, o) }
func (k *publicKeyK256) String() string         { return k.DIDKey() }

func (k *publicKeyK256) HashAndVerify(msg, sig []byte) error {
	sc, err := parseCompactStrict(sig, orderK256)
	if err != nil {
		return err
	}
	return k.verify(digest(msg), sc)
}

func (k *publicKeyK256) HashAndVerifyLenient(msg, sig []byte) error {
	cands, err := parseLenient(sig, orderK256)
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
func (k *publicKeyK256) verify(d []byte, sc *sigScalars) error {
	if !k256VerifyDigest(k.verifyTable(), (*[32]byte)(d), &sc.r, &sc.s) {
		return verifyFailed()
	}
	return nil
}

// verifyTable returns the key's table of multiples, building it on first
// use. Two goroutines may both build it; they build the same table.
func (k *publicKeyK256) verifyTable() *k256QTable {
	if t := k.table.Load(); t != nil {
		return t
	}
	t := newK256QTable(&k.uncompressed)
	k.table.Store(t)
	return t
}

func (k *privateKeyK256) String() string             { return describePrivate(k) }
func (k *privateKeyK256) Format(f fmt.State, _ rune) { io.WriteString(f, describePrivate(k)) }
