package devnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ManifestFile is the manifest's name inside the data directory.
const ManifestFile = "devnet.json"

// maxManifestSize bounds the manifest file read back on restart; a real
// one is well under a kilobyte.
const maxManifestSize = 1 << 20

// Manifest describes a running devnet: where each service listens and the
// accounts seeded on it. It is written to DataDir/devnet.json.
type Manifest struct {
	// Services maps a service name ("plc", "pds", "relay") to its base URL.
	Services map[string]string `json:"services"`
	// Accounts are the seeded accounts, in creation order; empty (never
	// null) when there are none.
	Accounts []Account `json:"accounts"`
}

// Account is a seeded account and its password.
type Account struct {
	Handle   syntax.Handle `json:"handle"`
	DID      syntax.DID    `json:"did"`
	Password string        `json:"password"`
}

// ParseManifest reads a manifest and checks it: every service URL is an
// absolute http(s) URL, and every account has a valid handle, a valid DID
// and a password.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("devnet: manifest: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("devnet: manifest: data after the JSON object")
	}
	for name, raw := range m.Services {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("devnet: manifest: service %q: %q is not an http(s) URL", name, raw)
		}
	}
	for i, a := range m.Accounts {
		if _, err := syntax.ParseHandle(string(a.Handle)); err != nil {
			return nil, fmt.Errorf("devnet: manifest: account %d: %w", i, err)
		}
		if _, err := syntax.ParseDID(string(a.DID)); err != nil {
			return nil, fmt.Errorf("devnet: manifest: account %d (%s): %w", i, a.Handle, err)
		}
		if a.Password == "" {
			return nil, fmt.Errorf("devnet: manifest: account %d (%s) has no password", i, a.Handle)
		}
	}
	if m.Services == nil {
		m.Services = map[string]string{}
	}
	if m.Accounts == nil {
		m.Accounts = []Account{}
	}
	return &m, nil
}

// ReadManifest reads and checks the manifest at path. A missing file is
// reported with an error satisfying errors.Is(err, fs.ErrNotExist).
func ReadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("devnet: read %s: %w", path, err)
	}
	if len(b) > maxManifestSize {
		return nil, fmt.Errorf("devnet: %s is larger than %d bytes", path, maxManifestSize)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return m, nil
}

// writeManifest writes m to path atomically: a temporary file in the same
// directory, synced, renamed over path, and the directory synced. The
// file holds passwords, so only its owner may read it.
func writeManifest(path string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

func writeFileAtomic(path string, b []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("devnet: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err = f.Chmod(mode); err == nil {
		if _, err = f.Write(b); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("devnet: write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("devnet: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("devnet: sync %s: %w", dir, err)
	}
	return nil
}
