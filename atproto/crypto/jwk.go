package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// JWK is a JSON Web Key (RFC 7517) for an elliptic-curve key of one of the
// supported curves. It marshals to and from the usual JSON member names.
// Coordinates and the private scalar are unpadded base64url of fixed-size
// 32-byte big-endian values.
type JWK struct {
	KeyType string `json:"kty"`           // always "EC"
	Curve   string `json:"crv"`           // "P-256" or "secp256k1"
	X       string `json:"x"`             // x coordinate
	Y       string `json:"y"`             // y coordinate
	D       string `json:"d,omitempty"`   // private scalar; private keys only
	Alg     string `json:"alg,omitempty"` // optional: "ES256" or "ES256K"
	Use     string `json:"use,omitempty"` // optional, not interpreted
	KeyID   string `json:"kid,omitempty"` // optional, not interpreted
}

// JWK curve names.
const (
	jwkCurveP256 = "P-256"
	jwkCurveK256 = "secp256k1"
)

var b64url = base64.RawURLEncoding.Strict()

// ParsePublicJWK loads a public key from a JWK. The key must be "kty":"EC"
// with "crv" "P-256" or "secp256k1"; "alg", when present, must match the
// curve. A JWK carrying the private member "d" is refused, since handing a
// private key to a public-key path usually means a secret is about to be
// published; use ParsePrivateJWK and Public instead.
func ParsePublicJWK(j JWK) (PublicKey, error) {
	kt, err := j.keyType()
	if err != nil {
		return nil, err
	}
	if j.D != "" {
		return nil, fmt.Errorf("crypto: JWK holds a private key (member \"d\"); parse it with ParsePrivateJWK")
	}
	return j.public(kt)
}

// ParsePublicJWKBytes parses a JWK from JSON and loads its public key as
// ParsePublicJWK does.
func ParsePublicJWKBytes(data []byte) (PublicKey, error) {
	j, err := decodeJWK(data)
	if err != nil {
		return nil, err
	}
	return ParsePublicJWK(j)
}

// ParsePrivateJWK loads a private key from a JWK with "d". The public
// members "x" and "y" are required, as RFC 7518 says, and must match the
// public key derived from "d".
func ParsePrivateJWK(j JWK) (PrivateKey, error) {
	kt, err := j.keyType()
	if err != nil {
		return nil, err
	}
	if j.D == "" {
		return nil, fmt.Errorf("crypto: JWK has no private member \"d\"")
	}
	d, err := decodeJWKMember("d", j.D)
	if err != nil {
		return nil, err
	}
	var priv PrivateKey
	if kt == KeyTypeP256 {
		priv, err = ParsePrivateBytesP256(d)
	} else {
		priv, err = ParsePrivateBytesK256(d)
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: JWK \"d\": %w", unprefix(err))
	}
	pub, err := j.public(kt)
	if err != nil {
		return nil, err
	}
	if !pub.Equal(priv.Public()) {
		return nil, fmt.Errorf("crypto: JWK \"x\" and \"y\" do not match the public key of \"d\"")
	}
	return priv, nil
}

// ParsePrivateJWKBytes parses a JWK from JSON and loads its private key as
// ParsePrivateJWK does.
func ParsePrivateJWKBytes(data []byte) (PrivateKey, error) {
	j, err := decodeJWK(data)
	if err != nil {
		return nil, err
	}
	return ParsePrivateJWK(j)
}

// keyType checks kty, crv and alg and returns the curve.
func (j *JWK) keyType() (KeyType, error) {
	if j.KeyType != "EC" {
		return "", fmt.Errorf("crypto: unsupported JWK \"kty\" %q; want \"EC\"", truncate(j.KeyType))
	}
	var kt KeyType
	switch j.Curve {
	case jwkCurveP256:
		kt = KeyTypeP256
	case jwkCurveK256:
		kt = KeyTypeK256
	default:
		return "", fmt.Errorf("crypto: unsupported JWK \"crv\" %q; want %q or %q", truncate(j.Curve), jwkCurveP256, jwkCurveK256)
	}
	if j.Alg != "" && j.Alg != kt.JWTAlg() {
		return "", fmt.Errorf("crypto: JWK \"alg\" %q does not fit curve %s; want %q", truncate(j.Alg), j.Curve, kt.JWTAlg())
	}
	return kt, nil
}

// public decodes x and y and loads the point.
func (j *JWK) public(kt KeyType) (PublicKey, error) {
	x, err := decodeJWKMember("x", j.X)
	if err != nil {
		return nil, err
	}
	y, err := decodeJWKMember("y", j.Y)
	if err != nil {
		return nil, err
	}
	unc := make([]byte, 0, 65)
	unc = append(unc, 0x04)
	unc = append(unc, x...)
	unc = append(unc, y...)
	var pub PublicKey
	if kt == KeyTypeP256 {
		pub, err = ParsePublicBytesP256(unc)
	} else {
		pub, err = ParsePublicBytesK256(unc)
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: JWK \"x\"/\"y\": %w", unprefix(err))
	}
	return pub, nil
}

// decodeJWKMember decodes one base64url member that must hold 32 bytes.
func decodeJWKMember(name, v string) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("crypto: JWK member %q is missing", name)
	}
	b, err := b64url.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("crypto: JWK member %q is not unpadded base64url: %w", name, err)
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("crypto: JWK member %q must decode to 32 bytes, got %d", name, len(b))
	}
	return b, nil
}

// decodeJWK reads a JWK JSON object. Member names are matched exactly
// (encoding/json alone would also match "KTY" to "kty"); unknown members
// such as "key_ops" are ignored, and known ones must be strings.
func decodeJWK(data []byte) (JWK, error) {
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&members); err != nil {
		return JWK{}, fmt.Errorf("crypto: JWK is not a JSON object: %w", err)
	}
	if members == nil {
		return JWK{}, fmt.Errorf("crypto: JWK is not a JSON object")
	}
	if dec.More() {
		return JWK{}, fmt.Errorf("crypto: unexpected data after the JWK object")
	}
	var j JWK
	for name, dst := range map[string]*string{
		"kty": &j.KeyType, "crv": &j.Curve, "x": &j.X, "y": &j.Y,
		"d": &j.D, "alg": &j.Alg, "use": &j.Use, "kid": &j.KeyID,
	} {
		raw, ok := members[name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return JWK{}, fmt.Errorf("crypto: JWK member %q must be a string", name)
		}
	}
	return j, nil
}

// publicJWK builds the JWK of a public key from its uncompressed point.
func publicJWK(pub PublicKey) JWK {
	unc := pub.UncompressedBytes()
	crv := jwkCurveK256
	if pub.KeyType() == KeyTypeP256 {
		crv = jwkCurveP256
	}
	return JWK{
		KeyType: "EC",
		Curve:   crv,
		X:       b64url.EncodeToString(unc[1:33]),
		Y:       b64url.EncodeToString(unc[33:65]),
	}
}

// privateJWK builds the JWK of a private key: the public members plus "d".
func privateJWK(priv PrivateKey) (JWK, error) {
	j := publicJWK(priv.Public())
	j.D = b64url.EncodeToString(priv.Bytes())
	return j, nil
}
