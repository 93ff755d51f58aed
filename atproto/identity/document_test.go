package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestParseDIDDocumentCurrentForm(t *testing.T) {
	doc := []byte(`{
		"@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
		"id": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
		"alsoKnownAs": ["https://example.com/me", "at://Alice.Example.COM", "at://second.example.com"],
		"verificationMethod": [{
			"id": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto",
			"type": "Multikey",
			"controller": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
			"publicKeyMultibase": "` + specMultikeyK256 + `"
		}],
		"service": [{
			"id": "#atproto_pds",
			"type": "AtprotoPersonalDataServer",
			"serviceEndpoint": "https://pds.example.com"
		}],
		"unknownMember": {"ignored": true}
	}`)
	ident, err := ParseIdentity(doc)
	if err != nil {
		t.Fatal(err)
	}
	if ident.DID != testDID1 {
		t.Errorf("DID = %q", ident.DID)
	}
	if ident.Handle != "alice.example.com" || ident.DeclaredHandle() != "alice.example.com" {
		t.Errorf("Handle = %q, declared %q", ident.Handle, ident.DeclaredHandle())
	}
	key, err := ident.SigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if key.Multibase() != specMultikeyK256 || key.KeyType() != crypto.KeyTypeK256 {
		t.Errorf("key = %s (%s)", key.Multibase(), key.KeyType())
	}
	for _, id := range []string{"atproto", "#atproto", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto"} {
		if k, err := ident.Key(id); err != nil || !k.Equal(key) {
			t.Errorf("Key(%q) = %v, %v", id, k, err)
		}
	}
	pds, err := ident.PDSEndpoint()
	if err != nil || pds != "https://pds.example.com" {
		t.Errorf("PDSEndpoint = %q, %v", pds, err)
	}
	svc, err := ident.Service("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#atproto_pds")
	if err != nil || svc.Type != ServiceTypePDS || svc.ID != "atproto_pds" {
		t.Errorf("Service = %+v, %v", svc, err)
	}
	if got := ident.AlsoKnownAs(); len(got) != 3 {
		t.Errorf("AlsoKnownAs = %v", got)
	}
}

