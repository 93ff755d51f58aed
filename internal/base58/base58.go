// Package base58 encodes and decodes base58btc, the bitcoin alphabet that
// multibase marks with a leading 'z': did:key strings, multikeys and old
// CIDv0 strings use it.
package base58

import "fmt"

// The bitcoin base58 alphabet ("base58btc"): digits and letters without the
// easily confused 0, O, I and l.
const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// index maps an ASCII byte to its digit value, or 0xff for bytes outside
// the alphabet.
var index = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// Encode returns the base58btc text of src. Every leading zero byte
// becomes a leading '1'; the rest is the big-endian number written in base
// 58. The work is quadratic in the input length, which is fine for the few
// dozen bytes of a key.
func Encode(src []byte) string {
	zeros := 0
	for zeros < len(src) && src[zeros] == 0 {
		zeros++
	}
	// log(256)/log(58) is about 1.366, so 138/100 digits per byte is enough.
	digits := make([]byte, 0, (len(src)-zeros)*138/100+1)
	for _, b := range src[zeros:] {
		carry := int(b)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, zeros+len(digits))
	for i := 0; i < zeros; i++ {
		out[i] = '1'
	}
	// digits holds the number least significant first.
	for i, d := range digits {
		out[len(out)-1-i] = alphabet[d]
	}
	return string(out)
}

// Decode is the inverse of Encode. It rejects the empty string and any
// character outside the alphabet, naming the offending position.
func Decode(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("empty base58btc string")
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// log(58)/log(256) is about 0.733.
	num := make([]byte, 0, (len(s)-zeros)*733/1000+1)
	for i := zeros; i < len(s); i++ {
		v := index[s[i]]
		if v == 0xff {
			return nil, fmt.Errorf("invalid base58btc character %q at offset %d", s[i], i)
		}
		carry := int(v)
		for j := range num {
			carry += int(num[j]) * 58
			num[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			num = append(num, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(num))
	// num holds the number least significant byte first.
	for i, b := range num {
		out[len(out)-1-i] = b
	}
	return out, nil
}
