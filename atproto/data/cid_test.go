package data

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/internal/base58"
)

const (
	cidDagCBOR = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"
	cidRaw     = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"
	cidV0      = "QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuPU"
)

func TestParseCIDValid(t *testing.T) {
	cases := []struct {
		s       string
		version int
		codec   uint64
		blessed bool
	}{
		{cidDagCBOR, 1, CodecDagCBOR, true},
		{cidRaw, 1, CodecRaw, true},
		{cidV0, 0, CodecDagPB, false},
		// dag-pb CIDv1, as IPFS writes them: valid but not blessed.
		{"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", 1, CodecDagPB, false},
	}
	for _, tc := range cases {
		c, err := ParseCID(tc.s)
		if err != nil {
			t.Errorf("%s: %v", tc.s, err)
			continue
		}
		if c.String() != tc.s {
			t.Errorf("%s: String() = %s", tc.s, c.String())
		}
		if c.Version() != tc.version || c.Codec() != tc.codec || c.IsBlessed() != tc.blessed {
			t.Errorf("%s: version %d codec %#x blessed %v", tc.s, c.Version(), c.Codec(), c.IsBlessed())
		}
		if c.HashCode() != HashSHA256 || len(c.Digest()) != sha256.Size {
			t.Errorf("%s: hash %#x digest %d bytes", tc.s, c.HashCode(), len(c.Digest()))
		}
		if !c.Defined() {
			t.Errorf("%s: not defined", tc.s)
		}
		back, err := CIDFromBytes(c.Bytes())
		if err != nil || back != c {
			t.Errorf("%s: binary round trip: %v", tc.s, err)
		}
		if c.KeyString() != string(c.Bytes()) {
			t.Errorf("%s: KeyString differs from Bytes", tc.s)
		}
		txt, _ := c.MarshalText()
		var u CID
		if err := u.UnmarshalText(txt); err != nil || u != c {
			t.Errorf("%s: text round trip: %v", tc.s, err)
		}
	}
	// base58btc CIDv1 ("z...") is read, and written back as base32.
	c := MustParseCID(cidDagCBOR)
	z := "z" + base58.Encode(c.Bytes())
	zc, err := ParseCID(z)
	if err != nil || zc != c {
		t.Errorf("%s: %v", z, err)
	}
}

func TestParseCIDInvalid(t *testing.T) {
	good := MustParseCID(cidDagCBOR)
	// Flip the unused low bits of the last base32 character: decodes to
	// the same bytes, but is not the canonical string.
	last := cidDagCBOR[len(cidDagCBOR)-1]
	nonCanon := cidDagCBOR[:len(cidDagCBOR)-1] + string(last+1)
	if b, err := base32Lower.DecodeString(nonCanon[1:]); err != nil || !bytes.Equal(b, good.Bytes()) {
		t.Fatalf("test setup: %q should decode to the same bytes (%v)", nonCanon, err)
	}
	cases := []struct{ s, want string }{
		{"", "too short"},
		{"b", "too short"},
		{"bafy", ""},
		{nonCanon, "not in canonical form"},
		{strings.ToUpper(cidDagCBOR), "unsupported multibase"},
		{"B" + cidDagCBOR[1:], "unsupported multibase"},
		{cidDagCBOR[:30] + "\n" + cidDagCBOR[30:], "illegal base32"},
		{cidDagCBOR + "=", ""},
		{cidDagCBOR + "a", ""},
		{cidDagCBOR[:len(cidDagCBOR)-2], ""},
		{"f01711220" + strings.Repeat("00", 32), "unsupported multibase"},
		{"Qm" + strings.Repeat("0", 44), "invalid base58"},
		{"QmY7Yh4UquoXHLPFo2XbhXkhBvFoPwmQUSa92pxnxjQuP", "unsupported multibase"},
		{"z" + base58.Encode(append([]byte{0x12, 0x20}, make([]byte, 32)...)), "must be version 1"},
		{"b" + base32Lower.EncodeToString([]byte{0x02, 0x71, 0x12, 0x01, 0x00}), "must be version 1"},
		{"b" + base32Lower.EncodeToString(append(good.Bytes(), 0)), "trailing bytes"},
		{"b" + strings.Repeat("a", 300), "too long"},
		{"bafyrei" + strings.Repeat("8", 52), "illegal base32"},
	}
	for _, tc := range cases {
		c, err := ParseCID(tc.s)
		if err == nil {
			t.Errorf("%q accepted as %s", tc.s, c)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q does not mention %q", tc.s, err, tc.want)
		}
	}
}

func TestBase32AgainstStdlib(t *testing.T) {
	for n := 0; n < 80; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*37 + n*11)
		}
		want := base32Lower.EncodeToString(b)
		got := string(appendBase32(nil, string(b)))
		if got != want {
			t.Fatalf("%d bytes: %s, want %s", n, got, want)
		}
		back, err := decodeBase32(nil, got)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%d bytes: decode %x %v", n, back, err)
		}
	}
	// A length that leaves a character without data is not canonical.
	if _, err := decodeBase32(nil, "a"); err == nil {
		t.Error(`"a" accepted`)
	}
}

