package blobstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/welkin-atproto/welkin/atproto/data"
)

func FuzzSniffMIME(f *testing.F) {
	f.Add([]byte("\x89PNG\x0D\x0A\x1A\x0A"), "image/png")
	f.Add(ftyp("mif1", "mif1", "heic"), "")
	f.Add([]byte("\x1A\x45\xDF\xA3\x42\x82\x84webm"), "audio/webm")
	f.Add([]byte("OggS\x00"), "audio/ogg; codecs=opus")
	f.Add([]byte("<?xml"), "image/svg+xml")
	f.Add([]byte{}, "text/plain; charset=\"utf-8\"")
	f.Add([]byte("\x00\x00\x00\x01ftyp"), "*/*")
	f.Fuzz(func(t *testing.T, head []byte, declared string) {
		got := SniffMIME(head, declared)
		if got == "" {
			t.Fatal("empty result")
		}
		if _, _, err := mime.ParseMediaType(got); err != nil {
			t.Fatalf("SniffMIME(%q, %q) = %q, which does not parse: %v", head, declared, got, err)
		}
		if len(head) > HeadSize {
			if short := SniffMIME(head[:HeadSize], declared); short != got {
				t.Fatalf("bytes past HeadSize changed the result: %q vs %q", short, got)
			}
		}
	})
}

func FuzzTempKey(f *testing.F) {
	f.Add(newTempKey())
	f.Add("..")
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaa/a")
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaa.")
	f.Fuzz(func(t *testing.T, key string) {
		if checkTempKey(key) != nil {
			return
		}
		if len(key) != TempKeyLength || !filepath.IsLocal(key) || filepath.Base(key) != key ||
			strings.ContainsAny(key, `/\.:`) {
			t.Fatalf("checkTempKey accepted %q", key)
		}
	})
}

// FuzzBlobReader checks the reader every upload goes through: whatever
// the stream, the limit and the read sizes, it passes exactly the bytes of
// a stream within the limit, with their CID and head, and refuses a longer
// one.
func FuzzBlobReader(f *testing.F) {
	f.Add([]byte("hello"), int64(5), uint8(0))
	f.Add([]byte("hello"), int64(4), uint8(1))
	f.Add(bytes.Repeat([]byte("x"), 600), int64(600), uint8(2))
	f.Add([]byte{}, int64(0), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, limit int64, mode uint8) {
		if limit < 0 {
			limit = -limit
			if limit < 0 { // math.MinInt64
				limit = 0
			}
		}
		var r io.Reader = bytes.NewReader(b)
		switch mode % 4 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = iotest.HalfReader(r)
		case 3:
			r = iotest.DataErrReader(r)
		}
		br := newBlobReader(context.Background(), r, limit)
		got, err := io.ReadAll(br)
		if int64(len(b)) > limit {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d bytes, limit %d: %v; want ErrTooLarge", len(b), limit, err)
			}
			if int64(len(got)) > limit {
				t.Fatalf("passed %d bytes, over the limit of %d", len(got), limit)
			}
			return
		}
		if err != nil {
			t.Fatalf("%d bytes, limit %d: %v", len(b), limit, err)
		}
		res := br.result("k")
		if !bytes.Equal(got, b) || res.Size != int64(len(b)) || res.CID != data.CIDForRaw(b) ||
			!bytes.Equal(res.Head, b[:min(len(b), HeadSize)]) {
			t.Fatalf("%d bytes, limit %d: passed %d bytes, result size %d, CID %s, head %d bytes",
				len(b), limit, len(got), res.Size, res.CID, len(res.Head))
		}
	})
}
