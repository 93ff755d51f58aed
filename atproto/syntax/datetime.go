package syntax

import (
	"fmt"
	"time"
)

// DatetimeMaxLength bounds the length of a datetime string. The lexicon
// specification sets no limit (fractional seconds may have any number of
// digits); this defensive bound is far above any real timestamp.
const DatetimeMaxLength = 64

// Datetime is a timestamp in the strict atproto profile of RFC 3339 (the
// Lexicon "datetime" format), such as "1985-04-12T23:20:50.123Z".
type Datetime string

// dtParts holds the fields of a datetime string.
type dtParts struct {
	year, month, day  int
	hour, min, sec    int
	nanos, fracDigits int
	offset            int // minutes east of UTC
}

// ParseDatetime checks s against the strict atproto datetime profile:
// YYYY-MM-DDTHH:MM:SS, optional fractional seconds with at least one digit,
// then 'Z' or a ±HH:MM offset other than -00:00. Upper-case 'T' and 'Z' are
// required. The date and time must exist (no month 0, February 30th, hour
// 24 or leap second 60), and the instant must not fall before year 0 once
// converted to UTC.
func ParseDatetime(s string) (Datetime, error) {
	var p dtParts
	if r := parseDatetimeStrict(s, &p); r != "" {
		return "", newError("datetime", s, r)
	}
	return Datetime(s), nil
}

// digits2 reads two ASCII digits at s[i:i+2], returning -1 when they are
// not digits. The caller checks the length.
func digits2(s string, i int) int {
	a, b := s[i]-'0', s[i+1]-'0'
	if a > 9 || b > 9 {
		return -1
	}
	return int(a)*10 + int(b)
}

// expectAt describes a layout mismatch at offset i.
func expectAt(s string, i int, want string) string {
	if i >= len(s) {
		return fmt.Sprintf("ends at offset %d where %s was expected", i, want)
	}
	return fmt.Sprintf("expected %s at offset %d, found %s", want, i, describeByte(s[i]))
}

// parseDatetimeStrict fills p from s and returns "" when s is a strict
// datetime, or the reason it is not.
func parseDatetimeStrict(s string, p *dtParts) string {
	if len(s) > DatetimeMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), DatetimeMaxLength)
	}
	// Fixed layout up to the seconds: YYYY-MM-DDTHH:MM:SS (19 bytes).
	if len(s) < 20 {
		if len(s) >= 10 && len(s) <= 16 && s[4] == '-' && s[7] == '-' {
			if len(s) == 10 {
				return "missing time; a full date and time with timezone is required"
			}
			if len(s) > 13 && s[13] == ':' && (len(s) <= 16 || s[16] != ':') {
				return "missing seconds; whole seconds are required"
			}
		}
	}
	for i := 0; i < 19; i++ {
		var want string
		switch i {
		case 4, 7:
			want = "'-'"
		case 10:
			want = "'T'"
		case 13, 16:
			want = "':'"
		default:
			if i < len(s) && isDigit(s[i]) {
				continue
			}
			return expectAt(s, i, "a digit")
		}
		if i < len(s) && s[i] == want[1] {
			continue
		}
		if i == 10 && i < len(s) {
			switch s[i] {
			case 't':
				return "date and time must be separated by upper-case 'T', not 't'"
			case ' ', '_':
				return fmt.Sprintf("date and time must be separated by 'T', not %s", describeByte(s[i]))
			}
		}
		if i < len(s) && isDigit(s[i]) {
			return fmt.Sprintf("too many digits before offset %d; each field has a fixed width", i)
		}
		return expectAt(s, i, want)
	}
	p.year = int(s[0]-'0')*1000 + int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
	p.month = digits2(s, 5)
	p.day = digits2(s, 8)
	p.hour = digits2(s, 11)
	p.min = digits2(s, 14)
	p.sec = digits2(s, 17)
	i := 19
	p.nanos, p.fracDigits = 0, 0
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			if i-start < 9 {
				p.nanos = p.nanos*10 + int(s[i]-'0')
			}
			i++
		}
		p.fracDigits = i - start
		if p.fracDigits == 0 {
			return expectAt(s, i, "a digit after '.'")
		}
		for k := p.fracDigits; k < 9; k++ {
			p.nanos *= 10
		}
	}
	if i == len(s) {
		return "missing timezone; 'Z' or a ±HH:MM offset is required"
	}
	switch c := s[i]; c {
	case 'Z':
		p.offset = 0
		i++
	case '+', '-':
		if len(s)-i != 6 || s[i+3] != ':' {
			return fmt.Sprintf("timezone offset %q must have the form ±HH:MM", s[i:])
		}
		h, m := digits2(s, i+1), digits2(s, i+4)
		if h < 0 || m < 0 {
			return fmt.Sprintf("timezone offset %q must have the form ±HH:MM", s[i:])
		}
		if h > 23 || m > 59 {
			return fmt.Sprintf("timezone offset %q is out of range", s[i:])
		}
		if c == '-' && h == 0 && m == 0 {
			return "timezone offset \"-00:00\" is not allowed; use 'Z' or \"+00:00\""
		}
		p.offset = h*60 + m
		if c == '-' {
			p.offset = -p.offset
		}
		i += 6
	case 'z':
		return "timezone must be upper-case 'Z', not 'z'"
	default:
		if isDigit(c) && p.fracDigits == 0 {
			return fmt.Sprintf("too many digits before offset %d; each field has a fixed width", i)
		}
		return expectAt(s, i, "'Z', '+', '-' or '.'")
	}
	if i != len(s) {
		return fmt.Sprintf("unexpected %s at offset %d after the timezone", describeByte(s[i]), i)
	}
	return p.semanticReason()
}

