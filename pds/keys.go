package pds

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

// Files in DataDir holding the server's own secrets, created on first
// start with mode 0600.
const (
	// RotationKeyFile is the PLC rotation key the PDS puts first in the
	// rotationKeys of the did:plc identities it creates, so that it can
	// update them (handle changes, key rotation).
	RotationKeyFile = "plc-rotation.key"
	// JWTSecretFile is the HMAC secret of session tokens.
	JWTSecretFile = "jwt.secret"
)

// serverKeys are the PDS's own secrets.
type serverKeys struct {
	rotation  crypto.PrivateKey
	jwtSecret []byte
}

func loadOrCreateKeys(dir string) (*serverKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pds: data dir: %w", err)
	}
	rot, err := loadOrCreate(filepath.Join(dir, RotationKeyFile), func() (string, error) {
		k, err := crypto.GenerateK256()
		if err != nil {
			return "", err
		}
		return k.Multibase(), nil
	})
	if err != nil {
		return nil, err
	}
	rotKey, err := crypto.ParsePrivateMultibase(rot)
	if err != nil {
		return nil, fmt.Errorf("pds: %s: %w", RotationKeyFile, err)
	}
	sec, err := loadOrCreate(filepath.Join(dir, JWTSecretFile), func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return hex.EncodeToString(b), nil
	})
	if err != nil {
		return nil, err
	}
	secret, err := hex.DecodeString(sec)
	if err != nil || len(secret) < 32 {
		return nil, fmt.Errorf("pds: %s: want at least 32 bytes of hex", JWTSecretFile)
	}
	return &serverKeys{rotation: rotKey, jwtSecret: secret}, nil
}

// loadOrCreate returns the trimmed content of path, first writing gen()'s
// result to it (atomically, mode 0600) when the file does not exist.
func loadOrCreate(path string, gen func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pds: read %s: %w", filepath.Base(path), err)
	}
	v, err := gen()
	if err != nil {
		return "", fmt.Errorf("pds: generate %s: %w", filepath.Base(path), err)
	}
	if err := writeFileAtomic(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}

// writeFileAtomic writes b to a temporary file beside path, syncs it,
// renames it over path and syncs the directory.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pds: write %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err == nil {
		if _, err = f.Write(b); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pds: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pds: write %s: %w", filepath.Base(path), err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
