package store

import (
	"errors"
	"strings"
	"testing"
)

func TestHashAndVerify(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"", false},
	} {
		ok, err := VerifyPassword(h, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	h2, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	if _, err := HashPassword(""); err == nil {
		t.Fatal("HashPassword accepted an empty password")
	}
}

// TestDefaultCost checks that, outside tests, hashes use the reference
// PDS's cost N=16384, r=8, p=1 with a 16-byte salt and a 64-byte key.
func TestDefaultCost(t *testing.T) {
	if defaultScryptLogN != 14 {
		t.Fatalf("default ln = %d, want 14 (N=16384)", defaultScryptLogN)
	}
	h, err := hashWith("pw", defaultScryptLogN)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$scrypt$ln=14,r=8,p=1$") {
		t.Fatalf("hash %q does not start with $scrypt$ln=14,r=8,p=1$", h)
	}
	p, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.salt) != 16 || len(p.key) != 64 {
		t.Fatalf("salt %d bytes, key %d bytes; want 16 and 64", len(p.salt), len(p.key))
	}
	if ok, err := VerifyPassword(h, "pw"); !ok || err != nil {
		t.Fatalf("VerifyPassword = %v, %v", ok, err)
	}
}

func TestMalformedHash(t *testing.T) {
	good, err := hashWith("pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseHash(good)
	if err != nil {
		t.Fatal(err)
	}
	salt, key := b64.EncodeToString(p.salt), b64.EncodeToString(p.key)
	for _, h := range []string{
		"",
		"pw",
		"$2a$10$abcdefghijklmnopqrstuv",
		"$scrypt$",
		"$scrypt$ln=4,r=8,p=1$" + salt,
		"$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + "$",
		"$scrypt$ln=4,r=8$" + salt + "$" + key,
		"$scrypt$r=8,ln=4,p=1$" + salt + "$" + key,
		"$scrypt$ln=4,r=8,p=1,x=2$" + salt + "$" + key,
		"$scrypt$ln=04,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=+4,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=0,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=-1,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=4,r=0,p=1$" + salt + "$" + key,
		"$scrypt$ln=4,r=8,p=0$" + salt + "$" + key,
		"$scrypt$ln=21,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=20,r=8,p=1$" + salt + "$" + key, // 1 GiB
		"$scrypt$ln=4,r=8,p=17$" + salt + "$" + key,
		"$scrypt$ln=4,r=99999999999999999999,p=1$" + salt + "$" + key,
		"$scrypt$ln=4,r=8,p=1$" + salt + "=$" + key,
		"$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + "==",
		"$scrypt$ln=4,r=8,p=1$!!!!$" + key,
		"$scrypt$ln=4,r=8,p=1$" + salt + "$",
		"$scrypt$ln=4,r=8,p=1$$" + key,
		"$scrypt$ln=4,r=8,p=1$" + b64.EncodeToString([]byte("short")) + "$" + key,
		"$scrypt$ln=4,r=8,p=1$" + salt + "$" + b64.EncodeToString([]byte("short")),
		"$SCRYPT$ln=4,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=4,r=8,p=1$" + salt[:4] + "\r\n" + salt[4:] + "$" + key, // base64 would skip these
		" $scrypt$ln=4,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=4,r=8,p=1$" + salt + "$" + key + "\n",
	} {
		ok, err := VerifyPassword(h, "pw")
		if !errors.Is(err, ErrMalformedHash) || ok {
			t.Errorf("VerifyPassword(%q) = %v, %v; want ErrMalformedHash", h, ok, err)
		}
	}
	if ok, err := VerifyPassword(good, "pw"); !ok || err != nil {
		t.Fatalf("VerifyPassword(good) = %v, %v", ok, err)
	}
}

// FuzzVerifyPassword feeds arbitrary hash strings to the parser: it must
// never panic, must accept only the canonical form (which formats back to
// the same string), and VerifyPassword on a parsed cheap hash must not fail.
func FuzzVerifyPassword(f *testing.F) {
	good, err := hashWith("pw", 2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "pw")
	f.Add("$scrypt$ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5", "x")
	f.Add("$scrypt$ln=99,r=8,p=1$$", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, hash, pw string) {
		p, err := parseHash(hash)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parse error %v does not match ErrMalformedHash", err)
			}
			return
		}
		if p.String() != hash {
			t.Fatalf("accepted non-canonical %q (canonical %q)", hash, p.String())
		}
		if p.logN <= 6 && p.r <= 8 && p.p <= 2 {
			if _, err := VerifyPassword(hash, pw); err != nil {
				t.Fatalf("VerifyPassword on a parsed hash: %v", err)
			}
		}
	})
}
