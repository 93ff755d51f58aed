package identity

import (
	"testing"
)

func FuzzParseDIDDocument(f *testing.F) {
	f.Add([]byte(`{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","alsoKnownAs":["at://alice.test"],` +
		`"verificationMethod":[{"id":"#atproto","type":"Multikey","controller":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","publicKeyMultibase":"` + specMultikeyK256 + `"}],` +
		`"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://pds.example.com"}]}`))
	f.Add([]byte(`{"id":"did:web:example.com","verificationMethod":[{"id":"did:web:example.com#atproto","type":"EcdsaSecp256k1VerificationKey2019","controller":"did:web:example.com","publicKeyMultibase":"` + specLegacyK256 + `"}]}`))
	f.Add([]byte(`{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","service":[{"id":"#x","serviceEndpoint":{"a":[1,2]}}]}`))
	f.Add([]byte(`{"id":"did:plc:x","alsoKnownAs":["at://","at://a..b","at://handle.invalid"]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"id":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"} x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := ParseDIDDocument(b)
		if err != nil {
			return
		}
		ident, err := NewIdentity(doc)
		if err != nil {
			t.Fatalf("accepted document has no identity: %v", err)
		}
		_ = ident.DeclaredHandle()
		_ = ident.AlsoKnownAs()
		for _, id := range append(ident.KeyIDs(), "atproto", "#atproto", string(ident.DID)+"#atproto", "#", "") {
			if k, err := ident.Key(id); err == nil && k == nil {
				t.Fatalf("Key(%q) returned nil without error", id)
			}
		}
		_, _ = ident.SigningKey()
		_, _ = ident.LabelerKey()
		if u, err := ident.PDSEndpoint(); err == nil {
			if _, err := ValidateServiceURL(u); err != nil {
				t.Fatalf("normalized endpoint %q does not validate: %v", u, err)
			}
		}
		_, _ = ident.LabelerEndpoint()
		_, _ = ident.Service("atproto_pds")
		_ = doc.clone()
	})
}
