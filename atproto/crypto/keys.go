package crypto

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/welkin-atproto/welkin/internal/base58"
)

// KeyType names one of the two elliptic curves atproto supports.
type KeyType string

const (
	// KeyTypeP256 is NIST P-256 (secp256r1, prime256v1).
	KeyTypeP256 KeyType = "p256"
	// KeyTypeK256 is secp256k1.
	KeyTypeK256 KeyType = "k256"
)

// JWTAlg returns the JOSE algorithm name for signatures with this key type:
// "ES256" for P-256 and "ES256K" for secp256k1, or "" for an unknown type.
func (kt KeyType) JWTAlg() string {
	switch kt {
	case KeyTypeP256:
		return "ES256"
	case KeyTypeK256:
		return "ES256K"
	}
	return ""
}

// PrivateKey is a signing key on one of the supported curves.
type PrivateKey interface {
	// HashAndSign computes the SHA-256 digest of msg and signs it. The
	// result is always the 64-byte compact r||s form, with s in the lower
	// half of the curve order ("low-S"), as atproto requires.
	HashAndSign(msg []byte) ([]byte, error)

	// Public returns the matching public key.
	Public() PublicKey

	// Bytes returns the raw private scalar as 32 big-endian bytes. The
	// slice is a fresh copy.
	Bytes() []byte

	// Multibase returns the key as base58btc multibase text with the
	// private-key multicodec prefix (secp256k1-priv or p256-priv).
	Multibase() string

	// JWK returns the key as a private JSON Web Key (with "d").
	JWK() (JWK, error)

	// Equal reports whether other holds the same curve and scalar.
	Equal(other PrivateKey) bool

	KeyType() KeyType
}

// PublicKey is a verification key on one of the supported curves.
type PublicKey interface {
	// HashAndVerify checks sig against the SHA-256 digest of msg in the
	// strict atproto mode: sig must be exactly 64 bytes of compact r||s,
	// r and s must be in [1, n-1], and s must be at most n/2 (low-S). Any
	// failure returns an error matching ErrInvalidSignature.
	HashAndVerify(msg, sig []byte) error

	// HashAndVerifyLenient is HashAndVerify for old data: it also accepts
	// high-S signatures and DER-encoded signatures.
	HashAndVerifyLenient(msg, sig []byte) error

	// Bytes returns the compressed SEC1 point (33 bytes). The slice is a
	// fresh copy.
	Bytes() []byte

	// UncompressedBytes returns the uncompressed SEC1 point (65 bytes,
	// starting 0x04). The slice is a fresh copy.
	UncompressedBytes() []byte

	// Multibase returns the multikey text: 'z' followed by the base58btc
	// encoding of the multicodec varint (p256-pub 0x1200 or secp256k1-pub
	// 0xe7) and the compressed point.
	Multibase() string

	// DIDKey returns "did:key:" followed by Multibase().
	DIDKey() string

	// JWK returns the key as a public JSON Web Key.
	JWK() (JWK, error)

	// Equal reports whether other is the same curve and point.
	Equal(other PublicKey) bool

	KeyType() KeyType
}

// Multicodec codes for the key types, from the multiformats table.
const (
	codecK256Pub  = 0xe7
	codecP256Pub  = 0x1200
	codecK256Priv = 0x1301
	codecP256Priv = 0x1306
)

// maxMultibaseLen bounds the text accepted by the multibase parsers. The
// longest form here, a legacy uncompressed key, is 90 characters; the bound
// keeps hostile input from reaching the quadratic base58 decoder.
const maxMultibaseLen = 200

// didKeyPrefix starts every did:key identifier.
const didKeyPrefix = "did:key:"

// ParsePublicDIDKey parses a did:key identifier for a P-256 or secp256k1
// public key, such as the keys in a did:plc rotation list.
func ParsePublicDIDKey(s string) (PublicKey, error) {
	if !strings.HasPrefix(s, didKeyPrefix) {
		return nil, fmt.Errorf("crypto: did:key must start with %q", didKeyPrefix)
	}
	pub, err := ParsePublicMultibase(s[len(didKeyPrefix):])
	if err != nil {
		return nil, fmt.Errorf("crypto: invalid did:key: %w", unprefix(err))
	}
	return pub, nil
}

// ParsePublicMultibase parses a public key in the multikey form used by
// did:key and by Multikey verification methods in DID documents: base58btc
// multibase of a multicodec varint (p256-pub or secp256k1-pub) followed by
// the 33-byte compressed point. Uncompressed points are rejected here, since
// the spec requires the compressed form and two encodings of one key would
// make string comparison of did:key values unreliable.
func ParsePublicMultibase(s string) (PublicKey, error) {
	data, err := decodeMultibase(s)
	if err != nil {
		return nil, err
	}
	codec, key, err := splitMulticodec(data)
	if err != nil {
		return nil, err
	}
	switch codec {
	case codecP256Pub, codecK256Pub:
		if len(key) != 33 {
			return nil, fmt.Errorf("crypto: multikey must hold a 33-byte compressed point, got %d bytes", len(key))
		}
		if codec == codecP256Pub {
			return ParsePublicBytesP256(key)
		}
		return ParsePublicBytesK256(key)
	case codecP256Priv, codecK256Priv:
		return nil, fmt.Errorf("crypto: multibase holds a private key (multicodec 0x%x), not a public key", codec)
	}
	return nil, fmt.Errorf("crypto: unsupported multicodec 0x%x; want p256-pub (0x1200) or secp256k1-pub (0xe7)", codec)
}

