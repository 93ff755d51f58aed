package blobstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// HeadSize is how many leading bytes of an upload PutTemp hands back in
// TempBlob.Head: the 512 that net/http.DetectContentType considers.
const HeadSize = 512

// TempKeyLength is the length of a temporary blob's key: 128 random bits in
// unpadded lower-case base32.
const TempKeyLength = 26

var (
	// ErrNotFound: the blob, or the temporary upload, does not exist.
	ErrNotFound = errors.New("blobstore: blob not found")
	// ErrTooLarge: an upload had more bytes than the limit PutTemp was
	// given. Nothing was kept.
	ErrTooLarge = errors.New("blobstore: blob too large")
	// ErrInvalidKey: a temporary key is not one PutTemp could have issued.
	ErrInvalidKey = errors.New("blobstore: invalid temporary key")
)

// Store keeps the bytes of blobs, per account, addressed by CID, with a
// temporary area for uploads that no record references yet. It knows
// nothing of MIME types or of which records reference a blob: that is
// metadata, kept in the account's database.
//
// Implementations are safe for concurrent use.
type Store interface {
	// PutTemp streams r into a new temporary blob, reading at most maxSize
	// bytes: a longer stream fails with an error matching ErrTooLarge and
	// leaves nothing behind. It returns the blob's temporary key, size and
	// CID (CIDv1, raw codec, sha2-256) and its first HeadSize bytes for
	// content sniffing. The blob is durable when PutTemp returns.
	PutTemp(ctx context.Context, did syntax.DID, r io.Reader, maxSize int64) (TempBlob, error)
	// MakePermanent moves the temporary blob tempKey to its permanent place
	// under cid, which must be the CID PutTemp returned for it. It succeeds
	// without change when the permanent blob already exists, so a retry, or
	// a second upload of the same bytes, is harmless. When neither the
	// temporary nor the permanent blob exists it returns an error matching
	// ErrNotFound. The blob is durable when MakePermanent returns.
	MakePermanent(ctx context.Context, did syntax.DID, tempKey string, cid data.CID) error
	// Get opens a permanent blob and returns it with its size, or an error
	// matching ErrNotFound. The reader may depend on ctx: keep ctx live
	// until the reader is closed.
	Get(ctx context.Context, did syntax.DID, cid data.CID) (io.ReadCloser, int64, error)
	// Has reports whether a permanent blob exists.
	Has(ctx context.Context, did syntax.DID, cid data.CID) (bool, error)
	// Delete removes permanent blobs; missing ones are not an error.
	Delete(ctx context.Context, did syntax.DID, cids ...data.CID) error
	// DeleteTemp removes a temporary blob; a missing one is not an error.
	DeleteTemp(ctx context.Context, did syntax.DID, tempKey string) error
	// DeleteAll removes every blob of an account, permanent and
	// temporary, as account deletion requires.
	DeleteAll(ctx context.Context, did syntax.DID) error
	// CleanTemp removes the temporary blobs of every account last written
	// before olderThan: uploads that were never referenced. The blob spec
	// asks for at least an hour, and recommends several, between an upload
	// and its collection.
	CleanTemp(ctx context.Context, olderThan time.Time) error
}

// TempBlob describes a blob PutTemp stored.
type TempBlob struct {
	Key  string   // the temporary key, for MakePermanent and DeleteTemp
	Size int64    // bytes
	CID  data.CID // CIDv1, raw codec, sha2-256
	Head []byte   // the first min(Size, HeadSize) bytes, for SniffMIME
}

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newTempKey returns a fresh unguessable key.
func newTempKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return keyEncoding.EncodeToString(b[:])
}

// checkTempKey accepts exactly the keys newTempKey makes: TempKeyLength
// characters of the lower-case base32 alphabet. No such key can be a path
// separator, "." or "..", so a key never leads out of the temporary area.
func checkTempKey(key string) error {
	if len(key) != TempKeyLength {
		return fmt.Errorf("%w: %q: want %d characters", ErrInvalidKey, truncate(key), TempKeyLength)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return fmt.Errorf("%w: %q: byte %#x at %d is not lower-case base32", ErrInvalidKey, truncate(key), c, i)
		}
	}
	return nil
}

// truncate shortens untrusted text for an error message.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// checkDID makes sure did is a well-formed DID: the account part of every
// blob's location is made from it.
func checkDID(did syntax.DID) error {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	return nil
}

// checkCID refuses the undefined CID.
func checkCID(cid data.CID) error {
	if !cid.Defined() {
		return errors.New("blobstore: undefined CID")
	}
	return nil
}

// maxAccountName bounds the account part of a blob's location. A DID may
// have 2048 characters, more than a file name (255 bytes on most file
// systems) or an S3 key (1024 bytes) can hold; a longer DID is named by
// its hash instead.
const maxAccountName = 200

// accountName names an account's area. escape turns ':' into '_' (DIDs
// never contain '_', so the mapping is one to one), as file names want. A
// DID too long for a name becomes "sha256_" and its hash in hex, which no
// DID or escaped DID can equal, as both start with "did".
func accountName(did syntax.DID, escape bool) string {
	if len(did) > maxAccountName {
		sum := sha256.Sum256([]byte(did))
		return "sha256_" + hex.EncodeToString(sum[:])
	}
	if escape {
		return strings.ReplaceAll(string(did), ":", "_")
	}
	return string(did)
}

// blobReader is the reader an upload goes through: it counts, hashes and
// keeps the head of the bytes that pass, fails with ErrTooLarge as soon as
// more than max have come, and stops when ctx is done.
type blobReader struct {
	ctx  context.Context
	r    io.Reader
	max  int64
	n    int64
	sum  hash.Hash
	head []byte
	err  error // sticky
}

func newBlobReader(ctx context.Context, r io.Reader, max int64) *blobReader {
	return &blobReader{ctx: ctx, r: r, max: max, sum: sha256.New(), head: make([]byte, 0, HeadSize)}
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		b.err = err
		return 0, err
	}
	// Ask for one byte past the limit at most: enough to see that a stream
	// is too long without reading on.
	room := b.max - b.n
	if room < math.MaxInt64 {
		room++
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.r.Read(p)
	if n > 0 {
		if int64(n) > b.max-b.n {
			b.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, b.max)
			return 0, b.err
		}
		b.sum.Write(p[:n])
		if len(b.head) < HeadSize {
			b.head = append(b.head, p[:min(n, HeadSize-len(b.head))]...)
		}
		b.n += int64(n)
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// tooLarge reports whether the upload went over its limit.
func (b *blobReader) tooLarge() bool { return errors.Is(b.err, ErrTooLarge) }

// result describes the bytes read so far.
func (b *blobReader) result(key string) TempBlob {
	return TempBlob{
		Key:  key,
		Size: b.n,
		CID:  data.NewCIDv1(data.CodecRaw, data.HashSHA256, b.sum.Sum(nil)),
		Head: b.head,
	}
}

// checkPut validates PutTemp's arguments.
func checkPut(did syntax.DID, r io.Reader, maxSize int64) error {
	if err := checkDID(did); err != nil {
		return err
	}
	if r == nil {
		return errors.New("blobstore: nil reader")
	}
	if maxSize < 0 {
		return fmt.Errorf("blobstore: negative size limit %d", maxSize)
	}
	return nil
}
