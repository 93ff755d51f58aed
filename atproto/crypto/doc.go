// Package crypto holds the key pairs and signatures of atproto: ECDSA over
// NIST P-256 ("p256") and secp256k1 ("k256"), with SHA-256 message digests.
//
// Signatures are the 64-byte compact r||s form. HashAndSign always returns
// the low-S variant, and HashAndVerify accepts nothing else, as the atproto
// cryptography specification requires: signatures of the wrong length,
// DER-encoded signatures, r or s outside [1, n-1] and high-S signatures are
// all refused. HashAndVerifyLenient relaxes the last two rules, accepting
// high-S and DER forms, for old data and JWT-style uses.
//
// Public keys travel as text in the multikey form: the letter 'z' (the
// base58btc multibase prefix) followed by base58btc of a multicodec varint
// (p256-pub 0x1200 or secp256k1-pub 0xe7) and the 33-byte compressed point.
// A did:key identifier is that text after "did:key:". The legacy DID
// document form, without multicodec prefix, is read by
// ParsePublicLegacyMultibase. Keys also convert to and from raw bytes and
// JSON Web Keys.
//
// Parsers never panic on bad input; they return an error saying what was
// wrong. Signature verification errors all match ErrInvalidSignature with
// errors.Is, and strict rejections of high-S signatures also match ErrHighS.
//
// secp256k1 key handling (generation, point decompression and the curve
// check) comes from gitlab.com/yawning/secp256k1-voi. secp256k1 signing and
// verification are this package's own, with field arithmetic in assembly
// on amd64. Signing: nonces from RFC 6979 hedged with 32 fresh random bytes
// (section 3.6), a constant-time fixed-base multiplication, and blinded
// inversions. Verification, which handles only public values, runs in
// variable time: one double multiplication with the curve's endomorphism
// and windowed non-adjacent forms, with a small table of multiples cached
// on each public key the first time it verifies. P-256 comes from the
// standard library.
package crypto
