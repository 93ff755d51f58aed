package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

// keyOutput reads the "name: value" lines "welkin key generate" prints.
func keyOutput(t *testing.T, out string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("line %q is not name: value", line)
		}
		fields[name] = value
	}
	return fields
}

func TestKeyGenerate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want crypto.KeyType
	}{
		{nil, crypto.KeyTypeK256},
		{[]string{"--type", "k256"}, crypto.KeyTypeK256},
		{[]string{"--type=p256"}, crypto.KeyTypeP256},
		{[]string{"--type", "p256", "--jwk"}, crypto.KeyTypeP256},
		{[]string{"--jwk", "--type", "k256"}, crypto.KeyTypeK256},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"key", "generate"}, tc.args...), &out, &errOut)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", tc.args, code, errOut.String())
		}
		f := keyOutput(t, out.String())
		if f["type"] != string(tc.want) {
			t.Errorf("%q: type %q, want %q", tc.args, f["type"], tc.want)
		}
		priv, err := crypto.ParsePrivateMultibase(f["private-key-multibase"])
		if err != nil {
			t.Fatalf("%q: private key does not parse back: %v", tc.args, err)
		}
		pub, err := crypto.ParsePublicDIDKey(f["public-did-key"])
		if err != nil {
			t.Fatalf("%q: did:key does not parse back: %v", tc.args, err)
		}
		if priv.KeyType() != tc.want || pub.KeyType() != tc.want {
			t.Errorf("%q: parsed types %s and %s, want %s", tc.args, priv.KeyType(), pub.KeyType(), tc.want)
		}
		if !priv.Public().Equal(pub) {
			t.Errorf("%q: the did:key is not the private key's public key", tc.args)
		}
		// The pair works: a signature by one verifies with the other.
		msg := []byte("welkin key generate")
		sig, err := priv.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.HashAndVerify(msg, sig); err != nil {
			t.Errorf("%q: signature does not verify: %v", tc.args, err)
		}
		jwk, hasJWK := f["private-jwk"]
		wantJWK := strings.Contains(strings.Join(tc.args, " "), "--jwk")
		if hasJWK != wantJWK {
			t.Fatalf("%q: private-jwk printed %v, want %v", tc.args, hasJWK, wantJWK)
		}
		if hasJWK {
			fromJWK, err := crypto.ParsePrivateJWKBytes([]byte(jwk))
			if err != nil {
				t.Fatalf("%q: JWK does not parse back: %v", tc.args, err)
			}
			if !fromJWK.Equal(priv) {
				t.Errorf("%q: JWK and multibase hold different keys", tc.args)
			}
		}
	}
}

func TestKeyGenerateFreshKeys(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		var out, errOut bytes.Buffer
		if code := run([]string{"key", "generate"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d, stderr %q", code, errOut.String())
		}
		k := keyOutput(t, out.String())["private-key-multibase"]
		if seen[k] {
			t.Fatalf("the same key came out twice: %s", k)
		}
		seen[k] = true
	}
}

func TestKeyUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"key"},
		{"key", "rotate"},
		{"key", "generate", "--type", "ed25519"},
		{"key", "generate", "extra"},
		{"key", "generate", "--bogus"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if out.Len() != 0 {
			t.Errorf("%q: printed %q to stdout", args, out.String())
		}
		if errOut.Len() == 0 {
			t.Errorf("%q: nothing on stderr", args)
		}
	}
}
