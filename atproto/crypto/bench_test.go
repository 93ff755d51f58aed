package crypto_test

import (
	"encoding/json"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

func jsonOf(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

var benchMsg = []byte("a typical signed atproto commit object is a few hundred bytes of DRISL CBOR; this stands in for one")

var sinkErr error

func benchSign(b *testing.B, c curve) {
	k := gen(b, c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.HashAndSign(benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerify(b *testing.B, c curve) {
	k := gen(b, c)
	pub := k.Public()
	sig := sign(b, k, benchMsg)
	b.ReportAllocs()
	for b.Loop() {
		if sinkErr = pub.HashAndVerify(benchMsg, sig); sinkErr != nil {
			b.Fatal(sinkErr)
		}
	}
}

func BenchmarkSignK256(b *testing.B)   { benchSign(b, curves[0]) }
func BenchmarkVerifyK256(b *testing.B) { benchVerify(b, curves[0]) }
func BenchmarkSignP256(b *testing.B)   { benchSign(b, curves[1]) }
func BenchmarkVerifyP256(b *testing.B) { benchVerify(b, curves[1]) }

func BenchmarkParsePublicDIDKey(b *testing.B) {
	for _, c := range curves {
		did := gen(b, c).Public().DIDKey()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := crypto.ParsePublicDIDKey(did); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
