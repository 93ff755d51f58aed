// Package syntax holds typed AT Protocol (atproto) identifiers and the
// strict parsers that construct them.
//
// Every identifier is a small string-based type (DID, Handle, NSID, ATURI,
// TID, RecordKey, Datetime, Language, AtIdentifier, URI, CID). A value of
// one of these types should only be obtained from its Parse function (or,
// for TIDs and datetimes, from the generators in this package), so holding
// one means the string has already been checked against the atproto
// specifications. Conversions such as DID("...") compile, but skip the check
// and are best kept to tests and constants known to be valid.
//
// The parsers scan bytes by hand rather than with regular expressions, and a
// successful parse does not allocate: the returned value shares the input
// string. Rejections are reported as *Error values that name the kind of
// identifier, quote the (possibly truncated) input and say which rule was
// broken, for example:
//
//	invalid handle "jo_hn.test": label "jo_hn" contains '_' at offset 2
//
// Syntax checks here follow the Lexicon string formats: they are as broad as
// the specifications allow. Policy questions, such as whether a handle's
// top-level domain may be used for registration (Handle.AllowedTLD) or
// whether a DID method is supported, are separate methods or belong to other
// packages.
package syntax
