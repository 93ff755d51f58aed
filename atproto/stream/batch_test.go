package stream

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// readN reads n bytes from c in the background.
func readN(c net.Conn, n int) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			b = nil
		}
		out <- b
	}()
	return out
}

func TestBatchConnGathersUntilRelease(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	bc := &batchConn{Conn: server, timeout: testTimeout}
	defer bc.Close()
	if err := bc.hold(); err != nil {
		t.Fatal(err)
	}
	if err := bc.hold(); err == nil {
		t.Error("a second hold succeeded")
	}
	var want []byte
	for _, s := range []string{"first ", "second ", "third"} {
		// net.Pipe has no buffer: a write that reached it would block
		// here, as nobody reads yet.
		if n, err := bc.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
		want = append(want, s...)
	}
	got := readN(client, len(want))
	if err := bc.release(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("read %q, want %q", b, want)
	}
	if err := bc.release(); err != nil {
		t.Errorf("a release without hold: %v", err)
	}
	// Not held, a write goes straight through.
	got = readN(client, 4)
	if _, err := bc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "ping" {
		t.Errorf("read %q", b)
	}
}

func TestBatchConnFlushesWhenFull(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	bc := &batchConn{Conn: server, timeout: testTimeout}
	defer bc.Close()
	big := bytes.Repeat([]byte{'x'}, maxBatchBytes-10)
	tail := bytes.Repeat([]byte{'y'}, 100)
	got := readN(client, len(big)+len(tail))
	if err := bc.hold(); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Write(big); err != nil {
		t.Fatal(err)
	}
	// This one does not fit: what was gathered goes first, then it.
	if _, err := bc.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := bc.release(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, append(big, tail...)) {
		t.Errorf("read %d bytes, not the %d written in order", len(b), len(big)+len(tail))
	}
}

func TestBatchConnReleaseFailsPastDeadline(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	bc := &batchConn{Conn: server, timeout: 20 * time.Millisecond}
	defer bc.Close()
	if err := bc.hold(); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	if err := bc.release(); err == nil {
		t.Error("release past the deadline succeeded")
	}
}

func TestAppendMessageHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x82, 0}},
		{125, []byte{0x82, 125}},
		{126, []byte{0x82, 126, 0, 126}},
		{0xffff, []byte{0x82, 126, 0xff, 0xff}},
		{0x10000, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := appendMessageHeader(nil, tc.n); !bytes.Equal(got, tc.want) {
			t.Errorf("header of %d bytes = %x, want %x", tc.n, got, tc.want)
		}
	}
}

func TestBatchConnWriteMessage(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	bc := &batchConn{Conn: server, timeout: testTimeout}
	defer bc.Close()
	if err := bc.writeMessage([]byte("x")); err == nil {
		t.Error("a message outside a batch was accepted")
	}
	small := []byte("hello")
	large := bytes.Repeat([]byte{'z'}, maxBatchBytes+1)
	var want []byte
	want = append(appendMessageHeader(want, len(small)), small...)
	want = append(appendMessageHeader(want, len(large)), large...)
	want = append(appendMessageHeader(want, len(small)), small...)
	got := readN(client, len(want))
	if err := bc.hold(); err != nil {
		t.Fatal(err)
	}
	for _, m := range [][]byte{small, large, small} {
		if err := bc.writeMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := bc.release(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Errorf("read %d bytes, not the %d bytes of the three messages in order", len(b), len(want))
	}
}
