package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// MaxTokenLength bounds the accepted token size, before any decoding.
const MaxTokenLength = 8192

var b64 = base64.RawURLEncoding.Strict()

// header is the JOSE header. Only alg and typ are interpreted; a crit
// header is refused since no extension is understood.
type header struct {
	Alg  string          `json:"alg"`
	Typ  *string         `json:"typ,omitempty"`
	Crit json.RawMessage `json:"crit,omitempty"`
}

// parsedJWT is a compact JWS split into its parts. Nothing is verified.
type parsedJWT struct {
	header       header
	claims       []byte // JSON
	signingInput string // header.payload, as received
	sig          []byte
}

var errMalformed = errors.New("malformed compact jws")

// parseJWT splits and decodes a compact JWS strictly: exactly three
// non-empty parts of unpadded base64url (canonical trailing bits), a JSON
// object header with a string alg, and a JSON object payload.
func parseJWT(token string) (*parsedJWT, error) {
	if len(token) > MaxTokenLength {
		return nil, errors.New("token too long")
	}
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, errMalformed
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") || h == "" || p == "" || s == "" {
		return nil, errMalformed
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, errors.New("header is not base64url")
	}
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, errors.New("payload is not base64url")
	}
	sig, err := b64.DecodeString(s)
	if err != nil {
		return nil, errors.New("signature is not base64url")
	}
	var hd header
	if err := decodeObject(hb, &hd); err != nil {
		return nil, errors.New("header: " + err.Error())
	}
	if hd.Alg == "" {
		return nil, errors.New("header: missing alg")
	}
	if len(hd.Crit) > 0 {
		return nil, errors.New("header: crit extensions are not supported")
	}
	if err := decodeObject(pb, new(map[string]json.RawMessage)); err != nil {
		return nil, errors.New("payload: " + err.Error())
	}
	return &parsedJWT{header: hd, claims: pb, signingInput: token[:len(h)+1+len(p)], sig: sig}, nil
}

// decodeObject unmarshals a single JSON object (no trailing data).
func decodeObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON object")
	}
	return nil
}

// encodeJWT signs header.claims with sign and returns the compact form.
func encodeJWT(hdr, claims any, sign func([]byte) ([]byte, error)) (string, error) {
	hb, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	sig, err := sign([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}
