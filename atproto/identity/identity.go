package identity

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Well-known fragment ids and service types used by atproto.
const (
	KeyIDAtproto       = "atproto"       // account signing key
	KeyIDLabeler       = "atproto_label" // labeler signing key
	ServiceIDPDS       = "atproto_pds"
	ServiceIDLabeler   = "atproto_labeler"
	ServiceTypePDS     = "AtprotoPersonalDataServer"
	ServiceTypeLabeler = "AtprotoLabeler"

	// KeyTypeMultikey is the current verification method type.
	KeyTypeMultikey = "Multikey"
)

// Identity is the atproto view of a DID document: the DID, a handle, parsed
// public keys and service endpoints. Identities returned by this package are
// shared (for example by CachingResolver) and must be treated as read-only;
// the unexported parts are never modified after construction.
type Identity struct {
	// DID is the account's DID.
	DID syntax.DID

	// Handle is the account handle, normalized to lower case, or
	// syntax.HandleInvalid. From NewIdentity and Resolver.ResolveDID it is
	// the handle the document declares (the first valid "at://" entry of
	// alsoKnownAs), not yet verified. From Resolver.Lookup it has been
	// verified in both directions, and is syntax.HandleInvalid when that
	// verification failed.
	Handle syntax.Handle

	declaredHandle syntax.Handle
	alsoKnownAs    []string
	keys           []idKey
	keyErrs        map[string]error
	services       []Service // IDs reduced to the bare fragment
}

type idKey struct {
	fragment string
	typ      string
	key      crypto.PublicKey
}

// NewIdentity derives an Identity from a parsed DID document. It fails only
// when the document's id is not a DID; missing or malformed handles, keys and
// services are recorded as absent (the accessors report why).
func NewIdentity(doc *DIDDocument) (*Identity, error) {
	if doc == nil {
		return nil, &DocumentError{Reason: "nil document"}
	}
	did, err := syntax.ParseDID(doc.ID)
	if err != nil {
		return nil, &DocumentError{Reason: `"id" is not a valid DID`, Err: err}
	}
	id := &Identity{
		DID:         did,
		alsoKnownAs: append([]string(nil), doc.AlsoKnownAs...),
	}
	id.declaredHandle = declaredHandle(doc.AlsoKnownAs)
	id.Handle = id.declaredHandle

	for _, vm := range doc.VerificationMethod {
		frag, ok := fragmentOf(did, vm.ID)
		if !ok || id.hasKey(frag) {
			continue
		}
		key, err := parseVerificationMethod(did, vm)
		if err != nil {
			if id.keyErrs == nil {
				id.keyErrs = make(map[string]error)
			}
			if _, seen := id.keyErrs[frag]; !seen {
				id.keyErrs[frag] = err
			}
			continue
		}
		delete(id.keyErrs, frag)
		id.keys = append(id.keys, idKey{fragment: frag, typ: vm.Type, key: key})
	}

	for _, svc := range doc.Service {
		frag, ok := fragmentOf(did, svc.ID)
		if !ok {
			continue
		}
		id.services = append(id.services, Service{ID: frag, Type: svc.Type, ServiceEndpoint: svc.ServiceEndpoint})
	}
	return id, nil
}

// ParseIdentity parses a JSON DID document and derives its Identity.
func ParseIdentity(b []byte) (*Identity, error) {
	doc, err := ParseDIDDocument(b)
	if err != nil {
		return nil, err
	}
	return NewIdentity(doc)
}

// declaredHandle returns the first valid handle among "at://" URIs, or
// syntax.HandleInvalid.
func declaredHandle(aka []string) syntax.Handle {
	for _, u := range aka {
		rest, ok := strings.CutPrefix(u, "at://")
		if !ok {
			continue
		}
		h, err := syntax.ParseHandle(rest)
		if err != nil || h.IsInvalidHandle() {
			continue
		}
		return h.Normalize()
	}
	return syntax.HandleInvalid
}

// fragmentOf reduces a verification method or service id to its fragment.
// Both "#frag" and "<did>#frag" are accepted; an id naming another DID, or
// with no fragment, is not.
func fragmentOf(did syntax.DID, id string) (string, bool) {
	i := strings.IndexByte(id, '#')
	if i < 0 || i == len(id)-1 {
		return "", false
	}
	if i > 0 && id[:i] != string(did) {
		return "", false
	}
	return id[i+1:], true
}

