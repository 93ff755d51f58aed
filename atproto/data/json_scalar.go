package data

// This file holds the scalar readers of the JSON scanner: strings (with
// their escapes and UTF-8 checks) and numbers.

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonStrSafe marks the ASCII bytes a string may hold as they are.
var jsonStrSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string starting at the opening quote. Without escapes, the
// result is a slice of the input copy.
func (d *jsonDecoder) str() (string, error) {
	start := d.pos + 1
	src := d.src
	i := start
	high := false
	for i < len(src) {
		c := src[i]
		if jsonStrSafe[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			high = true
			i++
			continue
		}
		if c == '"' {
			s := src[start:i]
			if high && !utf8.ValidString(s) {
				d.pos = start + jsonBadUTF8At(s)
				return "", d.syntaxErr("string is not valid UTF-8")
			}
			d.pos = i + 1
			return s, nil
		}
		if c == '\\' {
			return d.strEscaped(start, i)
		}
		d.pos = i
		return "", d.syntaxErr(fmt.Sprintf("control character 0x%02x in string", c))
	}
	d.pos = len(src)
	return "", d.syntaxErr("unexpected end of input in string")
}

func jsonBadUTF8At(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return 0
}

// strEscaped finishes a string with escapes: start is its first byte and i
// the first backslash.
func (d *jsonDecoder) strEscaped(start, i int) (string, error) {
	src := d.src
	buf := d.scratch[:0]
	runStart := start // the plain bytes before the escape are checked below
	for i < len(src) {
		c := src[i]
		if jsonStrSafe[c] || c >= utf8.RuneSelf {
			i++
			continue
		}
		if c == '"' {
			if !utf8.ValidString(src[runStart:i]) {
				d.pos = runStart + jsonBadUTF8At(src[runStart:i])
				return "", d.syntaxErr("string is not valid UTF-8")
			}
			buf = append(buf, src[runStart:i]...)
			d.scratch = buf
			d.pos = i + 1
			return string(buf), nil
		}
		if c != '\\' {
			d.pos = i
			return "", d.syntaxErr(fmt.Sprintf("control character 0x%02x in string", c))
		}
		// Flush the plain run before the escape, checking its UTF-8.
		if !utf8.ValidString(src[runStart:i]) {
			d.pos = runStart + jsonBadUTF8At(src[runStart:i])
			return "", d.syntaxErr("string is not valid UTF-8")
		}
		buf = append(buf, src[runStart:i]...)
		if i+1 >= len(src) {
			d.pos = len(src)
			return "", d.syntaxErr("unexpected end of input in string")
		}
		esc := src[i+1]
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
			i += 2
		case 'b':
			buf = append(buf, '\b')
			i += 2
		case 'f':
			buf = append(buf, '\f')
			i += 2
		case 'n':
			buf = append(buf, '\n')
			i += 2
		case 'r':
			buf = append(buf, '\r')
			i += 2
		case 't':
			buf = append(buf, '\t')
			i += 2
		case 'u':
			r, ok := jsonHex4(src, i+2)
			if !ok {
				d.pos = i
				return "", d.syntaxErr("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 {
					d.pos = i
					return "", d.syntaxErr(fmt.Sprintf("lone low surrogate \\u%04x in string", r))
				}
				lo, ok := rune(0), false
				if i+7 < len(src) && src[i+6] == '\\' && src[i+7] == 'u' {
					lo, ok = jsonHex4(src, i+8)
				}
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					d.pos = i
					return "", d.syntaxErr(fmt.Sprintf("lone high surrogate \\u%04x in string", r))
				}
				r = utf16.DecodeRune(r, lo)
				i += 6
			}
			buf = utf8.AppendRune(buf, r)
			i += 6
		default:
			d.pos = i
			return "", d.syntaxErr(fmt.Sprintf("invalid escape \\%c in string", esc))
		}
		runStart = i
	}
	d.scratch = buf
	d.pos = len(src)
	return "", d.syntaxErr("unexpected end of input in string")
}

