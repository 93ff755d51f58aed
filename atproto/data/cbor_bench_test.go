package data

import "testing"

// cborBenchPost returns a typical app.bsky.feed.post record as DAG-CBOR.
func cborBenchPost(b *testing.B) []byte {
	raw, err := MarshalCBOR(cborSamplePost())
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkEncodePostGeneric(b *testing.B) {
	m, err := UnmarshalCBOR(cborBenchPost(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalCBOR(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePostGeneric(b *testing.B) {
	raw := cborBenchPost(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalCBOR(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePostTyped(b *testing.B) {
	p := cborSamplePost()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalCBOR(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePostTyped(b *testing.B) {
	raw := cborBenchPost(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var p cborPost
		if err := UnmarshalCBORInto(raw, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCIDForCBOR(b *testing.B) {
	raw := cborBenchPost(b)[:300]
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		CIDForCBOR(raw)
	}
}

func BenchmarkCIDString(b *testing.B) {
	c := MustParseCID(cidDagCBOR)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.String()
	}
}

func BenchmarkParseCID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCID(cidDagCBOR); err != nil {
			b.Fatal(err)
		}
	}
}
