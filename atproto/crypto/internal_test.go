package crypto

import (
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"testing"

	secp256k1 "gitlab.com/yawning/secp256k1-voi"
)

func TestOrders(t *testing.T) {
	if got := new(big.Int).SetBytes(orderP256.n[:]); got.Cmp(elliptic.P256().Params().N) != 0 {
		t.Errorf("P-256 order %x", got)
	}
	half := new(big.Int).Rsh(elliptic.P256().Params().N, 1)
	if got := new(big.Int).SetBytes(orderP256.halfN[:]); got.Cmp(half) != 0 {
		t.Errorf("P-256 half order %x", got)
	}
	// The secp256k1 library must agree that n-1 is a scalar and n is not.
	var nm1 [32]byte
	new(big.Int).Sub(new(big.Int).SetBytes(orderK256.n[:]), big.NewInt(1)).FillBytes(nm1[:])
	if _, err := secp256k1.NewScalarFromCanonicalBytes(&nm1); err != nil {
		t.Errorf("n-1 rejected: %v", err)
	}
	if _, err := secp256k1.NewScalarFromCanonicalBytes(&orderK256.n); err == nil {
		t.Error("n accepted as a scalar")
	}
	s, _ := secp256k1.NewScalarFromCanonicalBytes(&orderK256.halfN)
	if s.IsGreaterThanHalfN() != 0 {
		t.Error("library says our n/2 is high")
	}
	s.Add(s, secp256k1.NewScalarFromUint64(1))
	if s.IsGreaterThanHalfN() != 1 {
		t.Error("library says n/2+1 is low")
	}
}

func TestNegate(t *testing.T) {
	for _, o := range []*order{orderK256, orderP256} {
		n := new(big.Int).SetBytes(o.n[:])
		for range 100 {
			v, _ := rand.Int(rand.Reader, n)
			if v.Sign() == 0 {
				continue
			}
			var s [32]byte
			v.FillBytes(s[:])
			o.negate(&s)
			want := new(big.Int).Sub(n, v)
			if new(big.Int).SetBytes(s[:]).Cmp(want) != 0 {
				t.Fatalf("%s: negate(%x) = %x", o.curve, v, s)
			}
		}
	}
}

func TestDERRoundTrip(t *testing.T) {
	cases := []string{
		"0000000000000000000000000000000000000000000000000000000000000001" +
			"8000000000000000000000000000000000000000000000000000000000000000",
		"00ff000000000000000000000000000000000000000000000000000000000000" +
			"0080000000000000000000000000000000000000000000000000000000000001",
	}
	for _, c := range cases {
		raw, _ := hex.DecodeString(c)
		var sc sigScalars
		copy(sc.r[:], raw[:32])
		copy(sc.s[:], raw[32:])
		der := sc.der()
		back, err := parseDER(der)
		if err != nil || *back != sc {
			t.Fatalf("DER round trip of %s via %x: %v", c, der, err)
		}
	}
}
