// Package lexicon reads Lexicon schema documents and validates atproto data
// against them: records, XRPC query parameters and bodies, and event-stream
// messages.
//
// # Schemas
//
// ParseSchemaFile parses one document into a *SchemaFile whose definitions
// are typed Go values (*Record, *Query, *Object, *String, ...), with
// optional constraints as pointers (nil when absent) and property names in
// document order, so that code generators see the schema exactly as
// written. Parsing also checks the document against the Lexicon
// specification: only "main" may be a record, query, procedure,
// subscription or permission-set; refs, unions, unknown and params can not
// be named definitions; constraints must have the right types and
// consistent ranges; unknown members are refused, so a misspelt constraint
// is an error rather than silently ignored. Problems are *SchemaError values
// naming the document and the path inside it.
//
// # Catalogs
//
// A Catalog holds many schema files (LoadCatalogDir, LoadCatalogFS, Add).
// Linking it resolves every reference and compiles each definition once
// into a tree of validators that point at each other directly, with each
// string format's parser chosen up front; validating a record then walks
// that tree without looking anything up by name and, when the data is
// valid, without allocating. A reference into a schema file the catalog
// holds but to a definition it lacks is a link error; a reference to a
// schema file absent from the catalog is reported by Unresolved and fails
// only the data that reaches it, so partial catalogs stay usable.
//
// # Validation rules
//
// Data is in the generic form of package data (map[string]any, []any,
// string, int64, bool, nil, data.Bytes, data.CID, data.Blob). Following the
// specification:
//
//   - a record's "$type" must equal its collection; union variants must
//     carry "$type" ("nsid" for a main definition, never "nsid#main");
//   - a closed union refuses any other "$type"; an open union accepts a
//     well-formed "$type" it does not list, and validates it when the
//     catalog knows that type;
//   - null is accepted only for properties listed in "nullable"; required
//     properties must be present (a required nullable one may be null);
//   - string maxLength/minLength count UTF-8 bytes, maxGraphemes and
//     minGraphemes count extended grapheme clusters (UAX #29), array lengths
//     count elements and bytes lengths count raw bytes;
//   - enum and const are closed, knownValues are open;
//   - blob accept patterns may be "type/subtype", "type/*" or "*/*".
//
// Flags choose between modes. The zero value applies the specification as
// written: undeclared fields are ignored ("Unexpected fields in data which
// otherwise conforms to the Lexicon should be ignored"), datetimes must be
// strict RFC 3339/ISO 8601, and legacy blobs are refused. Strict also
// refuses undeclared fields and open-union variants the catalog does not
// know; Lenient accepts legacy blobs and loose datetimes, for old data.
//
// Failures are *ValidationError values whose Path leads from the root of
// the data, for example "reply.root.uri: invalid AT-URI: ...".
package lexicon