// daysIn returns the number of days in month of year (proleptic
// Gregorian calendar).
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// semanticReason checks that the fields name a real instant at or after
// 0000-01-01T00:00:00Z.
func (p *dtParts) semanticReason() string {
	switch {
	case p.month < 1 || p.month > 12:
		return fmt.Sprintf("month %02d does not exist", p.month)
	case p.day < 1 || p.day > daysIn(p.year, p.month):
		return fmt.Sprintf("day %02d does not exist in %04d-%02d", p.day, p.year, p.month)
	case p.hour > 23:
		return fmt.Sprintf("hour %02d is out of range (00-23)", p.hour)
	case p.min > 59:
		return fmt.Sprintf("minute %02d is out of range (00-59)", p.min)
	case p.sec > 59:
		return fmt.Sprintf("second %02d is out of range (00-59); leap seconds are not supported", p.sec)
	}
	if p.year == 0 && p.month == 1 && p.day == 1 && p.hour*60+p.min < p.offset {
		return "converted to UTC the datetime falls before year 0"
	}
	return ""
}

// time converts the fields to a UTC time.Time.
func (p *dtParts) time() time.Time {
	t := time.Date(p.year, time.Month(p.month), p.day, p.hour, p.min, p.sec, p.nanos, time.UTC)
	if p.offset != 0 {
		t = t.Add(-time.Duration(p.offset) * time.Minute)
	}
	return t
}

// String returns the datetime string.
func (d Datetime) String() string { return string(d) }

// Time returns the instant the datetime names, in UTC. Digits of
// fractional seconds past nanoseconds are dropped. It returns the zero
// time for a Datetime that did not come from this package.
func (d Datetime) Time() time.Time {
	var p dtParts
	if parseDatetimeStrict(string(d), &p) != "" {
		return time.Time{}
	}
	return p.time()
}