func parseVerificationMethod(did syntax.DID, vm VerificationMethod) (crypto.PublicKey, error) {
	if vm.Controller != string(did) {
		return nil, fmt.Errorf("verification method %q: controller %q is not the document DID", vm.ID, vm.Controller)
	}
	if vm.PublicKeyMultibase == "" {
		return nil, fmt.Errorf("verification method %q: no publicKeyMultibase", vm.ID)
	}
	var (
		key crypto.PublicKey
		err error
	)
	switch vm.Type {
	case KeyTypeMultikey:
		key, err = crypto.ParsePublicMultibase(vm.PublicKeyMultibase)
	case crypto.LegacyTypeK256, crypto.LegacyTypeP256:
		key, err = crypto.ParsePublicLegacyMultibase(vm.PublicKeyMultibase, vm.Type)
	default:
		return nil, fmt.Errorf("verification method %q: unsupported type %q", vm.ID, vm.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("verification method %q: %w", vm.ID, err)
	}
	return key, nil
}

func (i *Identity) hasKey(frag string) bool {
	for _, k := range i.keys {
		if k.fragment == frag {
			return true
		}
	}
	return false
}

// normalizeID accepts "frag", "#frag" or "<did>#frag" and returns "frag".
func (i *Identity) normalizeID(id string) string {
	if strings.IndexByte(id, '#') < 0 {
		return id
	}
	if frag, ok := fragmentOf(i.DID, id); ok {
		return frag
	}
	return ""
}

// DeclaredHandle returns the handle the DID document claims (normalized),
// whether or not it has been verified, or syntax.HandleInvalid when the
// document has none.
func (i *Identity) DeclaredHandle() syntax.Handle { return i.declaredHandle }

// AlsoKnownAs returns a copy of the document's alsoKnownAs URIs.
func (i *Identity) AlsoKnownAs() []string { return append([]string(nil), i.alsoKnownAs...) }

// Key returns the parsed public key of the first valid verification method
// with the given id ("atproto", "#atproto" and "<did>#atproto" are
// equivalent). Errors match ErrKeyNotFound and, when a method with that id
// was present but unusable, say why.
func (i *Identity) Key(id string) (crypto.PublicKey, error) {
	frag := i.normalizeID(id)
	for _, k := range i.keys {
		if k.fragment == frag {
			return k.key, nil
		}
	}
	if err, ok := i.keyErrs[frag]; ok && frag != "" {
		return nil, fmt.Errorf("%w: %s#%s: %w", ErrKeyNotFound, i.DID, frag, err)
	}
	return nil, fmt.Errorf("%w: %s has no verification method #%s", ErrKeyNotFound, i.DID, frag)
}

// SigningKey returns the account's atproto signing key (#atproto).
func (i *Identity) SigningKey() (crypto.PublicKey, error) { return i.Key(KeyIDAtproto) }

// LabelerKey returns the labeler signing key (#atproto_label).
func (i *Identity) LabelerKey() (crypto.PublicKey, error) { return i.Key(KeyIDLabeler) }

// KeyIDs returns the fragments of all usable verification keys, in document
// order.
func (i *Identity) KeyIDs() []string {
	ids := make([]string, len(i.keys))
	for n, k := range i.keys {
		ids[n] = k.fragment
	}
	return ids
}

// Service returns the first service entry with the given id ("atproto_pds",
// "#atproto_pds" and "<did>#atproto_pds" are equivalent). The returned ID is
// the bare fragment. The endpoint is returned as written, unvalidated; use
// ServiceEndpoint for a checked URL. Errors match ErrServiceNotFound.
func (i *Identity) Service(id string) (Service, error) {
	frag := i.normalizeID(id)
	for _, s := range i.services {
		if s.ID == frag {
			return s, nil
		}
	}
	return Service{}, fmt.Errorf("%w: %s has no service #%s", ErrServiceNotFound, i.DID, frag)
}

// ServiceEndpoint returns the URL of the first service with the given id and
// type, checked to be an http(s) URL of a server: scheme, host and optional
// port, nothing else (a lone "/" path is tolerated and dropped). Errors
// match ErrServiceNotFound or ErrInvalidServiceEndpoint.
func (i *Identity) ServiceEndpoint(id, serviceType string) (string, error) {
	frag := i.normalizeID(id)
	for _, s := range i.services {
		if s.ID == frag && s.Type == serviceType {
			u, err := ValidateServiceURL(s.ServiceEndpoint)
			if err != nil {
				return "", fmt.Errorf("%s#%s: %w", i.DID, frag, err)
			}
			return u, nil
		}
	}
	return "", fmt.Errorf("%w: %s has no service #%s of type %s", ErrServiceNotFound, i.DID, frag, serviceType)
}

// PDSEndpoint returns the URL of the account's PDS (#atproto_pds of type
// AtprotoPersonalDataServer).
func (i *Identity) PDSEndpoint() (string, error) {
	return i.ServiceEndpoint(ServiceIDPDS, ServiceTypePDS)
}

// LabelerEndpoint returns the URL of the account's labeler service
// (#atproto_labeler of type AtprotoLabeler).
func (i *Identity) LabelerEndpoint() (string, error) {
	return i.ServiceEndpoint(ServiceIDLabeler, ServiceTypeLabeler)
}

// ValidateServiceURL checks that s is an http or https URL naming only a
// server (scheme, host, optional port; no user info, path other than "/",
// query or fragment) and returns it in the form scheme://host[:port].
// Errors match ErrInvalidServiceEndpoint.
func ValidateServiceURL(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w %q: %s", ErrInvalidServiceEndpoint, truncate(s, 128), why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > 2048 {
		return bad("too long")
	}
	for n := 0; n < len(s); n++ {
		if s[n] <= ' ' || s[n] >= 0x7f {
			return bad("contains whitespace, control or non-ASCII characters")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return bad("scheme must be http or https")
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return bad("no host")
	}
	if u.User != nil {
		return bad("user info not allowed")
	}
	if u.Path != "" && u.Path != "/" {
		return bad("path not allowed")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return bad("query not allowed")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return bad("fragment not allowed")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("bad port")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// clone returns a shallow copy; the shared parts are immutable.
func (i *Identity) clone() *Identity {
	c := *i
	return &c
}
