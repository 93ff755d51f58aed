package crypto_test

import (
	"bytes"
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

type curve struct {
	name      string
	kt        KeyType
	n         *big.Int
	generate  func() (crypto.PrivateKey, error)
	parsePriv func([]byte) (crypto.PrivateKey, error)
	parsePub  func([]byte) (crypto.PublicKey, error)
	legacy    string
}

type KeyType = crypto.KeyType

func mustHex(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic(s)
	}
	return n
}

var curves = []curve{
	{
		name:      "k256",
		kt:        crypto.KeyTypeK256,
		n:         mustHex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"),
		generate:  crypto.GenerateK256,
		parsePriv: crypto.ParsePrivateBytesK256,
		parsePub:  crypto.ParsePublicBytesK256,
		legacy:    crypto.LegacyTypeK256,
	},
	{
		name:      "p256",
		kt:        crypto.KeyTypeP256,
		n:         elliptic.P256().Params().N,
		generate:  crypto.GenerateP256,
		parsePriv: crypto.ParsePrivateBytesP256,
		parsePub:  crypto.ParsePublicBytesP256,
		legacy:    crypto.LegacyTypeP256,
	},
}

func forCurves(t *testing.T, f func(t *testing.T, c curve)) {
	for _, c := range curves {
		t.Run(c.name, func(t *testing.T) { f(t, c) })
	}
}

func gen(t testing.TB, c curve) crypto.PrivateKey {
	t.Helper()
	k, err := c.generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, k crypto.PrivateKey, msg []byte) []byte {
	t.Helper()
	sig, err := k.HashAndSign(msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// highS returns sig with s replaced by n - s.
func highS(sig []byte, n *big.Int) []byte {
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := bytes.Clone(sig)
	s.FillBytes(out[32:])
	return out
}

// toDER encodes a compact signature as DER, independently of the package.
func toDER(sig []byte) []byte {
	integer := func(v []byte) []byte {
		v = new(big.Int).SetBytes(v).Bytes()
		if len(v) == 0 || v[0]&0x80 != 0 {
			v = append([]byte{0}, v...)
		}
		return append([]byte{0x02, byte(len(v))}, v...)
	}
	body := append(integer(sig[:32]), integer(sig[32:])...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestSignVerifyRoundTrip(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		if k.KeyType() != c.kt || k.Public().KeyType() != c.kt {
			t.Fatalf("key type %s / %s", k.KeyType(), k.Public().KeyType())
		}
		for _, msg := range [][]byte{nil, {}, []byte("hello"), bytes.Repeat([]byte{0xab}, 10000)} {
			sig := sign(t, k, msg)
			if len(sig) != 64 {
				t.Fatalf("signature length %d", len(sig))
			}
			if err := k.Public().HashAndVerify(msg, sig); err != nil {
				t.Fatalf("strict verify: %v", err)
			}
			if err := k.Public().HashAndVerifyLenient(msg, sig); err != nil {
				t.Fatalf("lenient verify: %v", err)
			}
		}
		// A different key of the same curve must not verify.
		other := gen(t, c)
		sig := sign(t, k, []byte("msg"))
		if err := other.Public().HashAndVerify([]byte("msg"), sig); !errors.Is(err, crypto.ErrInvalidSignature) {
			t.Fatalf("other key: got %v", err)
		}
	})
}

func TestAlwaysLowS(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		half := new(big.Int).Rsh(c.n, 1)
		for i := range 300 {
			sig := sign(t, k, []byte{byte(i), byte(i >> 8)})
			s := new(big.Int).SetBytes(sig[32:])
			if s.Sign() == 0 || s.Cmp(half) > 0 {
				t.Fatalf("signature %d has s outside [1, n/2]: %x", i, sig[32:])
			}
		}
	})
}

