package base58

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestBase58(t *testing.T) {
	// Vectors from the base58 encoding draft (draft-msporny-base58).
	vectors := []struct{ raw, enc string }{
		{"", ""},
		{"Hello World!", "2NEpo7TZRRrLZSi2U"},
		{"The quick brown fox jumps over the lazy dog.", "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"},
		{"\x00\x00\x28\x7f\xb4\xcd", "11233QC4"},
		{"\x00", "1"},
		{"\x00\x00\x00", "111"},
		{"\xff", "5Q"},
	}
	for _, v := range vectors {
		if got := Encode([]byte(v.raw)); got != v.enc {
			t.Errorf("encode %x: got %q, want %q", v.raw, got, v.enc)
		}
		if v.enc == "" {
			continue
		}
		got, err := Decode(v.enc)
		if err != nil || string(got) != v.raw {
			t.Errorf("decode %q: got %x, %v", v.enc, got, err)
		}
	}
	for _, bad := range []string{"", "0", "O", "I", "l", "abc+", "z\x00", "é"} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("decode %q: no error", bad)
		}
	}
	// Random round trips, including leading zero bytes.
	for i := range 500 {
		b := make([]byte, 1+i%70)
		rand.Read(b)
		for j := 0; j < len(b) && j < i%4; j++ {
			b[j] = 0
		}
		got, err := Decode(Encode(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip %x: got %x, %v", b, got, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"1", "2NEpo7TZRRrLZSi2U", "11233QC4", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 300 {
			return // quadratic by design; callers bound their input
		}
		b, err := Decode(s)
		if err != nil {
			return
		}
		if got := Encode(b); got != s {
			t.Fatalf("Decode(%q) = %x, which encodes back to %q", s, b, got)
		}
	})
}
