package blobstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// harness is one Store under test with the few backdoors the behavioural
// suite needs.
type harness struct {
	store Store
	// temps lists the keys of the temporary blobs stored for every account.
	temps func(t *testing.T) []string
	// backdate makes the temporary blob key of did look last written at
	// when.
	backdate func(t *testing.T, did syntax.DID, key string, when time.Time)
}

const (
	didA = syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	didB = syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaab") // didA plus a character: a prefix trap
)

// runSuite runs the behavioural tests every Store must pass.
func runSuite(t *testing.T, newHarness func(t *testing.T) *harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"SizeLimit", testSizeLimit},
		{"FailedUploadKeepsNothing", testFailedUpload},
		{"MakePermanentIdempotent", testMakePermanentIdempotent},
		{"ConcurrentSameContent", testConcurrentSameContent},
		{"Delete", testDelete},
		{"DeleteTemp", testDeleteTemp},
		{"DeleteAll", testDeleteAll},
		{"AccountsAreSeparate", testAccountsSeparate},
		{"CleanTemp", testCleanTemp},
		{"BadKeys", testBadKeys},
		{"BadDIDs", testBadDIDs},
		{"UndefinedCID", testUndefinedCID},
		{"OddDIDs", testOddDIDs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newHarness(t)) })
	}
}