func TestParseDIDDocumentLegacyKeys(t *testing.T) {
	p256, err := crypto.GenerateP256()
	if err != nil {
		t.Fatal(err)
	}
	legacyP256 := "z" + testBase58(p256.Public().UncompressedBytes())
	cases := []struct {
		name, typ, mb string
		want          string // Multikey form of the expected key
	}{
		{"k256", crypto.LegacyTypeK256, specLegacyK256, specMultikeyK256},
		{"p256", crypto.LegacyTypeP256, legacyP256, p256.Public().Multibase()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf(`{"id":"did:web:example.com","alsoKnownAs":["at://example.com"],
				"verificationMethod":[{"id":"#atproto","type":%q,"controller":"did:web:example.com","publicKeyMultibase":%q}]}`,
				tc.typ, tc.mb)
			ident, err := ParseIdentity([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			key, err := ident.SigningKey()
			if err != nil {
				t.Fatal(err)
			}
			if key.Multibase() != tc.want {
				t.Errorf("key %s, want %s", key.Multibase(), tc.want)
			}
		})
	}
}

// TestParseDIDDocumentOldPLCDirectory reads a document exactly as an old
// release of the reference PLC directory (npm @did-plc/server 0.0.1)
// serves it: the legacy verification method type with an uncompressed key
// and no multicodec prefix, relative ids, the secp256k1-2019 context, and
// a development PDS at http://localhost:PORT. The key must be the one the
// same directory reports as a did:key in the DID's operation data.
func TestParseDIDDocumentOldPLCDirectory(t *testing.T) {
	const did = "did:plc:hyl2prfgkdm3wj2ptccyfi6l"
	doc := []byte(`{"@context":["https://www.w3.org/ns/did/v1","https://w3id.org/security/suites/secp256k1-2019/v1"],` +
		`"id":"did:plc:hyl2prfgkdm3wj2ptccyfi6l","alsoKnownAs":["at://dave.test"],` +
		`"verificationMethod":[{"id":"#atproto","type":"EcdsaSecp256k1VerificationKey2019","controller":"did:plc:hyl2prfgkdm3wj2ptccyfi6l",` +
		`"publicKeyMultibase":"zRs1ZDs25EfKKoJr9ve6NVYoAhW6oSRffnDWpqywDWvQKgdWEPQRb5Y5NFDcmHMv8Yw898GQL3rMZSVaY1i6dCVK5"}],` +
		`"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"http://localhost:43102"}]}`)
	const didKey = "did:key:zQ3shcBm1xo299gJj8KT9zm8iQ9DYNxogh2FdkxHp3y3dTxcH"

	ident, err := ParseIdentity(doc)
	if err != nil {
		t.Fatal(err)
	}
	if ident.DID != did || ident.Handle != "dave.test" {
		t.Errorf("DID %q, handle %q", ident.DID, ident.Handle)
	}
	key, err := ident.SigningKey()
	if err != nil {
		t.Fatal(err)
	}
	want, err := crypto.ParsePublicDIDKey(didKey)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(want) || key.DIDKey() != didKey {
		t.Errorf("signing key %s, want %s", key.DIDKey(), didKey)
	}
	pds, err := ident.PDSEndpoint()
	if err != nil || pds != "http://localhost:43102" {
		t.Errorf("PDSEndpoint = %q, %v", pds, err)
	}
}

func TestIdentityKeySelection(t *testing.T) {
	did := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	vm := func(id, typ, controller, mb string) string {
		return fmt.Sprintf(`{"id":%q,"type":%q,"controller":%q,"publicKeyMultibase":%q}`, id, typ, controller, mb)
	}
	build := func(vms ...string) *Identity {
		t.Helper()
		ident, err := ParseIdentity([]byte(`{"id":"` + did + `","verificationMethod":[` + strings.Join(vms, ",") + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		return ident
	}

	t.Run("missing", func(t *testing.T) {
		ident := build(vm(did+"#other", "Multikey", did, specMultikeyK256))
		if _, err := ident.SigningKey(); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("err = %v", err)
		}
		if k, err := ident.Key("other"); err != nil || k == nil {
			t.Errorf("Key(other) = %v", err)
		}
	})
	t.Run("first valid wins", func(t *testing.T) {
		other := newK256(t)
		ident := build(
			vm(did+"#atproto", "Multikey", did, "zNotAKey"),
			vm("#atproto", "Multikey", did, specMultikeyK256),
			vm("#atproto", "Multikey", did, other.Multibase()),
		)
		k, err := ident.SigningKey()
		if err != nil || k.Multibase() != specMultikeyK256 {
			t.Errorf("key = %v, %v", k, err)
		}
	})
	t.Run("wrong controller", func(t *testing.T) {
		ident := build(vm("#atproto", "Multikey", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", specMultikeyK256))
		_, err := ident.SigningKey()
		if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "controller") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("other DID's key", func(t *testing.T) {
		ident := build(vm("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb#atproto", "Multikey", did, specMultikeyK256))
		if _, err := ident.SigningKey(); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("unsupported type", func(t *testing.T) {
		ident := build(vm("#atproto", "JsonWebKey2020", did, specMultikeyK256))
		_, err := ident.SigningKey()
		if !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "unsupported type") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("legacy key in Multikey type", func(t *testing.T) {
		ident := build(vm("#atproto", "Multikey", did, specLegacyK256))
		if _, err := ident.SigningKey(); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("labeler key", func(t *testing.T) {
		ident := build(vm("#atproto", "Multikey", did, specMultikeyK256), vm("#atproto_label", "Multikey", did, specMultikeyK256))
		if _, err := ident.LabelerKey(); err != nil {
			t.Error(err)
		}
		if ids := ident.KeyIDs(); len(ids) != 2 || ids[0] != "atproto" || ids[1] != "atproto_label" {
			t.Errorf("KeyIDs = %v", ids)
		}
	})
}

func TestDeclaredHandle(t *testing.T) {
	cases := []struct {
		aka  []string
		want syntax.Handle
	}{
		{nil, syntax.HandleInvalid},
		{[]string{"https://alice.com"}, syntax.HandleInvalid},
		{[]string{"at://"}, syntax.HandleInvalid},
		{[]string{"at://alice.com/"}, syntax.HandleInvalid},
		{[]string{"at://alice_bad.com", "at://good.com"}, "good.com"},
		{[]string{"at://handle.invalid", "at://good.com"}, "good.com"},
		{[]string{"at://First.com", "at://second.com"}, "first.com"},
		{[]string{"at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}, syntax.HandleInvalid},
	}
	for _, tc := range cases {
		if got := declaredHandle(tc.aka); got != tc.want {
			t.Errorf("declaredHandle(%q) = %q, want %q", tc.aka, got, tc.want)
		}
	}
}

func TestPDSEndpointValidation(t *testing.T) {
	cases := []struct {
		ep   string
		want string // "" means error
	}{
		{"https://pds.example.com", "https://pds.example.com"},
		{"https://pds.example.com/", "https://pds.example.com"},
		{"HTTPS://PDS.example.com:8443", "https://pds.example.com:8443"},
		{"http://localhost:2583", "http://localhost:2583"},
		{"", ""},
		{"pds.example.com", ""},
		{"ftp://pds.example.com", ""},
		{"https://", ""},
		{"https://pds.example.com/xrpc", ""},
		{"https://pds.example.com/?q=1", ""},
		{"https://pds.example.com?", ""},
		{"https://pds.example.com#frag", ""},
		{"https://user:pw@pds.example.com", ""},
		{"https://pds.example.com:99999", ""},
		{"https://pds.example.com:", ""},
		{"https://pds .example.com", ""},
		{"javascript:alert(1)", ""},
		{"https:opaque", ""},
	}
	for _, tc := range cases {
		doc := fmt.Sprintf(`{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":%q}]}`, tc.ep)
		ident, err := ParseIdentity([]byte(doc))
		if err != nil {
			t.Fatalf("%q: %v", tc.ep, err)
		}
		got, err := ident.PDSEndpoint()
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidServiceEndpoint) {
				t.Errorf("%q: got %q, %v; want ErrInvalidServiceEndpoint", tc.ep, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.ep, got, err, tc.want)
		}
	}
}

func TestServiceSelection(t *testing.T) {
	doc := `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","service":[
		{"id":"#atproto_pds","type":"SomethingElse","serviceEndpoint":"https://wrong.example.com"},
		{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://right.example.com"},
		{"id":"#atproto_labeler","type":"AtprotoLabeler","serviceEndpoint":"https://labeler.example.com"},
		{"id":"#fancy","type":"X","serviceEndpoint":{"origins":["https://a.example"]}}
	]}`
	ident, err := ParseIdentity([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if pds, err := ident.PDSEndpoint(); err != nil || pds != "https://right.example.com" {
		t.Errorf("PDSEndpoint = %q, %v", pds, err)
	}
	if l, err := ident.LabelerEndpoint(); err != nil || l != "https://labeler.example.com" {
		t.Errorf("LabelerEndpoint = %q, %v", l, err)
	}
	if s, err := ident.Service("fancy"); err != nil || s.ServiceEndpoint != "" {
		t.Errorf("Service(fancy) = %+v, %v", s, err)
	}
	if _, err := ident.Service("nope"); !errors.Is(err, ErrServiceNotFound) {
		t.Errorf("err = %v", err)
	}

	ident, err = ParseIdentity([]byte(`{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ident.PDSEndpoint(); !errors.Is(err, ErrServiceNotFound) {
		t.Errorf("err = %v", err)
	}
}

func TestParseDIDDocumentRejects(t *testing.T) {
	cases := map[string]string{
		"empty":          ``,
		"not json":       `hello`,
		"array":          `[{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}]`,
		"null":           `null`,
		"trailing data":  `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"} {}`,
		"trailing brace": `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}}`,
		"missing id":     `{"alsoKnownAs":["at://a.com"]}`,
		"bad id":         `{"id":"not a did"}`,
		"id with frag":   `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#x"}`,
		"id number":      `{"id":42}`,
		"aka string":     `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","alsoKnownAs":"at://a.com"}`,
		"vm object":      `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","verificationMethod":{"id":"#atproto"}}`,
		"service id num": `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","service":[{"id":1}]}`,
		"truncated":      `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"`,
		"oversize":       `{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","x":"` + strings.Repeat("a", MaxDIDDocumentSize) + `"}`,
	}
	for name, in := range cases {
		_, err := ParseDIDDocument([]byte(in))
		var de *DocumentError
		if !errors.Is(err, ErrInvalidDIDDocument) || !errors.As(err, &de) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestNewIdentityNil(t *testing.T) {
	if _, err := NewIdentity(nil); !errors.Is(err, ErrInvalidDIDDocument) {
		t.Errorf("err = %v", err)
	}
	if _, err := NewIdentity(&DIDDocument{ID: "nope"}); !errors.Is(err, ErrInvalidDIDDocument) {
		t.Errorf("err = %v", err)
	}
}
