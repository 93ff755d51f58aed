// Package identity resolves atproto identities: DIDs to DID documents,
// handles to DIDs, and both to a verified Identity.
//
// # Documents and identities
//
// ParseDIDDocument reads a JSON DID document (at most MaxDIDDocumentSize
// bytes) and NewIdentity derives the atproto view of it: the DID, the
// declared handle (the first valid "at://" entry of alsoKnownAs, or
// handle.invalid), public keys parsed once from the verification methods
// (current Multikey and legacy EcdsaSecp256k1VerificationKey2019 /
// EcdsaSecp256r1VerificationKey2019 forms, ids written "#atproto" or
// "<did>#atproto", controller equal to the DID), and service entries. Use
// Identity.SigningKey, PDSEndpoint, Key and ServiceEndpoint to read them.
//
// # Resolution
//
// BaseResolver fetches did:plc documents from a PLC directory and did:web
// documents from https://<host>/.well-known/did.json (hostname-level only,
// as atproto requires), and checks that the document's id is the DID asked
// for. It resolves handles with the DNS TXT record _atproto.<handle> and
// https://<handle>/.well-known/atproto-did concurrently; a DID found through
// DNS is preferred over a different one found through HTTPS, as the handle
// specification says. Handles with reserved top-level domains are never
// resolved. Lookup adds bidirectional verification: a handle is only
// reported when it resolves to the DID whose document declares it.
//
// CachingResolver wraps any Resolver with TTL caches (separate lifetimes for
// successes and definite failures), LRU eviction, explicit purging for
// #identity events, a rate-limited RefreshDID for signature-failure retries,
// and request coalescing.
//
// # Outbound HTTP
//
// By default all requests go through NewSafeHTTPClient, which refuses to
// connect to loopback, private, link-local and other non-public addresses
// (checked on the dialled address after DNS resolution, on every redirect
// hop), limits redirects and timeouts, and ignores proxy settings. Response
// bodies are size-limited. Development networks opt in to private addresses
// with Options.AllowPrivateNetworks, and to did:web:localhost over plain
// http with Options.AllowLocalhost.
//
// # Errors
//
// Errors match the package's sentinel errors with errors.Is: for example
// ErrDIDNotFound, ErrDIDDeactivated, ErrHandleNotFound, ErrHandleMismatch,
// ErrForbiddenAddress. *DIDError, *HandleError and *DocumentError carry
// details and can be extracted with errors.As.
package identity