// Bounds of what the strict syntax can express, used to clamp in
// DatetimeFromTime.
var (
	minDatetime = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDatetime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// DatetimeFromTime formats t in the preferred strict form: UTC, millisecond
// precision and a trailing 'Z', such as "2024-05-01T12:00:00.000Z". Times
// before year 0 or after year 9999 are clamped to the nearest instant the
// format can hold.
func DatetimeFromTime(t time.Time) Datetime {
	return formatDatetime(t, 3)
}

// DatetimeNow returns the current time as a strict Datetime with
// millisecond precision.
func DatetimeNow() Datetime {
	return formatDatetime(time.Now(), 3)
}

// formatDatetime writes t in UTC with the given number of fractional digits
// (3, 6 or 9).
func formatDatetime(t time.Time, frac int) Datetime {
	t = t.UTC()
	if t.Before(minDatetime) {
		t = minDatetime
	} else if t.After(maxDatetime) {
		t = maxDatetime
	}
	layout := "2006-01-02T15:04:05.000Z"
	switch frac {
	case 6:
		layout = "2006-01-02T15:04:05.000000Z"
	case 9:
		layout = "2006-01-02T15:04:05.000000000Z"
	}
	var buf [40]byte
	return Datetime(t.AppendFormat(buf[:0], layout))
}

// ParseDatetimeLenient reads datetimes written by older or looser software
// and returns them in the strict form. Strict input is returned unchanged.
// Otherwise it also accepts a lower-case 't' or a space between date and
// time, missing seconds, ',' before fractional seconds, a missing timezone
// (taken as UTC), lower-case 'z', "-00:00", and offsets written ±HH or
// ±HHMM. Such input is converted to UTC and written with 'Z' and
// millisecond precision, or microsecond or nanosecond precision when the
// input had more fractional digits. The date and time must still exist and
// fall within years 0 to 9999 in UTC.
func ParseDatetimeLenient(s string) (Datetime, error) {
	var p dtParts
	strictReason := parseDatetimeStrict(s, &p)
	if strictReason == "" {
		return Datetime(s), nil
	}
	if r := parseDatetimeLoose(s, &p); r != "" {
		return "", newError("datetime", s, r)
	}
	t := p.time()
	if t.Before(minDatetime) || t.After(maxDatetime) {
		return "", newError("datetime", s, "converted to UTC the datetime falls outside years 0000-9999")
	}
	frac := 3
	if p.fracDigits > 6 {
		frac = 9
	} else if p.fracDigits > 3 {
		frac = 6
	}
	return formatDatetime(t, frac), nil
}

// parseDatetimeLoose fills p from the lenient grammar and returns "" on
// success.
func parseDatetimeLoose(s string, p *dtParts) string {
	if len(s) > DatetimeMaxLength {
		return fmt.Sprintf("length %d exceeds the maximum of %d", len(s), DatetimeMaxLength)
	}
	*p = dtParts{}
	i := 0
	num := func(width int, what string) (int, string) {
		if i+width > len(s) {
			return 0, fmt.Sprintf("ends before the %s", what)
		}
		v := 0
		for k := 0; k < width; k++ {
			c := s[i+k]
			if !isDigit(c) {
				return 0, fmt.Sprintf("%s: expected a digit at offset %d, found %s", what, i+k, describeByte(c))
			}
			v = v*10 + int(c-'0')
		}
		i += width
		return v, ""
	}
	sep := func(ok func(byte) bool, what string) string {
		if i >= len(s) || !ok(s[i]) {
			return expectAt(s, i, what)
		}
		i++
		return ""
	}
	isDash := func(c byte) bool { return c == '-' }
	isColon := func(c byte) bool { return c == ':' }
	var r string
	if p.year, r = num(4, "year"); r != "" {
		return r
	}
	if r = sep(isDash, "'-'"); r != "" {
		return r
	}
	if p.month, r = num(2, "month"); r != "" {
		return r
	}
	if r = sep(isDash, "'-'"); r != "" {
		return r
	}
	if p.day, r = num(2, "day"); r != "" {
		return r
	}
	if r = sep(func(c byte) bool { return c == 'T' || c == 't' || c == ' ' }, "'T' or a space"); r != "" {
		return r
	}
	if p.hour, r = num(2, "hour"); r != "" {
		return r
	}
	if r = sep(isColon, "':'"); r != "" {
		return r
	}
	if p.min, r = num(2, "minute"); r != "" {
		return r
	}
	if i < len(s) && s[i] == ':' {
		i++
		if p.sec, r = num(2, "second"); r != "" {
			return r
		}
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			i++
			start := i
			for i < len(s) && isDigit(s[i]) {
				if i-start < 9 {
					p.nanos = p.nanos*10 + int(s[i]-'0')
				}
				i++
			}
			p.fracDigits = i - start
			if p.fracDigits == 0 {
				return expectAt(s, i, "a digit after the decimal mark")
			}
			for k := p.fracDigits; k < 9; k++ {
				p.nanos *= 10
			}
		}
	}
	if i < len(s) {
		switch c := s[i]; c {
		case 'Z', 'z':
			i++
		case '+', '-':
			i++
			h, r := num(2, "timezone hour")
			if r != "" {
				return r
			}
			m := 0
			if i < len(s) {
				if s[i] == ':' {
					i++
				}
				if m, r = num(2, "timezone minute"); r != "" {
					return r
				}
			}
			if h > 23 || m > 59 {
				return fmt.Sprintf("timezone offset %q is out of range", s[i-2:])
			}
			p.offset = h*60 + m
			if c == '-' {
				p.offset = -p.offset
			}
		default:
			return expectAt(s, i, "a timezone")
		}
	}
	if i != len(s) {
		return fmt.Sprintf("unexpected %s at offset %d after the timezone", describeByte(s[i]), i)
	}
	return p.semanticReason()
}