// jsonHex4 reads four hex digits at s[i:].
func jsonHex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a JSON number that must have an integer value within int64.
func (d *jsonDecoder) number() (any, error) {
	src := d.src
	start := d.pos
	i := start
	neg := false
	if src[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	if i >= len(src) || src[i] < '0' || src[i] > '9' {
		d.pos = i
		return nil, d.syntaxErr("invalid number: expecting a digit")
	}
	if src[i] == '0' {
		i++
		if i < len(src) && '0' <= src[i] && src[i] <= '9' {
			d.pos = i
			return nil, d.syntaxErr("invalid number: leading zero")
		}
	} else {
		for i < len(src) && '0' <= src[i] && src[i] <= '9' {
			i++
		}
	}
	intEnd := i
	if i >= len(src) || (src[i] != '.' && src[i] != 'e' && src[i] != 'E') {
		// The common case: a plain integer.
		d.pos = i
		digits := src[intStart:intEnd]
		if len(digits) <= 18 { // below 10^18: cannot overflow
			var u int64
			for j := 0; j < len(digits); j++ {
				u = u*10 + int64(digits[j]-'0')
			}
			if neg {
				u = -u
			}
			return u, nil
		}
		v, ok := jsonDigitsToInt64(digits, 0, neg)
		if !ok {
			return nil, d.errAt(start, fmt.Sprintf("integer %s is outside the int64 range", src[start:i]))
		}
		return v, nil
	}

	// A fraction or an exponent: work out the exact value from the digits.
	fracStart, fracEnd := i, i
	if src[i] == '.' {
		i++
		fracStart = i
		for i < len(src) && '0' <= src[i] && src[i] <= '9' {
			i++
		}
		fracEnd = i
		if fracEnd == fracStart {
			d.pos = i
			return nil, d.syntaxErr("invalid number: expecting a digit after '.'")
		}
	}
	exp := 0
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		expNeg := false
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			expNeg = src[i] == '-'
			i++
		}
		expStart := i
		for i < len(src) && '0' <= src[i] && src[i] <= '9' {
			if exp < 1_000_000 { // saturate; the value is out of range anyway
				exp = exp*10 + int(src[i]-'0')
			}
			i++
		}
		if i == expStart {
			d.pos = i
			return nil, d.syntaxErr("invalid number: expecting a digit in exponent")
		}
		if expNeg {
			exp = -exp
		}
	}
	d.pos = i
	text := src[start:i]

	// The value is mant × 10^exp, mant being the integer and fraction
	// digits run together. Trim zeros at both ends of mant.
	mant := src[intStart:intEnd] + src[fracStart:fracEnd] // allocates only on this rare path
	exp -= fracEnd - fracStart
	mant = strings.TrimLeft(mant, "0")
	if mant == "" {
		return int64(0), nil
	}
	for len(mant) > 0 && mant[len(mant)-1] == '0' {
		mant = mant[:len(mant)-1]
		exp++
	}
	if exp < 0 {
		return nil, d.errAt(start, fmt.Sprintf("number %s is not an integer (the data model has no floats)", text))
	}
	if len(mant)+exp > 19 {
		return nil, d.errAt(start, fmt.Sprintf("integer %s is outside the int64 range", text))
	}
	v, ok := jsonDigitsToInt64(mant, exp, neg)
	if !ok {
		return nil, d.errAt(start, fmt.Sprintf("integer %s is outside the int64 range", text))
	}
	return v, nil
}

// jsonDigitsToInt64 computes ±digits×10^zeros, reporting overflow of int64.
func jsonDigitsToInt64(digits string, zeros int, neg bool) (int64, bool) {
	if len(digits)+zeros > 19 {
		return 0, false
	}
	var u uint64
	for j := 0; j < len(digits); j++ {
		u = u*10 + uint64(digits[j]-'0')
	}
	for ; zeros > 0; zeros-- {
		u *= 10
	}
	// 19 digits fit in a uint64 (< 10^19 < 2^64), so u is exact here.
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return int64(-u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}
