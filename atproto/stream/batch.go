package stream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Sending to a consumer costs a system call per write, more than
// everything else a frame costs. So the server writes each consumer's
// event messages itself, into the consumer's connection wrapped in a
// batchConn, which, between hold and release, gathers what is written in
// memory and sends it in one write at release: a consumer with several
// events waiting gets all of them (up to maxBatchBytes) in one system call,
// and one that keeps up gets each event as soon as it is published. The
// WebSocket library keeps the handshake, the reading side and the control
// frames (ping, close), which it writes through the same batchConn; a
// control frame is always written by the library in one Write call, so it
// never lands inside an event message.

// maxBatchBytes bounds what one batch gathers; a message that would go
// past it sends what was gathered first.
const maxBatchBytes = 64 << 10

// maxBatchEvents bounds the events sent in one batch, so that a consumer
// with a long queue still flushes regularly.
const maxBatchEvents = 256

// batchBufs recycles batch buffers, so that an idle consumer holds none.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxBatchBytes); return &b }}

// batchConn is a consumer's connection under the WebSocket library.
//
// Writes are bounded by a write deadline that is moved forward only once
// half of timeout has passed since it was set, rather than before each
// write: every write, and every batch, must complete between timeout/2 and
// timeout after it starts.
type batchConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	deadline time.Time
	holding  bool
	buf      *[]byte // from batchBufs while holding
}

// refreshDeadline makes sure the deadline is at least timeout/2 away.
func (c *batchConn) refreshDeadline() error {
	now := time.Now()
	if c.deadline.Sub(now) >= c.timeout/2 {
		return nil
	}
	c.deadline = now.Add(c.timeout)
	return c.Conn.SetWriteDeadline(c.deadline)
}

// Write implements net.Conn for the WebSocket library: while held, p is
// gathered (copied, so the caller may reuse it); otherwise it goes
// straight to the connection.
func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		if len(*c.buf)+len(p) <= maxBatchBytes {
			*c.buf = append(*c.buf, p...)
			return len(p), nil
		}
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	} else if err := c.refreshDeadline(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// hold starts gathering writes.
func (c *batchConn) hold() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		return errors.New("stream: batch already held")
	}
	if err := c.refreshDeadline(); err != nil {
		return err
	}
	c.holding = true
	c.buf = batchBufs.Get().(*[]byte)
	return nil
}

// release sends what was gathered and stops gathering.
func (c *batchConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding {
		return nil
	}
	err := c.flushLocked()
	c.holding = false
	*c.buf = (*c.buf)[:0]
	batchBufs.Put(c.buf)
	c.buf = nil
	return err
}

func (c *batchConn) flushLocked() error {
	b := *c.buf
	*c.buf = b[:0]
	return writeFull(c.Conn, b)
}

func writeFull(w net.Conn, b []byte) error {
	for len(b) > 0 {
		n, err := w.Write(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// maxMessageHeader is the longest header of an unmasked WebSocket frame.
const maxMessageHeader = 10

// appendMessageHeader appends the header of an unmasked, final, binary
// WebSocket frame (RFC 6455, section 5.2) of n payload bytes.
func appendMessageHeader(b []byte, n int) []byte {
	const finBinary = 0x80 | 0x2
	switch {
	case n <= 125:
		return append(b, finBinary, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, finBinary, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, finBinary, 127), uint64(n))
	}
}

// writeMessage writes payload as one binary message, in the batch held.
func (c *batchConn) writeMessage(payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holding {
		return errors.New("stream: message written outside a batch")
	}
	if len(*c.buf)+maxMessageHeader+len(payload) > maxBatchBytes {
		if err := c.flushLocked(); err != nil {
			return err
		}
		if maxMessageHeader+len(payload) > maxBatchBytes {
			// Too large to gather: its header, then the payload
			// itself, uncopied.
			var h [maxMessageHeader]byte
			if err := writeFull(c.Conn, appendMessageHeader(h[:0], len(payload))); err != nil {
				return err
			}
			return writeFull(c.Conn, payload)
		}
	}
	*c.buf = append(appendMessageHeader(*c.buf, len(payload)), payload...)
	return nil
}

// batchResponse is the http.ResponseWriter given to the WebSocket
// library's Accept: its Hijack wraps the connection in a batchConn.
type batchResponse struct {
	http.ResponseWriter
	timeout time.Duration
	conn    *batchConn // set by Hijack
}

// Hijack implements http.Hijacker.
func (w *batchResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Whatever the HTTP server still buffered (the handshake's answer)
	// goes out before the stream.
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: nc, timeout: w.timeout}
	brw.Writer.Reset(w.conn) // its buffer, now empty, is reused
	return w.conn, brw, nil
}

// Unwrap lets http.ResponseController reach the server's ResponseWriter.
func (w *batchResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }
