package stream

import (
	"bytes"
	"errors"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/data"
)

func TestFrameRoundTrip(t *testing.T) {
	body := map[string]any{"seq": int64(7), "repo": "did:plc:abc", "ops": []any{}}
	f, err := EncodeFrame("#commit", body)
	if err != nil {
		t.Fatal(err)
	}
	h, b, err := DecodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if h != (Header{Op: 1, T: "#commit"}) {
		t.Fatalf("header %+v", h)
	}
	got, err := data.UnmarshalCBOR(b)
	if err != nil || got["seq"] != int64(7) || got["repo"] != "did:plc:abc" {
		t.Fatalf("body %v %v", got, err)
	}
	if seq, ok, err := BodyInt(b, "seq"); !ok || err != nil || seq != 7 {
		t.Fatalf("BodyInt %d %v %v", seq, ok, err)
	}
	if RepoKey(Message{Body: b}) != "did:plc:abc" {
		t.Fatal("RepoKey")
	}
	// RawBody gives the same bytes.
	f2, err := EncodeFrame("#commit", RawBody(b))
	if err != nil || !bytes.Equal(f, f2) {
		t.Fatalf("raw body: %v", err)
	}

	ef, err := EncodeErrorFrame("FutureCursor", "too far")
	if err != nil {
		t.Fatal(err)
	}
	h, b, err = DecodeFrame(ef)
	if err != nil || h != (Header{Op: -1}) {
		t.Fatalf("error frame %+v %v", h, err)
	}
	se, err := DecodeError(b)
	if err != nil || se.Name != "FutureCursor" || se.Message != "too far" {
		t.Fatalf("error body %+v %v", se, err)
	}
	if !errors.Is(se, ErrFutureCursor) {
		t.Fatal("errors.Is FutureCursor")
	}
	// Canonical header: {"t": ..., "op": 1} with "t" first.
	want := []byte{0xa2, 0x61, 't', 0x67, '#', 'c', 'o', 'm', 'm', 'i', 't', 0x62, 'o', 'p', 0x01}
	if !bytes.HasPrefix(f, want) {
		t.Fatalf("header bytes %x", f[:len(want)])
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFrameRejects(t *testing.T) {
	body := mustCBOR(t, map[string]any{"seq": int64(1)})
	good := cat(mustCBOR(t, map[string]any{"op": int64(1), "t": "#x"}), body)
	if _, _, err := DecodeFrame(good); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":           nil,
		"header array":    cat(mustCBOR(t, []any{int64(1)}), body),
		"no op":           cat(mustCBOR(t, map[string]any{"t": "#x"}), body),
		"op string":       cat(mustCBOR(t, map[string]any{"op": "1", "t": "#x"}), body),
		"no t":            cat(mustCBOR(t, map[string]any{"op": int64(1)}), body),
		"empty t":         cat(mustCBOR(t, map[string]any{"op": int64(1), "t": ""}), body),
		"t not string":    cat(mustCBOR(t, map[string]any{"op": int64(1), "t": int64(3)}), body),
		"no body":         mustCBOR(t, map[string]any{"op": int64(1), "t": "#x"}),
		"body not map":    cat(mustCBOR(t, map[string]any{"op": int64(1), "t": "#x"}), mustCBOR(t, "s")),
		"trailing":        cat(good, []byte{0x01}),
		"two bodies":      cat(good, body),
		"truncated body":  good[:len(good)-1],
		"non-canonical":   cat([]byte{0xa2, 0x62, 'o', 'p', 0x01, 0x61, 't', 0x62, '#', 'x'}, body),
		"indefinite body": cat(mustCBOR(t, map[string]any{"op": int64(1), "t": "#x"}), []byte{0xbf, 0xff}),
	}
	for name, f := range cases {
		if _, _, err := DecodeFrame(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Unknown ops are reported distinctly, so that clients can skip them.
	f := cat(mustCBOR(t, map[string]any{"op": int64(2)}), body)
	if _, _, err := DecodeFrame(f); !errors.Is(err, ErrUnknownOp) {
		t.Errorf("op 2: %v", err)
	}
	// Unknown header keys are ignored.
	f = cat(mustCBOR(t, map[string]any{"op": int64(1), "t": "#x", "zz": true}), body)
	if h, _, err := DecodeFrame(f); err != nil || h.T != "#x" {
		t.Errorf("extra key: %v", err)
	}
	if _, err := EncodeFrame("", map[string]any{}); err == nil {
		t.Error("empty type accepted")
	}
	if _, err := EncodeFrame("#x", "not a map"); err == nil {
		t.Error("non-map body accepted")
	}
	if _, err := EncodeFrame("#x", map[string]any{"b": data.Bytes(make([]byte, MaxFrameSize))}); err == nil {
		t.Error("oversized frame accepted")
	}
}

func FuzzDecodeFrame(f *testing.F) {
	a, _ := EncodeFrame("#commit", map[string]any{"seq": int64(1), "repo": "did:plc:x"})
	b, _ := EncodeErrorFrame("ConsumerTooSlow", "")
	f.Add(a)
	f.Add(b)
	f.Add([]byte{0xa1, 0x62, 'o', 'p', 0x20, 0xa0})
	f.Fuzz(func(t *testing.T, x []byte) {
		h, body, err := DecodeFrame(x)
		if err != nil {
			return
		}
		e := data.NewEncoder(nil)
		if err := appendHeader(e, h); err != nil {
			t.Fatalf("re-encoding header %+v: %v", h, err)
		}
		hl := len(x) - len(body)
		re := append(e.Bytes(), body...)
		// Unknown header keys are dropped; otherwise the bytes are identical.
		if e.Len() == hl && !bytes.Equal(re, x) {
			t.Fatalf("round trip changed the frame:\n%x\n%x", x, re)
		}
		h2, body2, err := DecodeFrame(re)
		if err != nil || h2 != h || !bytes.Equal(body2, body) {
			t.Fatalf("re-encoded frame decodes differently: %v", err)
		}
		if h.Op == OpError {
			_, _ = DecodeError(body)
		}
	})
}