func TestHighSAndDER(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		pub := k.Public()
		msg := []byte("malleability")
		sig := sign(t, k, msg)

		high := highS(sig, c.n)
		err := pub.HashAndVerify(msg, high)
		if !errors.Is(err, crypto.ErrHighS) || !errors.Is(err, crypto.ErrInvalidSignature) {
			t.Fatalf("strict verify of high-S: got %v", err)
		}
		if err := pub.HashAndVerifyLenient(msg, high); err != nil {
			t.Fatalf("lenient verify of high-S: %v", err)
		}

		for _, der := range [][]byte{toDER(sig), toDER(high)} {
			err := pub.HashAndVerify(msg, der)
			if !errors.Is(err, crypto.ErrInvalidSignature) || !strings.Contains(err.Error(), "DER") {
				t.Fatalf("strict verify of DER: got %v", err)
			}
			if err := pub.HashAndVerifyLenient(msg, der); err != nil {
				t.Fatalf("lenient verify of DER: %v", err)
			}
			if err := pub.HashAndVerifyLenient([]byte("other"), der); err == nil {
				t.Fatal("lenient verify of DER accepted a different message")
			}
		}
	})
}

func TestTampered(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		pub := k.Public()
		msg := []byte("an atproto commit")
		sig := sign(t, k, msg)

		bad := bytes.Clone(msg)
		bad[0] ^= 1
		if err := pub.HashAndVerify(bad, sig); !errors.Is(err, crypto.ErrInvalidSignature) {
			t.Errorf("tampered message: got %v", err)
		}
		if err := pub.HashAndVerifyLenient(bad, sig); !errors.Is(err, crypto.ErrInvalidSignature) {
			t.Errorf("lenient, tampered message: got %v", err)
		}
		for _, i := range []int{0, 17, 31, 32, 50, 63} {
			s := bytes.Clone(sig)
			s[i] ^= 0x04
			if err := pub.HashAndVerify(msg, s); !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Errorf("flipped bit in byte %d: got %v", i, err)
			}
			if err := pub.HashAndVerifyLenient(msg, s); !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Errorf("lenient, flipped bit in byte %d: got %v", i, err)
			}
		}
	})
}

func TestMalformedSignatures(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		pub := k.Public()
		msg := []byte("m")
		sig := sign(t, k, msg)

		nBytes := c.n.FillBytes(make([]byte, 32))
		nMinus1 := new(big.Int).Sub(c.n, big.NewInt(1)).FillBytes(make([]byte, 32))
		zero := make([]byte, 32)
		cat := func(a, b []byte) []byte { return append(bytes.Clone(a), b...) }

		cases := map[string]struct {
			sig  []byte
			want string
		}{
			"empty":       {nil, "got 0"},
			"short":       {sig[:63], "got 63"},
			"long":        {cat(sig, []byte{0}), "got 65"},
			"recoverable": {cat(sig, []byte{1}), "got 65"},
			"r zero":      {cat(zero, sig[32:]), "r is zero"},
			"s zero":      {cat(sig[:32], zero), "s is zero"},
			"r = n":       {cat(nBytes, sig[32:]), "r is not below"},
			"s = n":       {cat(sig[:32], nBytes), "s is not below"},
			"r all ones":  {cat(bytes.Repeat([]byte{0xff}, 32), sig[32:]), "r is not below"},
			"s = n-1":     {cat(sig[:32], nMinus1), "high-S"},
		}
		for name, tc := range cases {
			err := pub.HashAndVerify(msg, tc.sig)
			if !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Errorf("%s: got %v", name, err)
				continue
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %q does not mention %q", name, err, tc.want)
			}
			if err := pub.HashAndVerifyLenient(msg, tc.sig); !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Errorf("%s: lenient got %v", name, err)
			}
		}

		// Broken DER: lenient verification must refuse it with a reason.
		der := toDER(sig)
		derCases := map[string][]byte{
			"truncated":       der[:len(der)-1],
			"trailing byte":   cat(der, []byte{0}),
			"wrong tag":       cat([]byte{0x31}, der[1:]),
			"negative r":      {0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01},
			"padded r":        {0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01},
			"zero r":          {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01},
			"r longer than n": cat([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, cat(bytes.Repeat([]byte{1}, 32), []byte{0x02, 0x01, 0x01})),
		}
		for name, d := range derCases {
			if err := pub.HashAndVerifyLenient(msg, d); !errors.Is(err, crypto.ErrInvalidSignature) {
				t.Errorf("DER %s: got %v", name, err)
			}
		}
	})
}

