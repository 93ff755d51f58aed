package verify

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

func TestSameHost(t *testing.T) {
	for _, tc := range []struct {
		from, endpoint string
		want           bool
	}{
		{"pds.example.com", "https://pds.example.com", true},
		{"pds.example.com", "https://pds.example.com/", true},
		{"PDS.Example.COM", "https://pds.example.com", true},
		{"pds.example.com.", "https://pds.example.com", true},
		{"wss://pds.example.com", "https://pds.example.com", true},
		{"wss://pds.example.com/xrpc/com.atproto.sync.subscribeRepos?cursor=5", "https://pds.example.com", true},
		{"pds.example.com:443", "https://pds.example.com", true},
		{"pds.example.com", "http://pds.example.com", true},
		{"ws://localhost:2583", "http://localhost:2583", true},
		{"localhost:2583", "http://localhost:2583", true},
		{"127.0.0.1:2583", "http://127.0.0.1:2583/", true},
		{"[::1]:2583", "http://[::1]:2583", true},
		{"wss://user@pds.example.com", "https://pds.example.com", true},

		{"pds.example.com", "https://other.example.com", false},
		{"pds.example.com:8080", "https://pds.example.com", false},
		{"localhost:2583", "http://localhost:2584", false},
		{"ws://pds.example.com", "https://pds.example.com", false}, // port 80 against 443
		{"evil.com/pds.example.com", "https://pds.example.com", false},
		{"pds.example.com.evil.com", "https://pds.example.com", false},
		{"", "https://pds.example.com", false},
		{"pds.example.com", "", false},
		{"[::1]", "http://[::2]", false},
	} {
		if got := sameHost(tc.from, tc.endpoint); got != tc.want {
			t.Errorf("sameHost(%q, %q) = %v, want %v", tc.from, tc.endpoint, got, tc.want)
		}
	}
}

func TestMalformedSignature(t *testing.T) {
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.HashAndSign([]byte("msg"))
	if err != nil {
		t.Fatal(err)
	}
	n := orderK256
	half := halfOrder(n)
	for _, tc := range []struct {
		name string
		sig  []byte
		bad  bool
	}{
		{"real", sig, false},
		{"63 bytes", sig[:63], true},
		{"65 bytes", append(bytes.Clone(sig), 0), true},
		{"r zero", append(make([]byte, 32), sig[32:]...), true},
		{"r = n", append(n[:], sig[32:]...), true},
		{"s zero", append(bytes.Clone(sig[:32]), make([]byte, 32)...), true},
		{"s = n/2 (floor), the largest low-S", append(bytes.Clone(sig[:32]), half[:]...), false},
		{"s = n/2 + 1", append(bytes.Clone(sig[:32]), addOne(half)...), true},
		{"high-S twin", highS(sig, n), true},
	} {
		if got := malformedSignature(crypto.KeyTypeK256, tc.sig) != ""; got != tc.bad {
			t.Errorf("%s: malformed = %v, want %v", tc.name, got, tc.bad)
		}
	}
	if malformedSignature(crypto.KeyType("ed25519"), sig) != "" {
		t.Error("an unknown key type's 64-byte signature is judged")
	}
	// checkSignature tells a malformed signature from a wrong one.
	if r, _ := checkSignature(key.Public(), []byte("msg"), sig); r != ReasonNone {
		t.Fatalf("good signature: %s", r)
	}
	if r, _ := checkSignature(key.Public(), []byte("other"), sig); r != ReasonWrongKey {
		t.Fatalf("signature of another message: %s", r)
	}
	if r, _ := checkSignature(key.Public(), []byte("msg"), highS(sig, n)); r != ReasonBadSignature {
		t.Fatalf("high-S signature: %s", r)
	}
}

// halfOrder returns floor(n/2).
func halfOrder(n [32]byte) [32]byte {
	var out [32]byte
	var carry byte
	for i := range n {
		out[i] = n[i]>>1 | carry<<7
		carry = n[i] & 1
	}
	return out
}

func addOne(v [32]byte) []byte {
	out := v
	for i := 31; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			break
		}
	}
	return out[:]
}

func TestReasons(t *testing.T) {
	name := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if !name.MatchString(string(r)) || r.String() != string(r) {
			t.Errorf("reason %q is not a plain metric label", r)
		}
		if seen[r] {
			t.Errorf("reason %q listed twice", r)
		}
		seen[r] = true
	}
	if len(seen) != 27 {
		t.Errorf("%d reasons", len(seen))
	}
	if ReasonNone.String() != "ok" || seen[ReasonNone] {
		t.Error("ReasonNone")
	}
	if !ReasonDuplicateRev.Ignorable() || ReasonRevRollback.Ignorable() {
		t.Error("Ignorable")
	}
}