func TestCIDZeroValue(t *testing.T) {
	var c CID
	if c.Defined() || c.String() != "" || c.Codec() != 0 || c.Multihash() != nil || c.IsBlessed() {
		t.Errorf("zero CID: %v %q %d", c.Defined(), c.String(), c.Codec())
	}
	if _, err := CIDFromBytes(nil); err == nil {
		t.Error("empty binary CID accepted")
	}
}

func TestIsBlessed(t *testing.T) {
	digest := make([]byte, 32)
	cases := []struct {
		c    CID
		want bool
	}{
		{CIDForCBOR([]byte("x")), true},
		{CIDForRaw([]byte("x")), true},
		{NewCIDv1(CodecDagCBOR, HashSHA256, digest), true},
		{NewCIDv1(CodecDagPB, HashSHA256, digest), false},
		{NewCIDv1(CodecDagCBOR, 0x13, make([]byte, 64)), false},
		{NewCIDv1(CodecDagCBOR, HashSHA256, digest[:20]), false},
		{NewCIDv1(0x0129, HashSHA256, digest), false}, // dag-json: two-byte codec varint
		{MustParseCID(cidV0), false},
	}
	for _, tc := range cases {
		if got := tc.c.IsBlessed(); got != tc.want {
			t.Errorf("%s: IsBlessed %v, want %v", tc.c, got, tc.want)
		}
		back, err := ParseCID(tc.c.String())
		if err != nil || back != tc.c {
			t.Errorf("%s: string round trip: %v", tc.c, err)
		}
	}
	if c := NewCIDv1(0x0129, HashSHA256, digest); c.Codec() != 0x0129 {
		t.Errorf("codec %#x", c.Codec())
	}
}

func TestReadCID(t *testing.T) {
	for _, s := range []string{cidDagCBOR, cidRaw, cidV0} {
		c := MustParseCID(s)
		bin := c.Bytes()
		// Every truncation fails.
		for i := 0; i < len(bin); i++ {
			if got, n, err := ReadCID(bin[:i]); err == nil {
				t.Errorf("%s truncated to %d bytes read as %s (%d)", s, i, got, n)
			}
		}
		// Extra bytes after the CID are left for the caller.
		got, n, err := ReadCID(append(bin, 0xde, 0xad))
		if err != nil || n != len(bin) || got != c {
			t.Errorf("%s with trailing bytes: %s %d %v", s, got, n, err)
		}
		if _, err := CIDFromBytes(append(bin, 0)); err == nil || !strings.Contains(err.Error(), "1 trailing bytes") {
			t.Errorf("%s: CIDFromBytes with a trailing byte: %v", s, err)
		}
	}
	bad := []struct {
		in   []byte
		want string
	}{
		{[]byte{0x01, 0xf1, 0x00, 0x12, 0x20}, "not minimally encoded"},
		{[]byte{0x02, 0x71, 0x12, 0x20}, "unsupported version 2"},
		{[]byte{0x01, 0x71, 0x12, 0x20, 0x00}, "does not fit"},
		{append([]byte{0x01, 0x71, 0x12, 0x81, 0x01}, make([]byte, 129)...), "does not fit"},
		{[]byte{0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "longer than 9 bytes"},
		{[]byte{0x01, 0x71, 0x12}, "truncated varint"},
		{[]byte{0x12, 0x20, 0x00}, "truncated CIDv0"},
		{append([]byte{0x01, 0x71, 0x12, 0x7e}, make([]byte, 126)...), "longer than the 128 allowed"},
	}
	for _, tc := range bad {
		if _, _, err := ReadCID(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%x: %v, want an error mentioning %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseCID(f *testing.F) {
	for _, s := range []string{cidDagCBOR, cidRaw, cidV0, "bafy", "z" + base58.Encode(MustParseCID(cidRaw).Bytes()), "Qm"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCID(s)
		if err != nil {
			return
		}
		if s[0] != 'z' && c.String() != s {
			t.Fatalf("%q parsed but prints as %q", s, c.String())
		}
		back, err := ParseCID(c.String())
		if err != nil || back != c {
			t.Fatalf("%q: string round trip: %v", s, err)
		}
		bin, err := CIDFromBytes(c.Bytes())
		if err != nil || bin != c {
			t.Fatalf("%q: binary round trip: %v", s, err)
		}
		if s[0] == 'b' {
			std, err := base32Lower.DecodeString(s[1:])
			if err != nil || !bytes.Equal(std, c.Bytes()) {
				t.Fatalf("%q: encoding/base32 disagrees: %x %v", s, std, err)
			}
		}
	})
}

func FuzzReadCID(f *testing.F) {
	for _, s := range []string{cidDagCBOR, cidRaw, cidV0} {
		f.Add(MustParseCID(s).Bytes())
	}
	f.Add([]byte{0x01, 0x71, 0x12, 0x00})
	f.Add([]byte{0x01, 0xf1, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, n, err := ReadCID(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) || !bytes.Equal(c.Bytes(), b[:n]) {
			t.Fatalf("%x: read %d bytes as %x", b, n, c.Bytes())
		}
		again, err := CIDFromBytes(b[:n])
		if err != nil || again != c {
			t.Fatalf("%x: CIDFromBytes: %v", b, err)
		}
		parsed, err := ParseCID(c.String())
		if err != nil || parsed != c {
			t.Fatalf("%x: string %q does not parse back: %v", b, c.String(), err)
		}
	})
}