// content returns n deterministic pseudo-random bytes.
func content(n int, seed uint64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func putTemp(t *testing.T, s Store, did syntax.DID, b []byte) TempBlob {
	t.Helper()
	tb, err := s.PutTemp(t.Context(), did, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("PutTemp(%d bytes): %v", len(b), err)
	}
	return tb
}

func putPermanent(t *testing.T, s Store, did syntax.DID, b []byte) data.CID {
	t.Helper()
	tb := putTemp(t, s, did, b)
	if err := s.MakePermanent(t.Context(), did, tb.Key, tb.CID); err != nil {
		t.Fatalf("MakePermanent: %v", err)
	}
	return tb.CID
}

// wantBlob checks that the permanent blob cid of did holds b.
func wantBlob(t *testing.T, s Store, did syntax.DID, cid data.CID, b []byte) {
	t.Helper()
	rc, size, err := s.Get(t.Context(), did, cid)
	if err != nil {
		t.Fatalf("Get(%s): %v", cid, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", cid, err)
	}
	if size != int64(len(b)) {
		t.Errorf("Get(%s) size = %d, want %d", cid, size, len(b))
	}
	if !bytes.Equal(got, b) {
		t.Errorf("Get(%s) returned %d bytes that differ from the %d stored", cid, len(got), len(b))
	}
	if ok, err := s.Has(t.Context(), did, cid); err != nil || !ok {
		t.Errorf("Has(%s) = %v, %v; want true", cid, ok, err)
	}
}

// wantNoBlob checks that the permanent blob cid of did does not exist.
func wantNoBlob(t *testing.T, s Store, did syntax.DID, cid data.CID) {
	t.Helper()
	rc, _, err := s.Get(t.Context(), did, cid)
	if err == nil {
		rc.Close()
		t.Fatalf("Get(%s) of %s succeeded; want ErrNotFound", cid, did)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(%s) of %s: %v; want ErrNotFound", cid, did, err)
	}
	if ok, err := s.Has(t.Context(), did, cid); err != nil || ok {
		t.Errorf("Has(%s) of %s = %v, %v; want false", cid, did, ok, err)
	}
}

// wantTemps checks the set of temporary keys stored.
func wantTemps(t *testing.T, h *harness, want ...string) {
	t.Helper()
	got := h.temps(t)
	gotSet := map[string]bool{}
	for _, k := range got {
		gotSet[k] = true
	}
	ok := len(got) == len(want)
	for _, k := range want {
		ok = ok && gotSet[k]
	}
	if !ok {
		t.Errorf("temporary blobs = %q, want %q", got, want)
	}
}

func testRoundTrip(t *testing.T, h *harness) {
	for i, n := range []int{0, 1, 100, HeadSize - 1, HeadSize, HeadSize + 1, 100 << 10, S3PartSize, S3PartSize + 1000} {
		b := content(n, uint64(i))
		tb := putTemp(t, h.store, didA, b)
		if err := checkTempKey(tb.Key); err != nil {
			t.Errorf("%d bytes: key %q: %v", n, tb.Key, err)
		}
		if tb.Size != int64(n) {
			t.Errorf("%d bytes: Size = %d", n, tb.Size)
		}
		if want := data.CIDForRaw(b); tb.CID != want {
			t.Errorf("%d bytes: CID = %s, want %s", n, tb.CID, want)
		}
		if tb.CID.Codec() != data.CodecRaw || tb.CID.HashCode() != data.HashSHA256 || tb.CID.Version() != 1 {
			t.Errorf("%d bytes: CID %s is not CIDv1 raw sha2-256", n, tb.CID)
		}
		if want := b[:min(n, HeadSize)]; !bytes.Equal(tb.Head, want) {
			t.Errorf("%d bytes: Head has %d bytes, want the first %d", n, len(tb.Head), len(want))
		}
		// Temporary blobs are not reachable.
		wantNoBlob(t, h.store, didA, tb.CID)
		if err := h.store.MakePermanent(t.Context(), didA, tb.Key, tb.CID); err != nil {
			t.Fatalf("%d bytes: MakePermanent: %v", n, err)
		}
		wantBlob(t, h.store, didA, tb.CID, b)
	}
	wantTemps(t, h)
}

func testSizeLimit(t *testing.T, h *harness) {
	const limit = 1000
	b := content(limit, 1)
	tb, err := h.store.PutTemp(t.Context(), didA, bytes.NewReader(b), limit)
	if err != nil {
		t.Fatalf("PutTemp of exactly the limit: %v", err)
	}
	if tb.Size != limit || tb.CID != data.CIDForRaw(b) {
		t.Errorf("PutTemp at the limit: size %d, CID %s", tb.Size, tb.CID)
	}
	wantTemps(t, h, tb.Key)

	over := content(limit+1, 2)
	_, err = h.store.PutTemp(t.Context(), didA, bytes.NewReader(over), limit)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PutTemp one byte over the limit: %v; want ErrTooLarge", err)
	}
	// Far over the limit, arriving one byte at a time, and past a part.
	big := content(S3PartSize+10, 3)
	_, err = h.store.PutTemp(t.Context(), didA, iotest.OneByteReader(bytes.NewReader(big[:5000])), 4000)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PutTemp far over the limit: %v; want ErrTooLarge", err)
	}
	_, err = h.store.PutTemp(t.Context(), didA, bytes.NewReader(big), S3PartSize+9)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PutTemp one byte over a limit past the first part: %v; want ErrTooLarge", err)
	}
	wantTemps(t, h, tb.Key) // nothing kept of the refused uploads

	// A zero limit admits only the empty blob.
	empty, err := h.store.PutTemp(t.Context(), didA, bytes.NewReader(nil), 0)
	if err != nil || empty.CID != data.CIDForRaw(nil) || empty.Size != 0 {
		t.Errorf("PutTemp of the empty blob with limit 0: %+v, %v", empty, err)
	}
	if _, err := h.store.PutTemp(t.Context(), didA, strings.NewReader("x"), 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("PutTemp of one byte with limit 0: %v; want ErrTooLarge", err)
	}
	if _, err := h.store.PutTemp(t.Context(), didA, strings.NewReader("x"), -1); err == nil || errors.Is(err, ErrTooLarge) {
		t.Errorf("PutTemp with a negative limit: %v; want an argument error", err)
	}
	if _, err := h.store.PutTemp(t.Context(), didA, nil, 10); err == nil {
		t.Error("PutTemp of a nil reader succeeded")
	}
	wantTemps(t, h, tb.Key, empty.Key)
}

// failingReader returns n bytes and then an error.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// cancelingReader cancels a context once its bytes are read.
type cancelingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
		return n, nil // as if more were coming
	}
	return n, err
}

