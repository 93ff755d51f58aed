package verify

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// unsignedCommit returns the bytes a commit's signature covers, cut from
// the signed block itself rather than re-encoded: the block without its
// "sig" entry, with the map header counting one entry fewer. That is
// exactly the canonical encoding of the unsigned commit, because the block
// was accepted by repo.ParseCommit, which takes only canonical DAG-CBOR (a
// map of at most six entries, whose header is a single byte) and whose
// output re-encodes to the same bytes. buf is used when large enough.
func unsignedCommit(block, buf []byte) ([]byte, error) {
	if len(block) == 0 || block[0]&0xe0 != 0xa0 || block[0]&0x1f == 0 || block[0]&0x1f > 23 {
		return nil, errors.New("commit block does not start with a small map header")
	}
	d := data.NewDecoder(block)
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	var prev []byte
	for range n {
		start := d.Offset()
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return nil, err
		}
		prev = k
		isSig := string(k) == "sig"
		if isSig {
			if _, err := d.ReadBytesView(); err != nil {
				return nil, err
			}
		} else if err := skipCommitValue(d); err != nil {
			return nil, err
		}
		if isSig {
			end := d.Offset()
			out := append(buf[:0], block[0]-1)
			out = append(out, block[1:start]...)
			return append(out, block[end:]...), nil
		}
	}
	return nil, errors.New(`commit block has no "sig"`)
}

// skipCommitValue passes over the value of a commit field other than
// "sig": a string, a link, null or an integer. (The block has already
// been parsed strictly, so anything else cannot occur.)
func skipCommitValue(d *data.Decoder) error {
	switch d.PeekKind() {
	case data.KindString:
		_, err := d.ReadMapKey(nil) // a text string, read without copying
		return err
	case data.KindLink:
		_, err := d.ReadCIDBytes()
		return err
	case data.KindNull:
		return d.ReadNull()
	case data.KindInt:
		_, err := d.ReadInt()
		return err
	}
	return fmt.Errorf("unexpected commit field value at offset %d", d.Offset())
}

// Group orders of the two curves, big-endian, for telling a malformed
// signature from one that merely does not verify.
var (
	orderK256 = [32]byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
	}
	orderP256 = [32]byte{
		0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
	}
)

// malformedSignature reports why sig could not be a valid atproto
// signature under any key of type kt, or "" if it is well-formed: 64
// bytes, r and s in [1, n-1], s at most n/2 (the cryptography
// specification's low-S rule).
func malformedSignature(kt crypto.KeyType, sig []byte) string {
	if len(sig) != 64 {
		return fmt.Sprintf("signature is %d bytes, not 64", len(sig))
	}
	var n [32]byte
	switch kt {
	case crypto.KeyTypeK256:
		n = orderK256
	case crypto.KeyTypeP256:
		n = orderP256
	default:
		return ""
	}
	r, s := sig[:32], sig[32:]
	var zero [32]byte
	if bytes.Equal(r, zero[:]) || bytes.Compare(r, n[:]) >= 0 {
		return "signature r is out of range"
	}
	if bytes.Equal(s, zero[:]) || bytes.Compare(s, n[:]) >= 0 {
		return "signature s is out of range"
	}
	// s > n/2 exactly when 2s > n, computed without overflow on 33 bytes.
	var twoS [33]byte
	var carry byte
	for i := 31; i >= 0; i-- {
		v := uint16(s[i])<<1 | uint16(carry)
		twoS[i+1] = byte(v)
		carry = byte(v >> 8)
	}
	twoS[0] = carry
	var n33 [33]byte
	copy(n33[1:], n[:])
	if bytes.Compare(twoS[:], n33[:]) > 0 {
		return "signature is high-S; atproto requires low-S"
	}
	return ""
}

// checkSignature verifies sig over msg with key and classifies a failure:
// ReasonBadSignature for a signature no key could verify, ReasonWrongKey
// for a well-formed one this key does not verify.
func checkSignature(key crypto.PublicKey, msg, sig []byte) (Reason, error) {
	err := key.HashAndVerify(msg, sig)
	if err == nil {
		return ReasonNone, nil
	}
	if why := malformedSignature(key.KeyType(), sig); why != "" || errors.Is(err, crypto.ErrHighS) {
		if why == "" {
			why = "signature is high-S; atproto requires low-S"
		}
		return ReasonBadSignature, fmt.Errorf("%s: %w", why, err)
	}
	return ReasonWrongKey, fmt.Errorf("signature does not verify with the %s key %s: %w", key.KeyType(), key.DIDKey(), err)
}
