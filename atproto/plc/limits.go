package plc

import (
	"strings"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

// Limits on newly submitted operations. MaxOpBytes, the rotation key bounds
// (1 to 5, no duplicates) and MaxVerificationMethods come from the did:plc
// specification; the other values are those of the reference directory
// server. (That server is currently stricter on size, 4000 bytes, and
// looser on rotation keys, up to 10 with no minimum or duplicate check; the
// specification's values are used here.)
const (
	MaxOpBytes             = 7500 // signed DAG-CBOR size
	MinRotationKeys        = 1
	MaxRotationKeys        = 5
	MaxVerificationMethods = 10
	MaxAlsoKnownAs         = 10
	MaxAlsoKnownAsLength   = 258 // a 253-character handle plus "at://"
	MaxServices            = 10
	MaxIDLength            = 32 // verification method and service ids
	MaxServiceTypeLength   = 256
	MaxServiceEndpointLen  = 512
	MaxDIDKeyLength        = 256 // verification method did:key strings
)

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// jsLength counts UTF-16 code units, which is how the reference server
// measures string lengths.
func jsLength(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// CheckNewOpLimits applies the rules a directory enforces on a newly
// submitted operation, on top of AssimilateOp. Operations already in a log
// are exempt: older logs break several of these rules and stay valid.
//
//   - The type is plc_operation or plc_tombstone; the legacy create format
//     may no longer be submitted.
//   - The signed DAG-CBOR encoding is at most MaxOpBytes.
//   - A plc_operation has MinRotationKeys to MaxRotationKeys rotation keys,
//     all distinct, each a did:key of a supported curve (p256 or k256).
//   - At most MaxVerificationMethods verification methods, ids at most
//     MaxIDLength long, keys at most MaxDIDKeyLength long and of the form
//     "did:key:z" followed by base58btc (any key type).
//   - At most MaxAlsoKnownAs alsoKnownAs entries, distinct, each at most
//     MaxAlsoKnownAsLength long.
//   - At most MaxServices services, ids at most MaxIDLength long, types at
//     most MaxServiceTypeLength, endpoints at most MaxServiceEndpointLen.
//
// Lengths are counted in UTF-16 code units, as the reference server does.
// Errors match ErrLimit (or ErrMalformedOp / ErrUnsigned when the
// operation cannot be encoded).
func CheckNewOpLimits(op Op) error {
	if isNil(op) {
		return errf(ErrMalformedOp, "nil operation")
	}
	b, err := op.SignedBytes()
	if err != nil {
		return err
	}
	if len(b) > MaxOpBytes {
		return errf(ErrLimit, "operation is %d bytes in DAG-CBOR (max %d)", len(b), MaxOpBytes)
	}
	var o *Operation
	switch x := op.(type) {
	case *Tombstone:
		return nil
	case *LegacyCreate:
		return errf(ErrLimit, "the legacy %q operation format can no longer be submitted", TypeLegacyCreate)
	case *Operation:
		o = x
	default:
		return errf(ErrMalformedOp, "unknown operation")
	}

	if n := len(o.RotationKeys); n < MinRotationKeys || n > MaxRotationKeys {
		return errf(ErrLimit, "%d rotation keys (must be %d to %d)", n, MinRotationKeys, MaxRotationKeys)
	}
	seen := make(map[string]bool, len(o.RotationKeys))
	for _, k := range o.RotationKeys {
		if seen[k] {
			return errf(ErrLimit, "duplicate rotation key %s", k)
		}
		seen[k] = true
		if _, err := crypto.ParsePublicDIDKey(k); err != nil {
			return errf(ErrLimit, "invalid rotation key %q: %v", k, err)
		}
	}

	if n := len(o.VerificationMethods); n > MaxVerificationMethods {
		return errf(ErrLimit, "%d verification methods (max %d)", n, MaxVerificationMethods)
	}
	for id, key := range o.VerificationMethods {
		if jsLength(id) > MaxIDLength {
			return errf(ErrLimit, "verification method id too long (max %d): %q", MaxIDLength, id)
		}
		if jsLength(key) > MaxDIDKeyLength {
			return errf(ErrLimit, "verification method key too long (max %d): %q", MaxDIDKeyLength, key)
		}
		mb, ok := strings.CutPrefix(key, "did:key:z")
		if !ok || mb == "" || strings.Trim(mb, base58Alphabet) != "" {
			return errf(ErrLimit, "verification method %q is not a did:key with base58btc multibase: %q", id, key)
		}
	}

	if n := len(o.AlsoKnownAs); n > MaxAlsoKnownAs {
		return errf(ErrLimit, "%d alsoKnownAs entries (max %d)", n, MaxAlsoKnownAs)
	}
	akas := make(map[string]bool, len(o.AlsoKnownAs))
	for _, a := range o.AlsoKnownAs {
		if jsLength(a) > MaxAlsoKnownAsLength {
			return errf(ErrLimit, "alsoKnownAs entry too long (max %d): %q", MaxAlsoKnownAsLength, a)
		}
		if akas[a] {
			return errf(ErrLimit, "duplicate alsoKnownAs entry %q", a)
		}
		akas[a] = true
	}

	if n := len(o.Services); n > MaxServices {
		return errf(ErrLimit, "%d services (max %d)", n, MaxServices)
	}
	for id, s := range o.Services {
		if jsLength(id) > MaxIDLength {
			return errf(ErrLimit, "service id too long (max %d): %q", MaxIDLength, id)
		}
		if jsLength(s.Type) > MaxServiceTypeLength {
			return errf(ErrLimit, "service %q type too long (max %d)", id, MaxServiceTypeLength)
		}
		if jsLength(s.Endpoint) > MaxServiceEndpointLen {
			return errf(ErrLimit, "service %q endpoint too long (max %d)", id, MaxServiceEndpointLen)
		}
	}
	return nil
}