func testFailedUpload(t *testing.T, h *harness) {
	boom := errors.New("client went away")
	for _, n := range []int{10, S3PartSize + 10} {
		r := &failingReader{r: bytes.NewReader(content(n, 4)), err: boom}
		_, err := h.store.PutTemp(t.Context(), didA, r, 1<<30)
		if !errors.Is(err, boom) {
			t.Errorf("PutTemp of a %d-byte stream that fails: %v; want the reader's error", n, err)
		}

		ctx, cancel := context.WithCancel(t.Context())
		cr := &cancelingReader{r: bytes.NewReader(content(n, 5)), cancel: cancel}
		_, err = h.store.PutTemp(ctx, didA, cr, 1<<30)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("PutTemp of a %d-byte stream whose context ends: %v; want context.Canceled", n, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.store.PutTemp(ctx, didA, strings.NewReader("x"), 10); !errors.Is(err, context.Canceled) {
		t.Errorf("PutTemp with a canceled context: %v", err)
	}
	wantTemps(t, h)
}

func testMakePermanentIdempotent(t *testing.T, h *harness) {
	b := content(3000, 6)
	tb := putTemp(t, h.store, didA, b)
	for i := range 3 {
		if err := h.store.MakePermanent(t.Context(), didA, tb.Key, tb.CID); err != nil {
			t.Fatalf("MakePermanent #%d: %v", i+1, err)
		}
	}
	wantBlob(t, h.store, didA, tb.CID, b)

	// The same bytes uploaded again later: the second temporary copy goes.
	again := putTemp(t, h.store, didA, b)
	if again.Key == tb.Key || again.CID != tb.CID {
		t.Fatalf("second upload: key %q (first %q), CID %s (first %s)", again.Key, tb.Key, again.CID, tb.CID)
	}
	if err := h.store.MakePermanent(t.Context(), didA, again.Key, again.CID); err != nil {
		t.Fatalf("MakePermanent of a second upload: %v", err)
	}
	wantBlob(t, h.store, didA, tb.CID, b)
	wantTemps(t, h)

	// A key that was never issued, for a blob that is not there.
	other := data.CIDForRaw([]byte("never uploaded"))
	err := h.store.MakePermanent(t.Context(), didA, newTempKey(), other)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("MakePermanent of an unknown key: %v; want ErrNotFound", err)
	}
	wantNoBlob(t, h.store, didA, other)
}

func testConcurrentSameContent(t *testing.T, h *harness) {
	b := content(50<<10, 7)
	const uploads = 4
	var blobs [uploads]TempBlob
	var errs [uploads]error
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Go(func() {
			blobs[i], errs[i] = h.store.PutTemp(t.Context(), didA, bytes.NewReader(b), int64(len(b)))
		})
	}
	wg.Wait()
	keys := map[string]bool{}
	for i := range uploads {
		if errs[i] != nil {
			t.Fatalf("PutTemp #%d: %v", i, errs[i])
		}
		if blobs[i].CID != data.CIDForRaw(b) {
			t.Errorf("PutTemp #%d: CID %s", i, blobs[i].CID)
		}
		keys[blobs[i].Key] = true
	}
	if len(keys) != uploads {
		t.Fatalf("%d uploads got %d distinct keys", uploads, len(keys))
	}
	for i := range uploads {
		wg.Go(func() {
			errs[i] = h.store.MakePermanent(t.Context(), didA, blobs[i].Key, blobs[i].CID)
		})
	}
	wg.Wait()
	for i := range uploads {
		if errs[i] != nil {
			t.Errorf("MakePermanent #%d: %v", i, errs[i])
		}
	}
	wantBlob(t, h.store, didA, blobs[0].CID, b)
	wantTemps(t, h)
}

func testDelete(t *testing.T, h *harness) {
	b1, b2, b3 := content(10, 8), content(20, 9), content(30, 10)
	c1, c2, c3 := putPermanent(t, h.store, didA, b1), putPermanent(t, h.store, didA, b2), putPermanent(t, h.store, didA, b3)
	missing := data.CIDForRaw([]byte("not stored"))
	if err := h.store.Delete(t.Context(), didA, c1, missing, c3); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNoBlob(t, h.store, didA, c1)
	wantNoBlob(t, h.store, didA, c3)
	wantBlob(t, h.store, didA, c2, b2)
	if err := h.store.Delete(t.Context(), didA); err != nil {
		t.Errorf("Delete of nothing: %v", err)
	}
	if err := h.store.Delete(t.Context(), didA, c1); err != nil {
		t.Errorf("Delete of a deleted blob: %v", err)
	}
	// The same blob of another account is another blob.
	putPermanent(t, h.store, didB, b2)
	if err := h.store.Delete(t.Context(), didA, c2); err != nil {
		t.Fatal(err)
	}
	wantNoBlob(t, h.store, didA, c2)
	wantBlob(t, h.store, didB, c2, b2)
}

func testDeleteTemp(t *testing.T, h *harness) {
	tb := putTemp(t, h.store, didA, content(100, 11))
	keep := putTemp(t, h.store, didA, content(100, 12))
	if err := h.store.DeleteTemp(t.Context(), didA, tb.Key); err != nil {
		t.Fatalf("DeleteTemp: %v", err)
	}
	if err := h.store.DeleteTemp(t.Context(), didA, tb.Key); err != nil {
		t.Errorf("DeleteTemp again: %v", err)
	}
	wantTemps(t, h, keep.Key)
	if err := h.store.MakePermanent(t.Context(), didA, tb.Key, tb.CID); !errors.Is(err, ErrNotFound) {
		t.Errorf("MakePermanent after DeleteTemp: %v; want ErrNotFound", err)
	}
	wantNoBlob(t, h.store, didA, tb.CID)
}

