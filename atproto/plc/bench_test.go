package plc

import "testing"

func BenchmarkValidateOp(b *testing.B) {
	_, keys, rot, g := chain(b)
	op := newOp(b, keys[1], strp(cidStr(b, g)), rot)
	pub := ParseDIDKeys(rot)
	b.ReportAllocs()
	for b.Loop() {
		if idx, err := op.VerifySig(pub); err != nil || idx != 1 {
			b.Fatal(idx, err)
		}
	}
}

func BenchmarkDIDForGenesis(b *testing.B) {
	_, _, _, g := chain(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DIDForGenesis(g); err != nil {
			b.Fatal(err)
		}
	}
}
