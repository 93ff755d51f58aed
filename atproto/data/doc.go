// Package data implements the atproto data model: its values, their two
// encodings (DAG-CBOR and JSON) and content identifiers (CIDs).
//
// # Values
//
// Generic values are map[string]any, []any, string, int64, bool, nil,
// Bytes (byte strings), CID (links) and Blob (blob references, in the
// current form and the legacy {"cid", "mimeType"} form). Typed Go structs
// are accepted too: their codecs are built once per type from `cbor` (or
// `json`) struct tags and cached, and types that implement CBORMarshaler
// and CBORUnmarshaler (as generated code does) encode themselves through
// the low-level Encoder and Decoder with no reflection at all.
//
// # DAG-CBOR
//
// The codec implements the strict atproto profile. Writers produce the one
// canonical encoding: minimal headers, definite lengths, map keys sorted
// shorter-first then bytewise, tag 42 only for links, no floats, and
// integers within ±2^53-1 (MaxSafeInt), as the data model asks of writers
// so that JavaScript readers see the same numbers. Readers accept nothing
// else, though they read the full int64 range, so that data written by
// others is never refused for a large integer. Every error is a *CBORError
// with the byte offset of the first offending item. Every length is
// checked against the remaining input before anything is allocated, and
// nesting depth, container size and key length are bounded (MaxDepth,
// MaxContainerLen, MaxKeyLen). Whatever the decoder accepts re-encodes to
// the identical bytes.
//
// # JSON
//
// ParseJSON reads the atproto JSON form: {"$link": ...} objects become
// CIDs, {"$bytes": ...} objects become Bytes and blob objects become Blob;
// numbers must be integers (an integral value written as 123.0 or 1e2 is
// accepted, as the reference implementation accepts it); duplicate keys,
// invalid UTF-8, an empty or non-string "$type" and malformed blobs are
// refused, with the JSON path of the fault in a *JSONError. MarshalJSON
// writes the same form back, with map keys sorted.
//
// # CIDs
//
// CID is a small comparable value holding a binary CID, usable as a map
// key. Any well-formed CIDv0 or CIDv1 is representable, so links inside
// records are kept exactly as received; IsBlessed reports whether a CID has
// the form atproto writes (CIDv1, sha-256, dag-cbor or raw), which the
// repository layer requires of commits and tree nodes.
//
// Decoded strings share one copy of the input they came from: a value kept
// from a large document keeps that copy alive.
package data