// ParsePrivateMultibase parses a private key written as base58btc multibase
// of a multicodec varint (p256-priv 0x1306 or secp256k1-priv 0x1301)
// followed by the 32-byte scalar, the form PrivateKey.Multibase produces.
func ParsePrivateMultibase(s string) (PrivateKey, error) {
	data, err := decodeMultibase(s)
	if err != nil {
		return nil, err
	}
	codec, key, err := splitMulticodec(data)
	if err != nil {
		return nil, err
	}
	switch codec {
	case codecP256Priv:
		return ParsePrivateBytesP256(key)
	case codecK256Priv:
		return ParsePrivateBytesK256(key)
	case codecP256Pub, codecK256Pub:
		return nil, fmt.Errorf("crypto: multibase holds a public key (multicodec 0x%x), not a private key", codec)
	}
	return nil, fmt.Errorf("crypto: unsupported multicodec 0x%x; want p256-priv (0x1306) or secp256k1-priv (0x1301)", codec)
}

// Verification method types of the legacy DID document key form.
const (
	LegacyTypeK256 = "EcdsaSecp256k1VerificationKey2019"
	LegacyTypeP256 = "EcdsaSecp256r1VerificationKey2019"
)

// ParsePublicLegacyMultibase parses the publicKeyMultibase of a legacy DID
// document verification method, which is base58btc multibase of the raw
// point bytes with no multicodec prefix. keyType names the curve: the
// verification method type (LegacyTypeK256 or LegacyTypeP256), or "k256" /
// "p256". Old documents hold uncompressed points; compressed ones are
// accepted too.
func ParsePublicLegacyMultibase(s string, keyType string) (PublicKey, error) {
	var parse func([]byte) (PublicKey, error)
	switch keyType {
	case LegacyTypeK256, string(KeyTypeK256):
		parse = ParsePublicBytesK256
	case LegacyTypeP256, string(KeyTypeP256):
		parse = ParsePublicBytesP256
	case "Multikey":
		return nil, fmt.Errorf("crypto: Multikey verification methods carry a multicodec prefix; use ParsePublicMultibase")
	default:
		return nil, fmt.Errorf("crypto: unsupported legacy key type %q; want %s or %s", truncate(keyType), LegacyTypeK256, LegacyTypeP256)
	}
	data, err := decodeMultibase(s)
	if err != nil {
		return nil, err
	}
	return parse(data)
}

// decodeMultibase checks for the base58btc multibase prefix 'z' and decodes
// the rest.
func decodeMultibase(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("crypto: empty multibase string")
	}
	if len(s) > maxMultibaseLen {
		return nil, fmt.Errorf("crypto: multibase string too long for a key (%d characters, limit %d)", len(s), maxMultibaseLen)
	}
	if s[0] != 'z' {
		return nil, fmt.Errorf("crypto: unsupported multibase prefix %q; only base58btc ('z') is used for keys", s[0])
	}
	data, err := base58.Decode(s[1:])
	if err != nil {
		return nil, fmt.Errorf("crypto: bad multibase text after the 'z' prefix: %w", err)
	}
	return data, nil
}

// splitMulticodec reads the leading multicodec varint, insisting on the
// minimal encoding so that each key has exactly one text form.
func splitMulticodec(data []byte) (uint64, []byte, error) {
	code, n := binary.Uvarint(data)
	if n <= 0 {
		return 0, nil, fmt.Errorf("crypto: missing or malformed multicodec varint")
	}
	if len(binary.AppendUvarint(nil, code)) != n {
		return 0, nil, fmt.Errorf("crypto: multicodec varint is not minimally encoded")
	}
	return code, data[n:], nil
}

// encodeMulticodec returns 'z' + base58btc(varint(code) || key).
func encodeMulticodec(code uint64, key []byte) string {
	buf := binary.AppendUvarint(make([]byte, 0, 3+len(key)), code)
	buf = append(buf, key...)
	return "z" + base58.Encode(buf)
}

// unprefix drops this package's "crypto: " from a wrapped message so that
// nested errors do not repeat it. The error chain is kept intact.
func unprefix(err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "crypto: ") {
		return err
	}
	return &trimmedError{msg: strings.TrimPrefix(msg, "crypto: "), err: err}
}

type trimmedError struct {
	msg string
	err error
}

func (e *trimmedError) Error() string { return e.msg }
func (e *trimmedError) Unwrap() error { return e.err }

// truncate shortens untrusted text quoted in an error message.
func truncate(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
