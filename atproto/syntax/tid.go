package syntax

import (
	"strconv"
	"sync/atomic"
	"time"
)

// TIDLength is the fixed length of a TID string: 13 characters
// (atproto.com/specs/tid).
const TIDLength = 13

// tidAlphabet is the base32-sortable alphabet TIDs are written in.
const tidAlphabet = "234567abcdefghijklmnopqrstuvwxyz"

const (
	tidClockBits  = 10
	tidClockMask  = 1<<tidClockBits - 1
	tidMicrosMask = 1<<53 - 1
)

// tidDecode maps a byte to its base32-sortable value, or 0xff.
var tidDecode = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(tidAlphabet); i++ {
		t[tidAlphabet[i]] = byte(i)
	}
	return t
}()

// TID is a timestamp identifier: a 64-bit integer (53 bits of microseconds
// since the UNIX epoch, then a 10-bit clock identifier) written as 13
// base32-sortable characters, such as "3jzfcijpj2z2a".
type TID string

// ParseTID checks s against the TID syntax: exactly 13 characters from
// "234567abcdefghijklmnopqrstuvwxyz", the first one of "234567abcdefghij".
func ParseTID(s string) (TID, error) {
	if r := tidReason(s); r != "" {
		return "", newError("TID", s, r)
	}
	return TID(s), nil
}

// tidReason returns why s is not a TID, or "" when it is one.
func tidReason(s string) string {
	if len(s) != TIDLength {
		return "length is " + strconv.Itoa(len(s)) + ", not 13"
	}
	for i := 0; i < TIDLength; i++ {
		if tidDecode[s[i]] == 0xff {
			return badByte("TID", s[i], i) + "; TIDs use base32-sortable (234567a-z)"
		}
	}
	if tidDecode[s[0]] >= 16 {
		return "first character " + describeByte(s[0]) + " would overflow 64 bits; it must be one of 234567abcdefghij"
	}
	return ""
}

// NewTID builds a TID from a timestamp in microseconds since the UNIX epoch
// and a clock identifier. Only the low 53 bits of unixMicros and the low 10
// bits of clockID are used.
func NewTID(unixMicros int64, clockID uint) TID {
	return tidFromInteger(uint64(unixMicros)&tidMicrosMask<<tidClockBits | uint64(clockID)&tidClockMask)
}

// NewTIDNow builds a TID from the current time and clockID. Unlike
// TIDClock.Next, successive calls may repeat; use a TIDClock to get a
// strictly increasing sequence.
func NewTIDNow(clockID uint) TID {
	return NewTID(time.Now().UnixMicro(), clockID)
}

// tidFromInteger writes v as a TID.
func tidFromInteger(v uint64) TID {
	var b [TIDLength]byte
	for i := TIDLength - 1; i >= 0; i-- {
		b[i] = tidAlphabet[v&31]
		v >>= 5
	}
	return TID(b[:])
}

// String returns the TID.
func (t TID) String() string { return string(t) }

// Integer returns the 64-bit integer the TID encodes. It is meaningful only
// for a TID that came from ParseTID or NewTID.
func (t TID) Integer() uint64 {
	var v uint64
	for i := 0; i < len(t) && i < TIDLength; i++ {
		v = v<<5 | uint64(tidDecode[t[i]]&31)
	}
	return v
}

// Time returns the timestamp part of the TID, in UTC.
func (t TID) Time() time.Time {
	micros := int64(t.Integer() >> tidClockBits & tidMicrosMask)
	return time.UnixMicro(micros).UTC()
}

// ClockID returns the 10-bit clock identifier part of the TID.
func (t TID) ClockID() uint { return uint(t.Integer() & tidClockMask) }

// TIDClock issues TIDs that strictly increase, even when called from many
// goroutines at once or when the wall clock steps backwards: it remembers
// the last microsecond timestamp it used and never reuses or goes below it.
type TIDClock struct {
	clockID uint
	last    atomic.Int64
	now     func() int64 // time source in microseconds for tests; nil means the wall clock
}

// NewTIDClock returns a clock that stamps its TIDs with clockID (only the
// low 10 bits are used, so 0..1023).
func NewTIDClock(clockID uint) *TIDClock {
	return &TIDClock{clockID: clockID & tidClockMask}
}

// Next returns a TID greater than every TID this clock returned before. It
// is safe for concurrent use.
func (c *TIDClock) Next() TID {
	var now int64
	if c.now != nil {
		now = c.now()
	} else {
		now = time.Now().UnixMicro()
	}
	for {
		last := c.last.Load()
		next := now
		if next <= last {
			next = last + 1
		}
		if c.last.CompareAndSwap(last, next) {
			return NewTID(next, c.clockID)
		}
	}
}

// ClockID returns the clock identifier this clock stamps on its TIDs.
func (c *TIDClock) ClockID() uint { return c.clockID }
