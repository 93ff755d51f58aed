package pds

import (
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestAppPasswordFormat(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		pw, err := newAppPassword()
		if err != nil {
			t.Fatal(err)
		}
		if !looksLikeAppPassword(pw) || seen[pw] {
			t.Fatalf("app password %q", pw)
		}
		seen[pw] = true
	}
	for _, s := range []string{"", "abcd-efgh-ijkl-mnop1", "abcd-efgh-ijkl-mno", "abcdefghijklmnopqrs", "abcd-efgh-ijkl-mn0p", "ABCD-EFGH-IJKL-MNOP", "abcd_efgh-ijkl-mnop"} {
		if looksLikeAppPassword(s) {
			t.Errorf("looksLikeAppPassword(%q) = true", s)
		}
	}
	did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	h := appPasswordHash(did, "abcd-efgh-ijkl-mnop")
	if h != appPasswordHash(did, "abcd-efgh-ijkl-mnop") || h == appPasswordHash("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "abcd-efgh-ijkl-mnop") ||
		h == appPasswordHash(did, "abcd-efgh-ijkl-mnoq") {
		t.Error("app password hashes are not bound to the account and the password")
	}
}

func FuzzServiceAudience(f *testing.F) {
	for _, s := range []string{"did:web:example.com", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_labeler", "did:key:z", "did:web:x#", "#x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, aud string) {
		if !validServiceAudience(aud) {
			return
		}
		did, _, _ := strings.Cut(aud, "#")
		d, err := syntax.ParseDID(did)
		if err != nil || (d.Method() != "plc" && d.Method() != "web") {
			t.Fatalf("accepted %q", aud)
		}
	})
}
