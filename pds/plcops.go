package pds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// Names in the did:plc documents the PDS writes (DID specification and
// the PLC method): the repository signing key and the PDS service.
const (
	plcKeyAtproto  = "atproto"
	plcServicePDS  = "atproto_pds"
	plcServiceType = "AtprotoPersonalDataServer"
)

// genesisOp builds and signs (with the server's rotation key) the first
// operation of a new did:plc for an account: its signing key, its handle,
// this PDS as its service and, as rotation keys, the user's own recovery
// key (when given) before the server's, since keys listed first have more
// authority (the reference orders them the same way).
func (s *Server) genesisOp(handle syntax.Handle, signingKey crypto.PublicKey, recoveryKey string) (*plc.Operation, syntax.DID, error) {
	rotation := []string{s.keys.rotation.Public().DIDKey()}
	if recoveryKey != "" {
		rotation = append([]string{recoveryKey}, rotation...)
	}
	op := &plc.Operation{
		RotationKeys:        rotation,
		VerificationMethods: map[string]string{plcKeyAtproto: signingKey.DIDKey()},
		AlsoKnownAs:         []string{"at://" + string(handle)},
		Services: map[string]plc.Service{
			plcServicePDS: {Type: plcServiceType, Endpoint: s.cfg.PublicURL},
		},
	}
	if err := op.Sign(s.keys.rotation); err != nil {
		return nil, "", fmt.Errorf("pds: sign genesis operation: %w", err)
	}
	did, err := plc.DIDForGenesis(op)
	if err != nil {
		return nil, "", fmt.Errorf("pds: genesis operation: %w", err)
	}
	return op, did, nil
}

// submitPLC sends a signed operation to the PLC directory.
func (s *Server) submitPLC(ctx context.Context, did syntax.DID, op plc.Op) error {
	if err := s.plc.Submit(ctx, did, op); err != nil {
		return plcError(err)
	}
	return nil
}

// lastPLCOp fetches the latest operation of did as a plc_operation (a
// legacy create is normalized) with its CID, the prev of the next one.
func (s *Server) lastPLCOp(ctx context.Context, did syntax.DID) (*plc.Operation, data.CID, error) {
	last, err := s.plc.LastOp(ctx, did)
	if err != nil {
		return nil, data.CID{}, plcError(err)
	}
	cid, err := last.CID()
	if err != nil {
		return nil, data.CID{}, xrpc.UpstreamFailure("the PLC directory returned an unusable operation")
	}
	var op *plc.Operation
	switch x := last.(type) {
	case *plc.Operation:
		op = x
	case *plc.LegacyCreate:
		op = x.Normalize()
	default:
		return nil, data.CID{}, xrpc.InvalidRequest("Did is tombstoned")
	}
	return copyOp(op), cid, nil
}

// updateOp builds the operation that follows the latest one of did, with
// edit applied to a copy of its fields, signed with the server's rotation
// key. It is not submitted.
func (s *Server) updateOp(ctx context.Context, did syntax.DID, edit func(op *plc.Operation) error) (*plc.Operation, error) {
	op, prev, err := s.lastPLCOp(ctx, did)
	if err != nil {
		return nil, err
	}
	if err := edit(op); err != nil {
		return nil, err
	}
	p := prev.String()
	op.Prev = &p
	op.Sig = ""
	if err := op.Sign(s.keys.rotation); err != nil {
		return nil, fmt.Errorf("pds: sign PLC operation: %w", err)
	}
	return op, nil
}

// updatePLCHandle points the did:plc document of did at handle: the first
// "at://" entry of alsoKnownAs is replaced, or the handle is put first
// when there is none, and the other entries are kept.
func (s *Server) updatePLCHandle(ctx context.Context, did syntax.DID, handle syntax.Handle) error {
	op, err := s.updateOp(ctx, did, func(op *plc.Operation) error {
		op.AlsoKnownAs = withHandle(op.AlsoKnownAs, handle)
		return nil
	})
	if err != nil {
		return err
	}
	return s.submitPLC(ctx, did, op)
}

// withHandle returns aka with its first at:// entry replaced by handle.
func withHandle(aka []string, handle syntax.Handle) []string {
	uri := "at://" + string(handle)
	out := append([]string{}, aka...)
	for i, v := range out {
		if strings.HasPrefix(v, "at://") {
			out[i] = uri
			return out
		}
	}
	return append([]string{uri}, out...)
}

