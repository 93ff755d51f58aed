package identity

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// MaxDIDDocumentSize is the largest DID document, in bytes, that
// ParseDIDDocument accepts and that resolvers read from the network. Real
// atproto documents are well under 2 KiB.
const MaxDIDDocumentSize = 64 << 10

// DIDDocument is the subset of a W3C DID document that atproto uses.
// Unknown members are ignored when parsing.
type DIDDocument struct {
	// Context is the "@context" member, kept verbatim (a string or an array
	// in the wild). It is not interpreted.
	Context json.RawMessage `json:"@context,omitempty"`
	// ID is the DID the document describes.
	ID string `json:"id"`
	// AlsoKnownAs lists URIs for the subject; atproto handles appear as
	// "at://<handle>".
	AlsoKnownAs []string `json:"alsoKnownAs,omitempty"`
	// VerificationMethod lists public keys.
	VerificationMethod []VerificationMethod `json:"verificationMethod,omitempty"`
	// Service lists service endpoints.
	Service []Service `json:"service,omitempty"`
}

// VerificationMethod is one entry of a DID document's "verificationMethod"
// array. Only the publicKeyMultibase key form is understood.
type VerificationMethod struct {
	ID                 string `json:"id"`
	Type               string `json:"type"`
	Controller         string `json:"controller"`
	PublicKeyMultibase string `json:"publicKeyMultibase,omitempty"`
}

// Service is one entry of a DID document's "service" array. A
// serviceEndpoint that is not a JSON string (the DID specification also
// allows maps and arrays, which atproto never uses) is tolerated when
// parsing but leaves ServiceEndpoint empty.
type Service struct {
	ID              string `json:"id"`
	Type            string `json:"type"`
	ServiceEndpoint string `json:"serviceEndpoint"`
}

// UnmarshalJSON accepts any JSON value for serviceEndpoint and keeps it
// only when it is a string.
func (s *Service) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID              string          `json:"id"`
		Type            string          `json:"type"`
		ServiceEndpoint json.RawMessage `json:"serviceEndpoint"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.ID, s.Type, s.ServiceEndpoint = raw.ID, raw.Type, ""
	ep := bytes.TrimSpace(raw.ServiceEndpoint)
	if len(ep) > 0 && ep[0] == '"' {
		if err := json.Unmarshal(ep, &s.ServiceEndpoint); err != nil {
			return err
		}
	}
	return nil
}

// ParseDIDDocument parses a JSON DID document. It refuses inputs larger than
// MaxDIDDocumentSize, anything that is not a JSON object of the expected
// shape, trailing data after the object, and documents whose "id" is not a
// valid DID. It does not check that the id is the DID that was asked for;
// resolvers do that. Errors match ErrInvalidDIDDocument.
func ParseDIDDocument(b []byte) (*DIDDocument, error) {
	if len(b) > MaxDIDDocumentSize {
		return nil, &DocumentError{Reason: fmt.Sprintf("document is %d bytes, limit is %d", len(b), MaxDIDDocumentSize)}
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &DocumentError{Reason: "document is not a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var doc DIDDocument
	if err := dec.Decode(&doc); err != nil {
		return nil, &DocumentError{Reason: "malformed JSON", Err: err}
	}
	if dec.InputOffset() != int64(len(trimmed)) {
		return nil, &DocumentError{Reason: "trailing data after JSON object"}
	}
	if doc.ID == "" {
		return nil, &DocumentError{Reason: `missing "id"`}
	}
	if _, err := syntax.ParseDID(doc.ID); err != nil {
		return nil, &DocumentError{Reason: `"id" is not a valid DID`, Err: err}
	}
	return &doc, nil
}
