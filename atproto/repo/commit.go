package repo

import (
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Commit format versions.
const (
	// CommitVersion is the version of the repository format this package
	// writes (repository specification, "Repo Data Structure (v3)").
	CommitVersion = 3
	// LegacyCommitVersion is the previous format: the same fields, but
	// "rev" may be missing and "prev" may be missing or set.
	LegacyCommitVersion = 2
)

// ErrLegacyCommit is returned (wrapped) by ParseCommit for a version 2
// commit, which ParseLegacyCommit reads.
var ErrLegacyCommit = errors.New("legacy version 2 commit")

// Commit is the signed object at the top of a repository. Its DAG-CBOR
// map has the keys, in canonical order, "did", "rev", "sig", "data",
// "prev" and "version".
type Commit struct {
	// DID is the account that owns the repository.
	DID syntax.DID
	// Version is CommitVersion (3), or LegacyCommitVersion for old commits
	// read by ParseLegacyCommit.
	Version int64
	// Data is the CID of the root node of the MST.
	Data data.CID
	// Rev is the revision, a TID that increases with every commit. Only a
	// legacy commit may lack it.
	Rev syntax.TID
	// Prev links to an earlier commit. Commits written now leave it nil;
	// it is always encoded, as null when nil.
	Prev *data.CID
	// Sig is the signature over UnsignedBytes; nil before Sign.
	Sig []byte

	// noPrev records that a legacy commit had no "prev" key at all, so
	// that it re-encodes to the bytes that were signed.
	noPrev bool
}

// NewCommit returns an unsigned version 3 commit.
func NewCommit(did syntax.DID, mstRoot data.CID, rev syntax.TID) *Commit {
	return &Commit{DID: did, Version: CommitVersion, Data: mstRoot, Rev: rev}
}

// Legacy reports whether c is a version 2 commit.
func (c *Commit) Legacy() bool { return c.Version == LegacyCommitVersion }

// Validate checks the fields against the repository specification: a
// known version, a DID, a TID rev (optional only in version 2), and
// "blessed" dag-cbor CIDs (CIDv1, sha-256) for data and prev. It does not
// check the signature.
func (c *Commit) Validate() error {
	switch c.Version {
	case CommitVersion:
		if _, err := syntax.ParseTID(string(c.Rev)); err != nil {
			return fmt.Errorf("commit: rev: %w", err)
		}
		if c.noPrev {
			return errors.New(`commit: version 3 commits must have a "prev" field`)
		}
	case LegacyCommitVersion:
		if c.Rev != "" {
			if _, err := syntax.ParseTID(string(c.Rev)); err != nil {
				return fmt.Errorf("commit: rev: %w", err)
			}
		}
	default:
		return fmt.Errorf("commit: unsupported version %d (want %d)", c.Version, CommitVersion)
	}
	if _, err := syntax.ParseDID(string(c.DID)); err != nil {
		return fmt.Errorf("commit: did: %w", err)
	}
	if err := checkTreeLink(c.Data); err != nil {
		return fmt.Errorf("commit: data: %w", err)
	}
	if c.Prev != nil {
		if err := checkTreeLink(*c.Prev); err != nil {
			return fmt.Errorf("commit: prev: %w", err)
		}
	}
	return nil
}

// checkTreeLink checks that a link from a commit has the blessed form for
// links to commits and MST nodes: CIDv1, sha-256, dag-cbor.
func checkTreeLink(l data.CID) error {
	if !l.Defined() {
		return errors.New("missing CID")
	}
	if !l.IsBlessed() || l.Codec() != data.CodecDagCBOR {
		return fmt.Errorf("CID %s is not a CIDv1 sha-256 dag-cbor link", l)
	}
	return nil
}

// MarshalDAGCBOR writes the commit, with its signature if it has one. It
// implements data.CBORMarshaler.
func (c *Commit) MarshalDAGCBOR(e *data.Encoder) error {
	return c.encode(e, c.Sig != nil)
}

func (c *Commit) encode(e *data.Encoder, withSig bool) error {
	if err := c.Validate(); err != nil {
		return err
	}
	hasRev := c.Rev != ""
	hasPrev := !c.noPrev
	n := 3 // did, data, version
	for _, b := range []bool{hasRev, withSig, hasPrev} {
		if b {
			n++
		}
	}
	if err := e.WriteMapHeader(n); err != nil {
		return err
	}
	// Canonical order: shorter keys first, then bytewise.
	if err := e.WriteKey("did"); err != nil {
		return err
	}
	if err := e.WriteString(string(c.DID)); err != nil {
		return err
	}
	if hasRev {
		if err := e.WriteKey("rev"); err != nil {
			return err
		}
		if err := e.WriteString(string(c.Rev)); err != nil {
			return err
		}
	}
	if withSig {
		if err := e.WriteKey("sig"); err != nil {
			return err
		}
		e.WriteBytes(c.Sig)
	}
	if err := e.WriteKey("data"); err != nil {
		return err
	}
	if err := e.WriteCID(c.Data); err != nil {
		return err
	}
	if hasPrev {
		if err := e.WriteKey("prev"); err != nil {
			return err
		}
		if c.Prev == nil {
			e.WriteNull()
		} else if err := e.WriteCID(*c.Prev); err != nil {
			return err
		}
	}
	if err := e.WriteKey("version"); err != nil {
		return err
	}
	return e.WriteInt(c.Version)
}

// Bytes returns the DAG-CBOR encoding of the signed commit: the block
// stored in the repository. The commit must be signed.
func (c *Commit) Bytes() ([]byte, error) {
	if len(c.Sig) == 0 {
		return nil, errors.New("commit: not signed")
	}
	e := data.NewEncoder(make([]byte, 0, 192))
	if err := c.encode(e, true); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

// UnsignedBytes returns the DAG-CBOR encoding of the commit without its
// "sig" field: the bytes that are signed.
func (c *Commit) UnsignedBytes() ([]byte, error) {
	e := data.NewEncoder(make([]byte, 0, 128))
	if err := c.encode(e, false); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

// CID returns the CID of the signed commit block.
func (c *Commit) CID() (data.CID, error) {
	b, err := c.Bytes()
	if err != nil {
		return data.CID{}, err
	}
	return data.CIDForCBOR(b), nil
}

// Sign signs the commit with the account's signing key and sets Sig. Only
// version 3 commits are signed.
func (c *Commit) Sign(key crypto.PrivateKey) error {
	if c.Version != CommitVersion {
		return fmt.Errorf("commit: refusing to sign a version %d commit", c.Version)
	}
	b, err := c.UnsignedBytes()
	if err != nil {
		return err
	}
	sig, err := key.HashAndSign(b)
	if err != nil {
		return fmt.Errorf("commit: sign: %w", err)
	}
	c.Sig = sig
	return nil
}

// Verify checks the signature against the account's public signing key.
// A bad signature gives an error matching crypto.ErrInvalidSignature.
func (c *Commit) Verify(key crypto.PublicKey) error {
	if len(c.Sig) == 0 {
		return errors.New("commit: not signed")
	}
	b, err := c.UnsignedBytes()
	if err != nil {
		return err
	}
	if err := key.HashAndVerify(b, c.Sig); err != nil {
		return fmt.Errorf("commit %s rev %s: %w", c.DID, c.Rev, err)
	}
	return nil
}

// ParseCommit decodes a signed version 3 commit block. It is strict: the
// encoding must be canonical DAG-CBOR, every field of the specification
// must be present (prev may be null), no other field may be, and the
// fields must pass Validate. A version 2 commit gives an error wrapping
// ErrLegacyCommit.
func ParseCommit(b []byte) (*Commit, error) {
	c, err := ParseLegacyCommit(b)
	if err != nil {
		return nil, err
	}
	if c.Version != CommitVersion {
		return nil, fmt.Errorf("commit: %w: version 3 is required", ErrLegacyCommit)
	}
	return c, nil
}

// ParseLegacyCommit is ParseCommit that also accepts version 2 commits,
// in which "rev" and "prev" may be missing; Legacy reports them. Such a
// commit re-encodes to the same bytes and its signature can be verified,
// but it cannot be signed again.
func ParseLegacyCommit(b []byte) (*Commit, error) {
	d := data.NewDecoder(b)
	var c Commit
	if err := c.UnmarshalDAGCBOR(d); err != nil {
		return nil, err
	}
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return &c, nil
}

// UnmarshalDAGCBOR reads a signed commit of version 2 or 3, as
// ParseLegacyCommit does. It implements data.CBORUnmarshaler.
func (c *Commit) UnmarshalDAGCBOR(d *data.Decoder) error {
	if d.PeekKind() != data.KindMap {
		return fmt.Errorf("commit: at offset %d: not a map", d.Offset())
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	*c = Commit{}
	var (
		prevKey                             []byte
		haveDID, haveData, haveVer, haveSig bool
		havePrev                            bool
	)
	for range n {
		key, err := d.ReadMapKey(prevKey)
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		prevKey = key
		switch string(key) {
		case "did":
			s, err := d.ReadString()
			if err != nil {
				return fmt.Errorf(`commit: "did": %w`, err)
			}
			c.DID, haveDID = syntax.DID(s), true
		case "rev":
			s, err := d.ReadString()
			if err != nil {
				return fmt.Errorf(`commit: "rev": %w`, err)
			}
			if s == "" {
				return errors.New(`commit: "rev" is empty`)
			}
			c.Rev = syntax.TID(s)
		case "sig":
			if c.Sig, err = d.ReadBytes(); err != nil {
				return fmt.Errorf(`commit: "sig": %w`, err)
			}
			haveSig = true
		case "data":
			if c.Data, err = d.ReadCID(); err != nil {
				return fmt.Errorf(`commit: "data": %w`, err)
			}
			haveData = true
		case "prev":
			if d.PeekNull() {
				if err := d.ReadNull(); err != nil {
					return fmt.Errorf(`commit: "prev": %w`, err)
				}
			} else {
				p, err := d.ReadCID()
				if err != nil {
					return fmt.Errorf(`commit: "prev": %w`, err)
				}
				c.Prev = &p
			}
			havePrev = true
		case "version":
			if c.Version, err = d.ReadInt(); err != nil {
				return fmt.Errorf(`commit: "version": %w`, err)
			}
			haveVer = true
		default:
			return fmt.Errorf("commit: unknown field %q", key)
		}
	}
	switch {
	case !haveVer:
		return errors.New(`commit: missing "version"`)
	case c.Version != CommitVersion && c.Version != LegacyCommitVersion:
		return fmt.Errorf("commit: unsupported version %d (want %d)", c.Version, CommitVersion)
	case !haveDID:
		return errors.New(`commit: missing "did"`)
	case !haveData:
		return errors.New(`commit: missing "data"`)
	case !haveSig:
		return errors.New(`commit: missing "sig"`)
	case len(c.Sig) == 0:
		return errors.New(`commit: empty "sig"`)
	case c.Version == CommitVersion && c.Rev == "":
		return errors.New(`commit: version 3 commit without "rev"`)
	case c.Version == CommitVersion && !havePrev:
		return errors.New(`commit: version 3 commit without "prev" (it must be present, as null)`)
	}
	c.noPrev = !havePrev
	return c.Validate()
}
