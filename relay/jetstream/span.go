package jetstream

import (
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// MaxSpan is the most events one logged frame yields: a #commit holds at
// most verify.DefaultMaxOps operations (sync specification, "#commit
// Events"), and FromFrame refuses commits with more.
const MaxSpan = verify.DefaultMaxOps

// Span returns how many microseconds of the relay's log time the events
// of a frame take (FromFrame times the i-th op of a commit at the frame's
// time plus i): the number of ops of a #commit, at least 1 and at most
// MaxSpan, and 1 for anything else. It is eventlog.Options.Span for the
// relay's log, so that every stream event gets a time of its own; it
// reads only the frame's header and the body's "ops" array header, and
// anything unreadable counts 1.
func Span(frame []byte) int {
	d := data.NewDecoder(frame)
	t, ok := headerType(d)
	if !ok || t != "#commit" {
		return 1
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return 1
	}
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return 1
		}
		prev = k
		if string(k) == "ops" {
			ops, err := d.ReadArrayHeader()
			if err != nil {
				return 1
			}
			return min(max(ops, 1), MaxSpan)
		}
		if err := d.Skip(); err != nil {
			return 1
		}
	}
	return 1
}

// headerType reads a frame header and returns its "t" when its "op" is 1,
// leaving d at the body.
func headerType(d *data.Decoder) (string, bool) {
	n, err := d.ReadMapHeader()
	if err != nil {
		return "", false
	}
	var (
		prev []byte
		t    string
		op   int64
	)
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return "", false
		}
		prev = k
		switch {
		case string(k) == "op" && d.PeekKind() == data.KindInt:
			op, err = d.ReadInt()
		case string(k) == "t" && d.PeekKind() == data.KindString:
			t, err = d.ReadString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return "", false
		}
	}
	return t, op == 1
}
