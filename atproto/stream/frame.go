package stream

import (
	"errors"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
)

// Header operations (event stream spec, "Framing").
const (
	OpMessage int64 = 1  // a message whose type is given by Header.T
	OpError   int64 = -1 // an error; the stream closes after it
)

// MaxFrameSize bounds one frame, in bytes. The atproto specs set no frame
// limit; this is the limit the reference relay applies to the frames it
// reads, comfortably above a #commit at the sync spec's 2,000,000-byte
// blocks limit.
const MaxFrameSize = 5_000_000

// Error names defined by the subscription lexicons, and the #info name
// sent for a cursor older than the retained window.
const (
	ErrNameFutureCursor    = "FutureCursor"
	ErrNameConsumerTooSlow = "ConsumerTooSlow"
	InfoOutdatedCursor     = "OutdatedCursor"
)

// Header is the first DAG-CBOR object of a frame.
type Header struct {
	Op int64  // OpMessage or OpError
	T  string // message type in short form, such as "#commit"; required for OpMessage
}

// ErrUnknownOp is returned (wrapped) by DecodeFrame for a well-formed frame
// whose header op is neither 1 nor -1. The spec asks clients to ignore such
// frames rather than drop the connection.
var ErrUnknownOp = errors.New("stream: unknown frame op")

// FrameError reports a frame that breaks the framing rules. Err, when set,
// is the underlying *data.CBORError.
type FrameError struct {
	Reason string
	Err    error
}

func (e *FrameError) Error() string {
	if e.Err != nil {
		return "stream: invalid frame: " + e.Reason + ": " + e.Err.Error()
	}
	return "stream: invalid frame: " + e.Reason
}

func (e *FrameError) Unwrap() error { return e.Err }

// StreamError is an error frame's payload: the error name (no namespace or
// '#') and an optional message.
type StreamError struct {
	Name    string
	Message string
}

func (e *StreamError) Error() string {
	if e.Message == "" {
		return "stream error " + e.Name
	}
	return "stream error " + e.Name + ": " + e.Message
}

// appendHeader writes a header in canonical form: "t" sorts before "op".
func appendHeader(e *data.Encoder, h Header) error {
	n := 1
	if h.T != "" {
		n = 2
	}
	if err := e.WriteMapHeader(n); err != nil {
		return err
	}
	if h.T != "" {
		if err := e.WriteKey("t"); err != nil {
			return err
		}
		if err := e.WriteString(h.T); err != nil {
			return err
		}
	}
	if err := e.WriteKey("op"); err != nil {
		return err
	}
	return e.WriteInt(h.Op)
}

// EncodeFrame encodes a message frame: the header {op: 1, t} followed by
// body, which must encode (through data.MarshalCBOR's rules) to a map.
// A body of type RawBody is taken as already-encoded DAG-CBOR and checked.
func EncodeFrame(t string, body any) ([]byte, error) {
	if t == "" {
		return nil, errors.New("stream: message frame needs a type")
	}
	return encode(Header{Op: OpMessage, T: t}, body)
}

// RawBody is a payload that is already DAG-CBOR. EncodeFrame checks that
// it is one canonical map and copies it after the header.
type RawBody []byte

// EncodeErrorFrame encodes an error frame {op: -1} + {error, message};
// message is omitted when empty.
func EncodeErrorFrame(name, message string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("stream: error frame needs a name")
	}
	e := data.NewEncoder(make([]byte, 0, 32+len(name)+len(message)))
	if err := appendHeader(e, Header{Op: OpError}); err != nil {
		return nil, err
	}
	if err := appendErrorBody(e, name, message); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

func appendErrorBody(e *data.Encoder, name, message string) error {
	n := 1
	if message != "" {
		n = 2
	}
	if err := e.WriteMapHeader(n); err != nil {
		return err
	}
	if err := e.WriteKey("error"); err != nil {
		return err
	}
	if err := e.WriteString(name); err != nil {
		return err
	}
	if message != "" {
		if err := e.WriteKey("message"); err != nil {
			return err
		}
		return e.WriteString(message)
	}
	return nil
}

