package plc

import (
	"crypto/sha256"
	"encoding/base32"
	"sort"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// didEncoding is RFC 4648 base32 in lower case, without padding.
var didEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DIDForGenesis derives the DID a signed genesis operation creates:
// "did:plc:" followed by the first 24 characters of the lower-case base32
// encoding of the SHA-256 of the operation's signed DAG-CBOR bytes. The
// operation must be a *Operation or *LegacyCreate with a null prev and a
// signature (the signature itself is not checked here).
func DIDForGenesis(op Op) (syntax.DID, error) {
	if isNil(op) {
		return "", errf(ErrMalformedOp, "nil operation")
	}
	if op.Type() == TypeTombstone {
		return "", errf(ErrMisordered, "a tombstone cannot be a genesis operation")
	}
	if op.PrevCID() != nil {
		return "", errf(ErrMisordered, "a genesis operation must have a null prev")
	}
	b, err := op.SignedBytes()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return syntax.DID("did:plc:" + didEncoding.EncodeToString(sum[:])[:24]), nil
}

// Normalize returns the plc_operation equivalent of a legacy create
// operation, as the reference implementation maps it: verificationMethods
// {atproto: signingKey}, rotationKeys [recoveryKey, signingKey], alsoKnownAs
// [at://handle] and services {atproto_pds: {AtprotoPersonalDataServer,
// service}}. Prev and Sig are carried over; the signature does not verify
// over the normalized form, and its CID differs from the original's, so the
// result is for reading the data only.
func (o *LegacyCreate) Normalize() *Operation {
	return &Operation{
		RotationKeys:        []string{o.RecoveryKey, o.SigningKey},
		VerificationMethods: map[string]string{"atproto": o.SigningKey},
		AlsoKnownAs:         []string{ensureATPrefix(o.Handle)},
		Services: map[string]Service{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: ensureHTTPPrefix(o.Service)},
		},
		Sig: o.Sig,
	}
}

// ensureATPrefix mirrors the reference: values already starting with at://
// are kept; otherwise the first "http://" and then the first "https://" are
// removed and at:// is prepended.
func ensureATPrefix(s string) string {
	if strings.HasPrefix(s, "at://") {
		return s
	}
	s = strings.Replace(s, "http://", "", 1)
	s = strings.Replace(s, "https://", "", 1)
	return "at://" + s
}

func ensureHTTPPrefix(s string) string {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return s
	}
	return "https://" + s
}

// rotationKeysOf returns the rotation keys an operation establishes (nil for
// a tombstone).
func rotationKeysOf(op Op) []string {
	switch o := op.(type) {
	case *Operation:
		return o.RotationKeys
	case *LegacyCreate:
		return []string{o.RecoveryKey, o.SigningKey}
	}
	return nil
}

// DocumentData is the PLC state of a DID, as the directory serves it at
// /:did/data.
type DocumentData struct {
	DID                 syntax.DID         `json:"did"`
	VerificationMethods map[string]string  `json:"verificationMethods"`
	RotationKeys        []string           `json:"rotationKeys"`
	AlsoKnownAs         []string           `json:"alsoKnownAs"`
	Services            map[string]Service `json:"services"`
}

// DataForOp returns the state an operation establishes for did. Legacy
// create operations are normalized first (see LegacyCreate.Normalize). A
// tombstone establishes no state: the result is an error matching
// ErrTombstoned. The slices and maps are fresh copies.
func DataForOp(did syntax.DID, op Op) (*DocumentData, error) {
	if isNil(op) {
		return nil, errf(ErrMalformedOp, "nil operation")
	}
	var o *Operation
	switch x := op.(type) {
	case *Operation:
		o = x
	case *LegacyCreate:
		o = x.Normalize()
	default:
		return nil, errf(ErrTombstoned, "%s is deactivated", did)
	}
	d := &DocumentData{
		DID:                 did,
		VerificationMethods: make(map[string]string, len(o.VerificationMethods)),
		RotationKeys:        append([]string{}, o.RotationKeys...),
		AlsoKnownAs:         append([]string{}, o.AlsoKnownAs...),
		Services:            make(map[string]Service, len(o.Services)),
	}
	for k, v := range o.VerificationMethods {
		d.VerificationMethods[k] = v
	}
	for k, v := range o.Services {
		d.Services[k] = v
	}
	return d, nil
}

// Document is a DID document in the form the PLC directory renders.
type Document struct {
	Context            []string             `json:"@context"`
	ID                 syntax.DID           `json:"id"`
	AlsoKnownAs        []string             `json:"alsoKnownAs"`
	VerificationMethod []VerificationMethod `json:"verificationMethod"`
	Service            []DocumentService    `json:"service"`
}

// VerificationMethod is one key of a DID document.
type VerificationMethod struct {
	ID                 string `json:"id"`
	Type               string `json:"type"`
	Controller         string `json:"controller"`
	PublicKeyMultibase string `json:"publicKeyMultibase"`
}

// DocumentService is one service entry of a DID document.
type DocumentService struct {
	ID              string `json:"id"`
	Type            string `json:"type"`
	ServiceEndpoint string `json:"serviceEndpoint"`
}

// JSON-LD contexts the directory writes.
const (
	ContextDID       = "https://www.w3.org/ns/did/v1"
	ContextMultikey  = "https://w3id.org/security/multikey/v1"
	ContextP256      = "https://w3id.org/security/suites/ecdsa-2019/v1"
	ContextSecp256k1 = "https://w3id.org/security/suites/secp256k1-2019/v1"
)

// sortedKeys orders map keys as DAG-CBOR (and the directory's database)
// does: shorter first, then byte-wise.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) < len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}

// Document renders d as a DID document the way the reference directory
// does: @context starts with the DID and Multikey contexts, followed by the
// suite context of each recognised key type in order of first use (P-256:
// ecdsa-2019, secp256k1: secp256k1-2019; other key types add none); every
// verification method is a Multikey with id "<did>#<name>", the DID as
// controller and the did:key without its "did:key:" prefix as
// publicKeyMultibase; services get ids "#<name>". Entries are ordered by
// name, shorter names first.
func (d *DocumentData) Document() *Document {
	doc := &Document{
		Context:            []string{ContextDID, ContextMultikey},
		ID:                 d.DID,
		AlsoKnownAs:        append([]string{}, d.AlsoKnownAs...),
		VerificationMethod: []VerificationMethod{},
		Service:            []DocumentService{},
	}
	addContext := func(c string) {
		for _, have := range doc.Context {
			if have == c {
				return
			}
		}
		doc.Context = append(doc.Context, c)
	}
	for _, name := range sortedKeys(d.VerificationMethods) {
		key := d.VerificationMethods[name]
		if pk, err := crypto.ParsePublicDIDKey(key); err == nil {
			switch pk.KeyType() {
			case crypto.KeyTypeP256:
				addContext(ContextP256)
			case crypto.KeyTypeK256:
				addContext(ContextSecp256k1)
			}
		}
		doc.VerificationMethod = append(doc.VerificationMethod, VerificationMethod{
			ID:                 string(d.DID) + "#" + name,
			Type:               "Multikey",
			Controller:         string(d.DID),
			PublicKeyMultibase: strings.TrimPrefix(key, "did:key:"),
		})
	}
	for _, name := range sortedKeys(d.Services) {
		s := d.Services[name]
		doc.Service = append(doc.Service, DocumentService{
			ID:              "#" + name,
			Type:            s.Type,
			ServiceEndpoint: s.Endpoint,
		})
	}
	return doc
}