// tombstonePLC ends a did:plc that the PDS created a moment ago and could
// not finish setting up, so that no half-made identity stays behind.
func (s *Server) tombstonePLC(ctx context.Context, did syntax.DID, prev data.CID) error {
	t := &plc.Tombstone{Prev: prev.String()}
	if err := t.Sign(s.keys.rotation); err != nil {
		return err
	}
	return s.plc.Submit(ctx, did, t)
}

// plcError maps a failure of the PLC directory to what the client sees:
// a refused operation is the client's fault, anything else the
// directory's.
func plcError(err error) error {
	var he *plc.HTTPError
	if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 {
		if he.StatusCode == http.StatusNotFound {
			e := xrpc.InvalidRequest("DID not found in the PLC directory")
			e.Err = err
			return e
		}
		msg := "PLC directory refused the operation"
		if he.Message != "" {
			msg += ": " + he.Message
		}
		e := xrpc.InvalidRequest(msg)
		e.Err = err
		return e
	}
	var xe *xrpc.Error
	if errors.As(err, &xe) {
		return err
	}
	e := xrpc.UpstreamFailure("could not reach the PLC directory")
	e.Err = err
	return e
}

func copyOp(op *plc.Operation) *plc.Operation {
	out := &plc.Operation{
		RotationKeys:        append([]string{}, op.RotationKeys...),
		VerificationMethods: make(map[string]string, len(op.VerificationMethods)),
		AlsoKnownAs:         append([]string{}, op.AlsoKnownAs...),
		Services:            make(map[string]plc.Service, len(op.Services)),
	}
	for k, v := range op.VerificationMethods {
		out.VerificationMethods[k] = v
	}
	for k, v := range op.Services {
		out.Services[k] = v
	}
	return out
}

// Inputs of com.atproto.identity.signPlcOperation arrive as untyped JSON
// ("unknown" in the lexicon); these read them, refusing anything that is
// not the shape a PLC operation holds.

// verificationMethodsValue reads {"id": "did:key:..."}.
func verificationMethodsValue(v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("verificationMethods must be an object")
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		s, ok := x.(string)
		if !ok || k == "" {
			return nil, fmt.Errorf("verificationMethods.%s must be a did:key string", k)
		}
		if !strings.HasPrefix(s, "did:key:") {
			return nil, fmt.Errorf("verificationMethods.%s must be a did:key", k)
		}
		out[k] = s
	}
	return out, nil
}

// servicesValue reads {"id": {"type": "...", "endpoint": "..."}}.
func servicesValue(v any) (map[string]plc.Service, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("services must be an object")
	}
	out := make(map[string]plc.Service, len(m))
	for k, x := range m {
		sm, ok := x.(map[string]any)
		if !ok || k == "" {
			return nil, fmt.Errorf("services.%s must be an object", k)
		}
		typ, ok1 := sm["type"].(string)
		ep, ok2 := sm["endpoint"].(string)
		if !ok1 || !ok2 || len(sm) != 2 {
			return nil, fmt.Errorf("services.%s must have exactly a string type and a string endpoint", k)
		}
		out[k] = plc.Service{Type: typ, Endpoint: ep}
	}
	return out, nil
}

// opValue renders an operation as a generic data-model value, for the
// "unknown" output of signPlcOperation.
func opValue(op plc.Op) (any, error) {
	b, err := op.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return data.DecodeJSON(b)
}

// parseSubmittedOp reads the "operation" of submitPlcOperation: a signed
// plc_operation in the directory's JSON form.
func parseSubmittedOp(v any) (*plc.Operation, error) {
	b, err := data.MarshalJSON(v)
	if err != nil {
		return nil, err
	}
	op, err := plc.ParseOperationJSON(b)
	if err != nil {
		return nil, err
	}
	o, ok := op.(*plc.Operation)
	if !ok {
		return nil, fmt.Errorf("operation is a %s, not a plc_operation", op.Type())
	}
	if o.Sig == "" {
		return nil, errors.New("operation is not signed")
	}
	return o, nil
}

// sortedKeys lists the keys of m in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
