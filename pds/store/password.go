package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/scrypt"
)

// Password hashing parameters. The cost is the reference PDS's: scrypt with
// N=16384 (ln=14), r=8, p=1, a 16-byte random salt and a 64-byte key.
const (
	defaultScryptLogN = 14
	scryptR           = 8
	scryptP           = 1
	saltLen           = 16
	keyLen            = 64
)

// Bounds on the parameters VerifyPassword accepts from a hash string, so
// that a corrupt or hostile hash cannot make one check take gigabytes or
// minutes.
const (
	maxScryptLogN   = 20
	maxScryptP      = 16
	maxScryptMemory = 256 << 20 // bytes: scrypt needs 128*r*N
	minSaltLen      = 8
	maxSaltLen      = 64
	minKeyLen       = 16
	maxKeyLen       = 128
)

// hashLogN is the ln HashPassword uses; tests lower it to stay fast.
var hashLogN = defaultScryptLogN

// kdfSlots bounds how many scrypt computations run at once. Each takes
// 16 MiB (128*r*N bytes) and a core for tens of milliseconds, so running
// more than one per core only adds memory: a burst of sign-ups or logins
// would otherwise grow the heap by 16 MiB per request in flight.
var kdfSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// scryptKey is scrypt.Key under kdfSlots.
func scryptKey(password, salt []byte, n, r, p, keyLen int) ([]byte, error) {
	kdfSlots <- struct{}{}
	defer func() { <-kdfSlots }()
	return scrypt.Key(password, salt, n, r, p, keyLen)
}

// ErrMalformedHash: a password hash string is not in the form HashPassword
// writes, or its parameters are out of bounds.
var ErrMalformedHash = errors.New("pds store: malformed password hash")

const scryptPrefix = "$scrypt$"

var b64 = base64.RawStdEncoding

// HashPassword hashes password with scrypt (N=16384, r=8, p=1, random
// 16-byte salt) into a self-describing string:
//
//	$scrypt$ln=14,r=8,p=1$<salt>$<key>
//
// with salt and key in unpadded standard base64. The password must not be
// empty.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("pds store: empty password")
	}
	return hashWith(password, hashLogN)
}

func hashWith(password string, logN int) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("pds store: hash password: %w", err)
	}
	p := scryptParams{logN: logN, r: scryptR, p: scryptP, salt: salt}
	key, err := scryptKey([]byte(password), salt, 1<<logN, p.r, p.p, keyLen)
	if err != nil {
		return "", fmt.Errorf("pds store: hash password: %w", err)
	}
	p.key = key
	return p.String(), nil
}

// VerifyPassword reports whether password matches hash, a string from
// HashPassword; the comparison takes constant time. The error, which
// matches ErrMalformedHash, is only for a hash string that cannot be
// parsed.
func VerifyPassword(hash, password string) (bool, error) {
	p, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	key, err := scryptKey([]byte(password), p.salt, 1<<p.logN, p.r, p.p, len(p.key))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

type scryptParams struct {
	logN, r, p int
	salt, key  []byte
}

func (p scryptParams) String() string {
	return fmt.Sprintf("%sln=%d,r=%d,p=%d$%s$%s", scryptPrefix, p.logN, p.r, p.p,
		b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// parseHash reads a hash string in the one canonical form String writes,
// with parameters within the bounds above.
func parseHash(s string) (scryptParams, error) {
	var p scryptParams
	bad := func(why string) (scryptParams, error) {
		return scryptParams{}, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	rest, ok := strings.CutPrefix(s, scryptPrefix)
	if !ok {
		return bad("not an scrypt hash")
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return bad("want $scrypt$<params>$<salt>$<key>")
	}
	fields := strings.Split(parts[0], ",")
	if len(fields) != 3 {
		return bad("want parameters ln, r and p")
	}
	for i, dst := range []*int{&p.logN, &p.r, &p.p} {
		name := [...]string{"ln=", "r=", "p="}[i]
		v, ok := strings.CutPrefix(fields[i], name)
		if !ok {
			return bad("want parameters ln, r and p, in that order")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || strconv.Itoa(n) != v {
			return bad("parameter " + name + " is not a positive decimal integer")
		}
		*dst = n
	}
	if p.logN > maxScryptLogN || p.p > maxScryptP || p.r > maxScryptMemory/128 ||
		int64(128)*int64(p.r)<<p.logN > maxScryptMemory {
		return bad("cost parameters out of bounds")
	}
	var err error
	if p.salt, err = b64.Strict().DecodeString(parts[1]); err != nil {
		return bad("salt is not base64")
	}
	if p.key, err = b64.Strict().DecodeString(parts[2]); err != nil {
		return bad("key is not base64")
	}
	if len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen {
		return bad("salt length out of bounds")
	}
	if len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
		return bad("key length out of bounds")
	}
	// The base64 decoder skips line breaks; only the canonical form is
	// accepted, so that one hash has one spelling.
	if p.String() != s {
		return bad("not in canonical form")
	}
	return p, nil
}