func testDeleteAll(t *testing.T, h *harness) {
	a1, a2 := content(10, 13), content(20, 14)
	ca1, ca2 := putPermanent(t, h.store, didA, a1), putPermanent(t, h.store, didA, a2)
	tempA := putTemp(t, h.store, didA, content(30, 15))
	cb := putPermanent(t, h.store, didB, a1)
	tempB := putTemp(t, h.store, didB, content(40, 16))

	if err := h.store.DeleteAll(t.Context(), didA); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	wantNoBlob(t, h.store, didA, ca1)
	wantNoBlob(t, h.store, didA, ca2)
	if err := h.store.MakePermanent(t.Context(), didA, tempA.Key, tempA.CID); !errors.Is(err, ErrNotFound) {
		t.Errorf("MakePermanent of a deleted account's upload: %v; want ErrNotFound", err)
	}
	wantBlob(t, h.store, didB, cb, a1)
	wantTemps(t, h, tempB.Key)
	if err := h.store.DeleteAll(t.Context(), didA); err != nil {
		t.Errorf("DeleteAll of an account with nothing: %v", err)
	}
	// The account can upload again.
	again := putPermanent(t, h.store, didA, a2)
	wantBlob(t, h.store, didA, again, a2)
}

func testAccountsSeparate(t *testing.T, h *harness) {
	b := content(64, 17)
	tb := putTemp(t, h.store, didA, b)
	// Another account cannot claim, see or delete didA's upload.
	if err := h.store.MakePermanent(t.Context(), didB, tb.Key, tb.CID); !errors.Is(err, ErrNotFound) {
		t.Errorf("MakePermanent with another account's key: %v; want ErrNotFound", err)
	}
	if err := h.store.DeleteTemp(t.Context(), didB, tb.Key); err != nil {
		t.Fatal(err)
	}
	wantTemps(t, h, tb.Key)
	if err := h.store.MakePermanent(t.Context(), didA, tb.Key, tb.CID); err != nil {
		t.Fatal(err)
	}
	wantBlob(t, h.store, didA, tb.CID, b)
	wantNoBlob(t, h.store, didB, tb.CID)
}

func testCleanTemp(t *testing.T, h *harness) {
	now := time.Now()
	old := putTemp(t, h.store, didA, content(10, 18))
	oldB := putTemp(t, h.store, didB, content(10, 19))
	fresh := putTemp(t, h.store, didA, content(10, 20))
	perm := content(10, 21)
	permCID := putPermanent(t, h.store, didA, perm)
	h.backdate(t, didA, old.Key, now.Add(-3*time.Hour))
	h.backdate(t, didB, oldB.Key, now.Add(-2*time.Hour))

	if err := h.store.CleanTemp(t.Context(), now.Add(-4*time.Hour)); err != nil {
		t.Fatalf("CleanTemp: %v", err)
	}
	wantTemps(t, h, old.Key, oldB.Key, fresh.Key)

	if err := h.store.CleanTemp(t.Context(), now.Add(-time.Hour)); err != nil {
		t.Fatalf("CleanTemp: %v", err)
	}
	wantTemps(t, h, fresh.Key)
	if err := h.store.MakePermanent(t.Context(), didA, old.Key, old.CID); !errors.Is(err, ErrNotFound) {
		t.Errorf("MakePermanent of a collected upload: %v; want ErrNotFound", err)
	}
	if err := h.store.MakePermanent(t.Context(), didA, fresh.Key, fresh.CID); err != nil {
		t.Errorf("MakePermanent of a fresh upload after CleanTemp: %v", err)
	}
	// Permanent blobs are never collected.
	if err := h.store.CleanTemp(t.Context(), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantBlob(t, h.store, didA, permCID, perm)
	wantBlob(t, h.store, didA, fresh.CID, content(10, 20))
}

// badKeys are temporary keys no caller may use.
var badKeys = []string{
	"",
	".",
	"..",
	"../../../../etc/passwd",
	"/etc/passwd",
	"a/b",
	`a\b`,
	"aaaaaaaaaaaaaaaaaaaaaaaa/a",
	"aaaaaaaaaaaaaaaaaaaaaaa/..",
	"aaaaaaaaaaaaaaaaaaaaaaaa..",
	"AAAAAAAAAAAAAAAAAAAAAAAAAA",
	"aaaaaaaaaaaaaaaaaaaaaaaaa",   // one short
	"aaaaaaaaaaaaaaaaaaaaaaaaaaa", // one long
	"aaaaaaaaaaaaaaaaaaaaaaaaa\x00",
	"aaaaaaaaaaaaaaaaaaaaaaaaa1",
	strings.Repeat("a", 5000),
}

func testBadKeys(t *testing.T, h *harness) {
	tb := putTemp(t, h.store, didA, content(10, 22))
	for _, k := range append(badKeys, "tmp/"+tb.Key, "../"+tb.Key) {
		if err := h.store.MakePermanent(t.Context(), didA, k, tb.CID); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("MakePermanent(%q): %v; want ErrInvalidKey", k, err)
		}
		if err := h.store.DeleteTemp(t.Context(), didA, k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("DeleteTemp(%q): %v; want ErrInvalidKey", k, err)
		}
	}
	wantTemps(t, h, tb.Key)
	wantNoBlob(t, h.store, didA, tb.CID)
}

