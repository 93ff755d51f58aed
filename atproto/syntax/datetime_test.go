package syntax

import (
	"strings"
	"testing"
	"time"
)

func TestDatetimeTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"1985-04-12T23:20:50.123Z", time.Date(1985, 4, 12, 23, 20, 50, 123000000, time.UTC)},
		{"1985-04-12T23:20:50Z", time.Date(1985, 4, 12, 23, 20, 50, 0, time.UTC)},
		{"1985-04-12T23:20:50.123-07:00", time.Date(1985, 4, 13, 6, 20, 50, 123000000, time.UTC)},
		{"1985-04-12T23:20:50.1235678912345Z", time.Date(1985, 4, 12, 23, 20, 50, 123567891, time.UTC)},
		{"2024-02-29T00:00:00+01:45", time.Date(2024, 2, 28, 22, 15, 0, 0, time.UTC)},
		{"0000-01-01T00:00:00.000Z", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0000-01-01T01:00:00+01:00", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		d, err := ParseDatetime(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := d.Time(); !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("%q: Time = %v, want %v", tt.in, got, tt.want)
		}
	}
	if !Datetime("garbage").Time().IsZero() {
		t.Error("Time of an invalid Datetime is not zero")
	}
}

func TestDatetimeCalendar(t *testing.T) {
	good := []string{"2024-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "1985-04-30T23:59:59Z", "9999-12-31T23:59:59.999-23:59"}
	for _, s := range good {
		if _, err := ParseDatetime(s); err != nil {
			t.Errorf("%q rejected: %v", s, err)
		}
	}
	bad := []string{
		"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "1985-04-31T00:00:00Z", "1985-04-12T24:00:00Z",
		"1985-04-12T23:59:60Z", "1985-04-12T23:20:50+24:00", "1985-04-12T23:20:50+01:60",
		"0000-01-01T00:59:59+01:00", "1985-04-12T23:20:50.123Z" + strings.Repeat("0", DatetimeMaxLength),
	}
	for _, s := range bad {
		if _, err := ParseDatetime(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestDatetimeLenient(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1985-04-12T23:20:50.123Z", "1985-04-12T23:20:50.123Z"},
		{"1985-04-12T23:20:50.123", "1985-04-12T23:20:50.123Z"},
		{"1985-04-12T23:20:50", "1985-04-12T23:20:50.000Z"},
		{"1985-04-12t23:20:50.123z", "1985-04-12T23:20:50.123Z"},
		{"1985-04-12 23:20:50.123Z", "1985-04-12T23:20:50.123Z"},
		{"1985-04-12T23:20:50.123-00:00", "1985-04-12T23:20:50.123Z"},
		{"1985-04-12T23:20:50.123+0100", "1985-04-12T22:20:50.123Z"},
		{"1985-04-12T23:20:50.123+01", "1985-04-12T22:20:50.123Z"},
		{"1985-04-12 23:20:50.123456-07:00", "1985-04-13T06:20:50.123456Z"},
		{"1985-04-12T23:20:50.123456-07:00", "1985-04-12T23:20:50.123456-07:00"},
		{"1985-04-12t23:20:50.1234567891Z", "1985-04-12T23:20:50.123456789Z"},
		{"1985-04-12T23:20Z", "1985-04-12T23:20:00.000Z"},
		{"1985-04-12T23:20:50,5Z", "1985-04-12T23:20:50.500Z"},
	}
	for _, tt := range tests {
		d, err := ParseDatetimeLenient(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if d.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, d, tt.want)
		}
		if _, err := ParseDatetime(d.String()); err != nil {
			t.Errorf("%q: lenient output %q is not strict: %v", tt.in, d, err)
		}
	}
	for _, bad := range []string{"", "yesterday", "1985-04-12", "1985-02-30T00:00:00", "1985-04-12T23:20:50+25:00", "0000-01-01T00:00:00+01:00", "1985-04-12T23:20:50 junk"} {
		if d, err := ParseDatetimeLenient(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, d)
		}
	}
}

func TestDatetimeFromTime(t *testing.T) {
	loc := time.FixedZone("x", -7*3600)
	in := time.Date(2024, 5, 1, 5, 6, 7, 891234567, loc)
	d := DatetimeFromTime(in)
	if d != "2024-05-01T12:06:07.891Z" {
		t.Errorf("got %q", d)
	}
	if _, err := ParseDatetime(d.String()); err != nil {
		t.Error(err)
	}
	if got := DatetimeFromTime(time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)); got != "0000-01-01T00:00:00.000Z" {
		t.Errorf("early clamp: %q", got)
	}
	if got := DatetimeFromTime(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)); got != "9999-12-31T23:59:59.999Z" {
		t.Errorf("late clamp: %q", got)
	}
	now := DatetimeNow()
	if _, err := ParseDatetime(now.String()); err != nil {
		t.Errorf("DatetimeNow %q: %v", now, err)
	}
	if !strings.HasSuffix(now.String(), "Z") || len(now) != len("2006-01-02T15:04:05.000Z") {
		t.Errorf("DatetimeNow %q not in the preferred form", now)
	}
	if diff := time.Since(now.Time()); diff < -time.Second || diff > time.Minute {
		t.Errorf("DatetimeNow is %v away from now", diff)
	}
}