func TestBytesRoundTrip(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		raw := k.Bytes()
		if len(raw) != 32 {
			t.Fatalf("private key is %d bytes", len(raw))
		}
		k2, err := c.parsePriv(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !k2.Equal(k) || !k.Equal(k2) || !bytes.Equal(k2.Bytes(), raw) {
			t.Fatal("private bytes round trip changed the key")
		}
		raw[0] ^= 0xff // Bytes must hand out a copy.
		if bytes.Equal(k.Bytes(), raw) {
			t.Fatal("Bytes returned internal storage")
		}

		pub := k.Public()
		comp, unc := pub.Bytes(), pub.UncompressedBytes()
		if len(comp) != 33 || (comp[0] != 2 && comp[0] != 3) {
			t.Fatalf("compressed key %x", comp)
		}
		if len(unc) != 65 || unc[0] != 4 || !bytes.Equal(unc[1:33], comp[1:]) || unc[64]&1 != comp[0]&1 {
			t.Fatalf("uncompressed key %x does not match compressed %x", unc, comp)
		}
		for _, b := range [][]byte{comp, unc} {
			p, err := c.parsePub(b)
			if err != nil {
				t.Fatal(err)
			}
			if !p.Equal(pub) || !bytes.Equal(p.Bytes(), comp) || !bytes.Equal(p.UncompressedBytes(), unc) {
				t.Fatalf("public bytes round trip of %x changed the key", b)
			}
		}

		// Keys of the other curve are never equal, even for equal bytes.
		for _, o := range curves {
			if o.kt != c.kt {
				ok := gen(t, o)
				if ok.Equal(k) || ok.Public().Equal(pub) || pub.Equal(nil) || k.Equal(nil) {
					t.Fatal("keys of different curves compared equal")
				}
			}
		}
	})
}

func TestMultibaseRoundTrip(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		pub := k.Public()

		mb := pub.Multibase()
		want := map[KeyType]string{crypto.KeyTypeK256: "zQ3s", crypto.KeyTypeP256: "zDna"}[c.kt]
		if !strings.HasPrefix(mb, want) {
			t.Errorf("multikey %s does not start with %s", mb, want)
		}
		if pub.DIDKey() != "did:key:"+mb {
			t.Errorf("DIDKey %s", pub.DIDKey())
		}
		p, err := crypto.ParsePublicMultibase(mb)
		if err != nil || !p.Equal(pub) {
			t.Fatalf("multibase round trip: %v", err)
		}
		p, err = crypto.ParsePublicDIDKey(pub.DIDKey())
		if err != nil || !p.Equal(pub) || p.DIDKey() != pub.DIDKey() {
			t.Fatalf("did:key round trip: %v", err)
		}

		pmb := k.Multibase()
		k2, err := crypto.ParsePrivateMultibase(pmb)
		if err != nil || !k2.Equal(k) || k2.Multibase() != pmb {
			t.Fatalf("private multibase round trip: %v", err)
		}
		if _, err := crypto.ParsePublicMultibase(pmb); err == nil || !strings.Contains(err.Error(), "private") {
			t.Errorf("public parse of private multibase: %v", err)
		}
		if _, err := crypto.ParsePrivateMultibase(mb); err == nil || !strings.Contains(err.Error(), "public") {
			t.Errorf("private parse of public multibase: %v", err)
		}

		// Legacy DID document form: no multicodec, either point encoding.
		for _, raw := range [][]byte{pub.UncompressedBytes(), pub.Bytes()} {
			legacy := "z" + base58(raw)
			for _, typ := range []string{c.legacy, string(c.kt)} {
				p, err := crypto.ParsePublicLegacyMultibase(legacy, typ)
				if err != nil || !p.Equal(pub) {
					t.Fatalf("legacy %s (%d bytes): %v", typ, len(raw), err)
				}
			}
		}
	})
}

