package bench

import (
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// indigo computes record CIDs with go-cid and go-multihash.
var indigoPrefix = cid.NewPrefixV1(cid.DagCBOR, multihash.SHA2_256)

func indigoCID(tb testing.TB, block []byte) string {
	c, err := indigoPrefix.Sum(block)
	if err != nil {
		tb.Fatal(err)
	}
	return c.String()
}

func BenchmarkCIDForCBOR(b *testing.B) {
	f := loadPost(b)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = data.CIDForCBOR(f.cbor)
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := indigoPrefix.Sum(f.cbor)
			if err != nil {
				b.Fatal(err)
			}
			sink = c
		}
	})
}

const sampleCID = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"

func TestCIDAgreement(t *testing.T) {
	w, err := data.ParseCID(sampleCID)
	if err != nil {
		t.Fatal(err)
	}
	i, err := cid.Decode(sampleCID)
	if err != nil {
		t.Fatal(err)
	}
	if string(w.Bytes()) != string(i.Bytes()) || w.String() != i.String() {
		t.Fatalf("welkin %s / indigo %s disagree", w, i)
	}
}

func BenchmarkCIDParseString(b *testing.B) {
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := data.ParseCID(sampleCID)
			if err != nil {
				b.Fatal(err)
			}
			sink = c
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := cid.Decode(sampleCID)
			if err != nil {
				b.Fatal(err)
			}
			sink = c
		}
	})
}