// badDIDs are not DIDs; some would lead elsewhere if used as names.
var badDIDs = []syntax.DID{
	"",
	"..",
	"../../etc",
	"did:plc:../../x",
	"did:plc:a/b",
	`did:plc:a\b`,
	"DID:plc:abc",
	"did:plc:",
	"did:plc:abc:",
	"did::abc",
	"tmp",
}

func testBadDIDs(t *testing.T, h *harness) {
	ctx := t.Context()
	c := data.CIDForRaw([]byte("x"))
	key := newTempKey()
	for _, did := range badDIDs {
		if _, err := h.store.PutTemp(ctx, did, strings.NewReader("x"), 10); err == nil {
			t.Errorf("PutTemp for %q succeeded", did)
		}
		if err := h.store.MakePermanent(ctx, did, key, c); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("MakePermanent for %q: %v; want a DID error", did, err)
		}
		if _, _, err := h.store.Get(ctx, did, c); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Get for %q: %v; want a DID error", did, err)
		}
		if _, err := h.store.Has(ctx, did, c); err == nil {
			t.Errorf("Has for %q succeeded", did)
		}
		if err := h.store.Delete(ctx, did, c); err == nil {
			t.Errorf("Delete for %q succeeded", did)
		}
		if err := h.store.DeleteTemp(ctx, did, key); err == nil {
			t.Errorf("DeleteTemp for %q succeeded", did)
		}
		if err := h.store.DeleteAll(ctx, did); err == nil {
			t.Errorf("DeleteAll for %q succeeded", did)
		}
	}
	wantTemps(t, h)
}

func testUndefinedCID(t *testing.T, h *harness) {
	ctx := t.Context()
	tb := putTemp(t, h.store, didA, content(10, 23))
	if err := h.store.MakePermanent(ctx, didA, tb.Key, data.CID{}); err == nil {
		t.Error("MakePermanent with the undefined CID succeeded")
	}
	if _, _, err := h.store.Get(ctx, didA, data.CID{}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Get of the undefined CID: %v", err)
	}
	if _, err := h.store.Has(ctx, didA, data.CID{}); err == nil {
		t.Error("Has of the undefined CID succeeded")
	}
	if err := h.store.Delete(ctx, didA, data.CID{}); err == nil {
		t.Error("Delete of the undefined CID succeeded")
	}
	wantTemps(t, h, tb.Key)
}

// oddDIDs are valid DIDs whose text would be trouble as a name taken
// as it is.
var oddDIDs = []syntax.DID{
	"did:web:..",
	"did:web:.",
	"did:web:%2e%2e",
	"did:web:localhost%3A8080",
	"did:plc:a:b",
	"did:web:" + syntax.DID(strings.Repeat("x", syntax.DIDMaxLength-len("did:web:"))),
	"did:web:" + syntax.DID(strings.Repeat("x", syntax.DIDMaxLength-len("did:web:")-1)) + "y",
}

func testOddDIDs(t *testing.T, h *harness) {
	// The same bytes for every account: no two accounts may share a place.
	b := content(100, 24)
	c := data.CIDForRaw(b)
	for i, did := range oddDIDs {
		if _, err := syntax.ParseDID(string(did)); err != nil {
			t.Fatalf("test DID %d is not valid: %v", i, err)
		}
		putPermanent(t, h.store, did, b)
		wantBlob(t, h.store, did, c, b)
	}
	for i, did := range oddDIDs {
		if err := h.store.DeleteAll(t.Context(), did); err != nil {
			t.Errorf("DeleteAll(%.40s): %v", did, err)
		}
		wantNoBlob(t, h.store, did, c)
		for _, other := range oddDIDs[i+1:] {
			wantBlob(t, h.store, other, c, b)
		}
	}
}