func TestParseErrors(t *testing.T) {
	k256 := gen(t, curves[0]).Public()
	p256 := gen(t, curves[1]).Public()
	multikey := func(prefix []byte, key []byte) string {
		return "z" + base58(append(bytes.Clone(prefix), key...))
	}
	// A 33-byte compressed encoding whose x has no point on either curve:
	// x = 5 is not on secp256k1 (5^3+7 = 132 is not a square mod p) and we
	// find one for P-256 by search below.
	notOnK256 := append([]byte{0x02}, make([]byte, 32)...)
	notOnK256[32] = 5
	notOnP256 := findOffCurveP256(t)

	cases := []struct {
		name  string
		parse func() error
		want  string
	}{
		{"did:key no prefix", didKey(k256.Multibase()), "must start with"},
		{"did:key wrong method", didKey("did:plc:" + k256.Multibase()), "must start with"},
		{"did:key upper case", didKey("DID:KEY:" + k256.Multibase()), "must start with"},
		{"did:key empty", didKey("did:key:"), "empty multibase"},
		{"did:key base64 multibase", didKey("did:key:m" + k256.Multibase()[1:]), "multibase prefix"},
		{"did:key bad base58", didKey("did:key:zQ3sh0OIl"), "invalid base58btc character"},
		{"did:key space", didKey("did:key:" + k256.Multibase() + " "), "invalid base58btc character"},
		{"multibase z only", pubMB("z"), "empty base58btc"},
		{"multibase too long", pubMB("z" + strings.Repeat("2", 500)), "too long"},
		{"multibase unknown codec", pubMB(multikey([]byte{0xed, 0x01}, k256.Bytes())), "unsupported multicodec 0xed"},
		{"multibase non-minimal varint", pubMB(multikey([]byte{0xe7, 0x81, 0x00}, k256.Bytes())), "minimally"},
		{"multibase truncated varint", pubMB(multikey([]byte{0x80}, nil)), "multicodec varint"},
		{"multibase k256 uncompressed", pubMB(multikey([]byte{0xe7, 0x01}, k256.UncompressedBytes())), "33-byte compressed"},
		{"multibase p256 uncompressed", pubMB(multikey([]byte{0x80, 0x24}, p256.UncompressedBytes())), "33-byte compressed"},
		{"multibase k256 short", pubMB(multikey([]byte{0xe7, 0x01}, k256.Bytes()[:32])), "33-byte compressed"},
		{"multibase p256 off curve", pubMB(multikey([]byte{0x80, 0x24}, notOnP256)), "not a valid point"},
		{"multibase k256 off curve", pubMB(multikey([]byte{0xe7, 0x01}, notOnK256)), "not a valid point"},
		{"multibase bad point prefix", pubMB(multikey([]byte{0xe7, 0x01}, append([]byte{0x05}, k256.Bytes()[1:]...))), "0x02 or 0x03"},
		{"private multibase short", privMB(multikey([]byte{0x81, 0x26}, make([]byte, 31))), "32 bytes"},
		{"private multibase zero", privMB(multikey([]byte{0x86, 0x26}, make([]byte, 32))), "is zero"},
		{"private multibase unknown", privMB(multikey([]byte{0x01}, make([]byte, 32))), "unsupported multicodec"},
		{"legacy unknown type", legacy(k256.Multibase(), "Ed25519VerificationKey2020"), "unsupported legacy key type"},
		{"legacy multikey type", legacy(k256.Multibase(), "Multikey"), "ParsePublicMultibase"},
		{"legacy with multicodec", legacy(k256.Multibase(), crypto.LegacyTypeK256), "33 bytes (compressed) or 65"},
		{"legacy wrong curve", legacy("z"+base58(notOnP256), crypto.LegacyTypeP256), "not a valid point"},
		{"k256 bytes empty", pubBytes(crypto.ParsePublicBytesK256, nil), "got 0"},
		{"k256 bytes hybrid", pubBytes(crypto.ParsePublicBytesK256, append([]byte{0x06}, k256.UncompressedBytes()[1:]...)), "0x04"},
		{"k256 bytes off curve", pubBytes(crypto.ParsePublicBytesK256, notOnK256), "not a valid point"},
		{"p256 bytes off curve", pubBytes(crypto.ParsePublicBytesP256, notOnP256), "not a valid point"},
		{"p256 uncompressed off curve", pubBytes(crypto.ParsePublicBytesP256, tweakY(p256.UncompressedBytes())), "not a valid point"},
		{"k256 uncompressed off curve", pubBytes(crypto.ParsePublicBytesK256, tweakY(k256.UncompressedBytes())), "not a valid point"},
		{"p256 identity", pubBytes(crypto.ParsePublicBytesP256, []byte{0}), "33 bytes"},
		{"k256 private = n", privBytes(crypto.ParsePrivateBytesK256, curves[0].n.FillBytes(make([]byte, 32))), "not below"},
		{"p256 private = n", privBytes(crypto.ParsePrivateBytesP256, curves[1].n.FillBytes(make([]byte, 32))), "not below"},
		{"p256 private long", privBytes(crypto.ParsePrivateBytesP256, make([]byte, 33)), "32 bytes"},
	}
	for _, tc := range cases {
		err := tc.parse()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}

func didKey(s string) func() error {
	return func() error { _, err := crypto.ParsePublicDIDKey(s); return err }
}
func pubMB(s string) func() error {
	return func() error { _, err := crypto.ParsePublicMultibase(s); return err }
}
func privMB(s string) func() error {
	return func() error { _, err := crypto.ParsePrivateMultibase(s); return err }
}
func legacy(s, typ string) func() error {
	return func() error { _, err := crypto.ParsePublicLegacyMultibase(s, typ); return err }
}
func pubBytes(f func([]byte) (crypto.PublicKey, error), b []byte) func() error {
	return func() error { _, err := f(b); return err }
}
func privBytes(f func([]byte) (crypto.PrivateKey, error), b []byte) func() error {
	return func() error { _, err := f(b); return err }
}

func tweakY(unc []byte) []byte {
	out := bytes.Clone(unc)
	out[64] ^= 1
	return out
}

// findOffCurveP256 returns a compressed encoding whose x coordinate has no
// point on P-256.
func findOffCurveP256(t *testing.T) []byte {
	t.Helper()
	for x := 1; x < 100; x++ {
		b := make([]byte, 33)
		b[0] = 0x02
		b[32] = byte(x)
		if px, _ := elliptic.UnmarshalCompressed(elliptic.P256(), b); px == nil {
			return b
		}
	}
	t.Fatal("no off-curve x found")
	return nil
}

// base58 is a test-side big.Int encoder, independent of the package's.
func base58(b []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod := new(big.Int)
	for n.Sign() > 0 {
		n.DivMod(n, big.NewInt(58), mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func TestKeyTypeJWTAlg(t *testing.T) {
	if crypto.KeyTypeK256.JWTAlg() != "ES256K" || crypto.KeyTypeP256.JWTAlg() != "ES256" || KeyType("x").JWTAlg() != "" {
		t.Fatal("JWTAlg")
	}
}

// Formatting a private key must never reveal the scalar.
func TestPrivateKeyFormatting(t *testing.T) {
	forCurves(t, func(t *testing.T, c curve) {
		k := gen(t, c)
		secret := fmt.Sprintf("%x", k.Bytes())
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
			out := fmt.Sprintf(verb, k)
			if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprint(k.Bytes())) {
				t.Errorf("%s prints %q", verb, out)
			}
			if !strings.Contains(out, k.Public().DIDKey()) {
				t.Errorf("%s prints %q without the public key", verb, out)
			}
		}
		if got := fmt.Sprint(k.Public()); got != k.Public().DIDKey() {
			t.Errorf("public key prints as %q", got)
		}
	})
}