func encode(h Header, body any) ([]byte, error) {
	e := data.NewEncoder(make([]byte, 0, 256))
	if err := appendHeader(e, h); err != nil {
		return nil, err
	}
	if raw, ok := body.(RawBody); ok {
		if err := checkBody([]byte(raw)); err != nil {
			return nil, err
		}
		e.WriteRaw(raw)
	} else {
		if err := e.WriteValue(body); err != nil {
			return nil, err
		}
	}
	out := e.Bytes()
	if len(out) > MaxFrameSize {
		return nil, fmt.Errorf("stream: frame of %d bytes exceeds MaxFrameSize", len(out))
	}
	if _, _, err := DecodeFrame(out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkBody reports whether b is exactly one canonical DAG-CBOR map.
func checkBody(b []byte) error {
	d := data.NewDecoder(b)
	if d.PeekKind() != data.KindMap {
		return &FrameError{Reason: "body is not a map"}
	}
	if err := d.Skip(); err != nil {
		return &FrameError{Reason: "body", Err: err}
	}
	if err := d.Finish(); err != nil {
		return &FrameError{Reason: "trailing bytes after body", Err: err}
	}
	return nil
}

// DecodeFrame splits a frame into its header and its body. It is strict:
// the header must be a canonical DAG-CBOR map with an integer "op" and, for
// op 1, a non-empty string "t" (unknown header keys are skipped, as the
// spec asks); a body, itself one canonical DAG-CBOR map, must follow; and
// nothing may follow the body. The body aliases b. A frame with another op
// yields its header and an error wrapping ErrUnknownOp.
func DecodeFrame(b []byte) (Header, []byte, error) {
	var h Header
	if len(b) > MaxFrameSize {
		return h, nil, &FrameError{Reason: "frame exceeds MaxFrameSize"}
	}
	d := data.NewDecoder(b)
	if d.PeekKind() != data.KindMap {
		return h, nil, &FrameError{Reason: "header is not a map"}
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return h, nil, &FrameError{Reason: "header", Err: err}
	}
	var prev []byte
	hasOp, hasT := false, false
	for i := 0; i < n; i++ {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return h, nil, &FrameError{Reason: "header key", Err: err}
		}
		prev = k
		switch string(k) {
		case "op":
			if d.PeekKind() != data.KindInt {
				return h, nil, &FrameError{Reason: "header op is not an integer"}
			}
			if h.Op, err = d.ReadInt(); err != nil {
				return h, nil, &FrameError{Reason: "header op", Err: err}
			}
			hasOp = true
		case "t":
			if d.PeekKind() != data.KindString {
				return h, nil, &FrameError{Reason: "header t is not a string"}
			}
			if h.T, err = d.ReadString(); err != nil {
				return h, nil, &FrameError{Reason: "header t", Err: err}
			}
			hasT = true
		default:
			if err := d.Skip(); err != nil {
				return h, nil, &FrameError{Reason: "header value", Err: err}
			}
		}
	}
	if !hasOp {
		return h, nil, &FrameError{Reason: "header has no op"}
	}
	if hasT && h.T == "" {
		return h, nil, &FrameError{Reason: "header t is empty"}
	}
	if h.Op == OpMessage && !hasT {
		return h, nil, &FrameError{Reason: "message header has no t"}
	}
	body := b[d.Offset():]
	if len(body) == 0 {
		return h, nil, &FrameError{Reason: "no body"}
	}
	if err := checkBody(body); err != nil {
		return h, nil, err
	}
	if h.Op != OpMessage && h.Op != OpError {
		return h, body, fmt.Errorf("%w %d", ErrUnknownOp, h.Op)
	}
	return h, body, nil
}

// DecodeError reads an error frame's body. The "error" field is required;
// "message" is optional; other fields are ignored.
func DecodeError(body []byte) (*StreamError, error) {
	d := data.NewDecoder(body)
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, &FrameError{Reason: "error body", Err: err}
	}
	var se StreamError
	var prev []byte
	has := false
	for i := 0; i < n; i++ {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return nil, &FrameError{Reason: "error body key", Err: err}
		}
		prev = k
		switch {
		case string(k) == "error" && d.PeekKind() == data.KindString:
			se.Name, err = d.ReadString()
			has = err == nil
		case string(k) == "message" && d.PeekKind() == data.KindString:
			se.Message, err = d.ReadString()
		default:
			err = d.Skip()
		}
		if err != nil {
			return nil, &FrameError{Reason: "error body value", Err: err}
		}
	}
	if !has || se.Name == "" {
		return nil, &FrameError{Reason: "error body has no error name"}
	}
	return &se, nil
}

// BodyInt reads the integer field key (such as "seq") at the top level of
// a body map, without decoding the rest. ok is false when the field is
// absent or not an integer.
func BodyInt(body []byte, key string) (v int64, ok bool, err error) {
	d := data.NewDecoder(body)
	n, err := d.ReadMapHeader()
	if err != nil {
		return 0, false, err
	}
	var prev []byte
	for i := 0; i < n; i++ {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return 0, false, err
		}
		prev = k
		if string(k) == key {
			if d.PeekKind() != data.KindInt {
				return 0, false, nil
			}
			v, err := d.ReadInt()
			return v, err == nil, err
		}
		if err := d.Skip(); err != nil {
			return 0, false, err
		}
	}
	return 0, false, nil
}

// BodyString is BodyInt for a string field, such as "repo" or "did".
func BodyString(body []byte, key string) (string, bool, error) {
	d := data.NewDecoder(body)
	n, err := d.ReadMapHeader()
	if err != nil {
		return "", false, err
	}
	var prev []byte
	for i := 0; i < n; i++ {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return "", false, err
		}
		prev = k
		if string(k) == key {
			if d.PeekKind() != data.KindString {
				return "", false, nil
			}
			s, err := d.ReadString()
			return s, err == nil, err
		}
		if err := d.Skip(); err != nil {
			return "", false, err
		}
	}
	return "", false, nil
}
