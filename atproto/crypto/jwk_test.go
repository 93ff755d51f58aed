package crypto_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

func TestJWKRoundTrip(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		pub := k.Public()

		j, err := pub.JWK()
		if err != nil {
			t.Fatal(err)
		}
		wantCrv := map[KeyType]string{crypto.KeyTypeK256: "secp256k1", crypto.KeyTypeP256: "P-256"}[c.kt]
		if j.KeyType != "EC" || j.Curve != wantCrv || j.D != "" {
			t.Fatalf("public JWK %+v", j)
		}
		unc := pub.UncompressedBytes()
		if j.X != base64.RawURLEncoding.EncodeToString(unc[1:33]) || j.Y != base64.RawURLEncoding.EncodeToString(unc[33:]) {
			t.Fatalf("JWK coordinates do not match the point")
		}
		p, err := crypto.ParsePublicJWK(j)
		if err != nil || !p.Equal(pub) {
			t.Fatalf("public JWK round trip: %v", err)
		}
		js, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(js), `"d"`) {
			t.Fatalf("public JWK JSON carries d: %s", js)
		}
		p, err = crypto.ParsePublicJWKBytes(js)
		if err != nil || !p.Equal(pub) {
			t.Fatalf("public JWK JSON round trip: %v", err)
		}

		pj, err := k.JWK()
		if err != nil {
			t.Fatal(err)
		}
		if pj.D != base64.RawURLEncoding.EncodeToString(k.Bytes()) || pj.X != j.X || pj.Y != j.Y {
			t.Fatalf("private JWK %+v", pj)
		}
		k2, err := crypto.ParsePrivateJWK(pj)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("private JWK round trip: %v", err)
		}
		pjs, _ := json.Marshal(pj)
		k2, err = crypto.ParsePrivateJWKBytes(pjs)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("private JWK JSON round trip: %v", err)
		}

		// With a matching alg and unrelated extra members.
		pj.Alg = c.kt.JWTAlg()
		pj.KeyID = "k1"
		if _, err := crypto.ParsePrivateJWK(pj); err != nil {
			t.Fatalf("private JWK with alg: %v", err)
		}
		extra := strings.Replace(string(js), "{", `{"key_ops":["verify"],"ext":true,`, 1)
		if _, err := crypto.ParsePublicJWKBytes([]byte(extra)); err != nil {
			t.Fatalf("JWK with extra members: %v", err)
		}
	})
}

// A JWK with leading-zero coordinates must keep them (fixed 32-byte width).
func TestJWKFixedWidth(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		for range 2000 {
			k := gen(t, c)
			unc := k.Public().UncompressedBytes()
			if unc[1] != 0 && unc[33] != 0 {
				continue
			}
			j, _ := k.Public().JWK()
			if len(j.X) != 43 || len(j.Y) != 43 {
				t.Fatalf("coordinate with leading zero lost width: %+v", j)
			}
			if _, err := crypto.ParsePublicJWK(j); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Skip("no key with a leading zero coordinate in 2000 tries")
	})
}

func TestJWKErrors(t *testing.T) {
	k := gen(t, curves[0])
	good, _ := k.JWK()
	pubGood, _ := k.Public().JWK()
	other, _ := gen(t, curves[0]).JWK()
	p256, _ := gen(t, curves[1]).Public().JWK()

	mod := func(j crypto.JWK, f func(*crypto.JWK)) crypto.JWK { f(&j); return j }
	b64 := base64.RawURLEncoding.EncodeToString

	pubCases := []struct {
		name string
		jwk  crypto.JWK
		want string
	}{
		{"kty RSA", mod(pubGood, func(j *crypto.JWK) { j.KeyType = "RSA" }), `"kty"`},
		{"kty missing", mod(pubGood, func(j *crypto.JWK) { j.KeyType = "" }), `"kty"`},
		{"crv P-384", mod(pubGood, func(j *crypto.JWK) { j.Curve = "P-384" }), `"crv"`},
		{"crv lower case", mod(pubGood, func(j *crypto.JWK) { j.Curve = "p-256" }), `"crv"`},
		{"alg mismatch", mod(pubGood, func(j *crypto.JWK) { j.Alg = "ES256" }), `"alg"`},
		{"x missing", mod(pubGood, func(j *crypto.JWK) { j.X = "" }), `"x" is missing`},
		{"y padded", mod(pubGood, func(j *crypto.JWK) { j.Y += "=" }), "base64url"},
		{"x std base64", mod(pubGood, func(j *crypto.JWK) { j.X = strings.Repeat("+", 43) }), "base64url"},
		{"x short", mod(pubGood, func(j *crypto.JWK) { j.X = b64(make([]byte, 31)) }), "32 bytes"},
		{"y long", mod(pubGood, func(j *crypto.JWK) { j.Y = b64(make([]byte, 33)) }), "32 bytes"},
		{"off curve", mod(pubGood, func(j *crypto.JWK) { j.Y = other.Y }), "not a valid point"},
		{"k256 point as P-256", mod(pubGood, func(j *crypto.JWK) { j.Curve = "P-256"; j.Y = p256.Y }), "not a valid point"},
		{"private", good, `"d"`},
	}
	for _, tc := range pubCases {
		_, err := crypto.ParsePublicJWK(tc.jwk)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want mention of %s", tc.name, err, tc.want)
		}
	}

	privCases := []struct {
		name string
		jwk  crypto.JWK
		want string
	}{
		{"no d", pubGood, `no private member "d"`},
		{"d short", mod(good, func(j *crypto.JWK) { j.D = b64(make([]byte, 31)) }), "32 bytes"},
		{"d zero", mod(good, func(j *crypto.JWK) { j.D = b64(make([]byte, 32)) }), "zero"},
		{"d of other key", mod(good, func(j *crypto.JWK) { j.D = other.D }), "do not match"},
		{"no x", mod(good, func(j *crypto.JWK) { j.X = "" }), `"x" is missing`},
		{"bad kty", mod(good, func(j *crypto.JWK) { j.KeyType = "OKP" }), `"kty"`},
	}
	for _, tc := range privCases {
		_, err := crypto.ParsePrivateJWK(tc.jwk)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want mention of %s", tc.name, err, tc.want)
		}
	}

	jsonCases := []struct {
		name, json, want string
	}{
		{"not json", `{"kty":`, "not a JSON object"},
		{"array", `[]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"number member", `{"kty":"EC","crv":"P-256","x":1,"y":"a"}`, `"x" must be a string`},
		{"upper-case names", `{"KTY":"EC","CRV":"P-256","X":"` + p256.X + `","Y":"` + p256.Y + `"}`, `"kty"`},
		{"trailing object", `{"kty":"EC"} {}`, "after the JWK"},
	}
	for _, tc := range jsonCases {
		_, err := crypto.ParsePublicJWKBytes([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want mention of %s", tc.name, err, tc.want)
		}
	}
}
