// Package auth implements the two kinds of bearer JWT used by atproto
// services: inter-service tokens and the legacy PDS session tokens.
//
// # Inter-service tokens
//
// CreateServiceToken signs a short-lived token (compact JWS, ES256K or
// ES256 with the 64-byte r||s signature) on behalf of an account, with the
// claims the XRPC specification lists: iss, aud, exp, iat, lxm and a random
// 128-bit jti. ServiceVerifier checks one against the issuer's DID document:
//
//   - the token must be three parts of unpadded base64url holding JSON
//     objects; a header with crit is refused;
//   - typ must be "JWT" or absent. at+jwt, refresh+jwt, dpop+jwt and any
//     other value are refused (BadJwtType), so session tokens and DPoP
//     proofs cannot be replayed as service tokens;
//   - alg must be ES256K or ES256 and must match the issuer key's curve
//     ("none" and HMAC algorithms are refused outright);
//   - exp is required, positive, an integer, and not in the past: like
//     the reference implementation, a token is expired once now > exp,
//     with no extra leeway. exp may be at most MaxTTL (default one hour,
//     the longest com.atproto.server.getServiceAuth issues) ahead;
//   - iat is optional (the reference does not require it) but, when
//     present, may be at most ClockSkew (default 30s) in the future and
//     not after exp;
//   - aud must equal Audience (or satisfy AudienceFunc);
//   - when Verify is given a method NSID, lxm must equal it; a token
//     without lxm is refused unless AllowMissingLxm is set. An empty method
//     skips the check, as the reference does for a null lxm;
//   - the signature must verify, in the strict atproto form (low-S only;
//     the reference accepts high-S "malleable" signatures, this package
//     does not), with the issuer's key: the #atproto verification method,
//     or #atproto_label when iss carries the #atproto_labeler service
//     fragment, per the spec's fixed mapping. Other fragments are refused.
//     If verification fails and the resolver implements DIDRefresher, the
//     DID document is refreshed once and the new key tried;
//   - with a ReplayCache, jti is required and each (iss, jti) is accepted
//     once until the token expires. Replay is checked last, so forged
//     tokens cannot fill the cache.
//
// Failures are *Error values with status 401 and the reference XRPC error
// names (BadJwt, BadJwtType, BadJwtSignature, BadJwtAudience,
// BadJwtLexiconMethod, JwtExpired); match them with errors.Is against the
// Err* sentinels.
//
// # Session tokens
//
// SessionIssuer mints the createSession / refreshSession tokens of a PDS as
// the reference PDS does: HS256 with a server secret, typ at+jwt for access
// tokens (scope com.atproto.access, com.atproto.appPass or
// com.atproto.appPassPrivileged; 2 hours) and refresh+jwt for refresh tokens
// (scope com.atproto.refresh, with a jti; 90 days), aud the PDS DID and sub
// the account DID. Verification failures are status 400 errors named
// ExpiredToken (verified but expired: the official client then refreshes)
// or InvalidToken. Refresh tokens are recorded in a RefreshStore; Rotate
// swaps one for a new pair and keeps the old one usable for a 2 hour grace
// period during which it returns the same new pair, after which it is
// revoked (ExpiredToken, "Token has been revoked").
package auth
