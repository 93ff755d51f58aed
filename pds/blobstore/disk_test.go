package blobstore

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func newDisk(t *testing.T, dir string) *Disk {
	t.Helper()
	d, err := NewDisk(dir)
	if err != nil {
		t.Fatalf("NewDisk: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func diskHarness(t *testing.T) *harness {
	dir := t.TempDir()
	return &harness{
		store: newDisk(t, dir),
		temps: func(t *testing.T) []string {
			t.Helper()
			var keys []string
			err := filepath.WalkDir(filepath.Join(dir, TempDirName), func(path string, e fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !e.IsDir() {
					keys = append(keys, e.Name())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return keys
		},
		backdate: func(t *testing.T, did syntax.DID, key string, when time.Time) {
			t.Helper()
			if err := os.Chtimes(filepath.Join(dir, tempPath(did, key)), when, when); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestDisk(t *testing.T) {
	runSuite(t, diskHarness)
}

func TestDiskLayoutAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	d := newDisk(t, dir)
	b := []byte("hello, blob")
	tb := putTemp(t, d, didA, b)
	tmpFile := filepath.Join(dir, "tmp", "did_plc_aaaaaaaaaaaaaaaaaaaaaaaa", tb.Key)
	if got, err := os.ReadFile(tmpFile); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("temporary file %s: %q, %v", tmpFile, got, err)
	}
	if err := d.MakePermanent(t.Context(), didA, tb.Key, tb.CID); err != nil {
		t.Fatal(err)
	}
	permFile := filepath.Join(dir, "did_plc_aaaaaaaaaaaaaaaaaaaaaaaa", tb.CID.String())
	if got, err := os.ReadFile(permFile); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("permanent file %s: %q, %v", permFile, got, err)
	}
	if _, err := os.Stat(tmpFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary file still there after MakePermanent: %v", err)
	}
	if runtime.GOOS == "windows" {
		return // no Unix permissions
	}
	for path, want := range map[string]fs.FileMode{
		dir:                                  0o700,
		filepath.Join(dir, "tmp"):            0o700,
		filepath.Dir(tmpFile):                0o700,
		filepath.Dir(permFile):               0o700,
		permFile:                             0o600,
		filepath.Join(dir, "tmp", "nothing"): 0,
	} {
		fi, err := os.Stat(path)
		if want == 0 {
			if err == nil {
				t.Errorf("%s exists", path)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}

func TestDiskReopen(t *testing.T) {
	dir := t.TempDir()
	d := newDisk(t, dir)
	b := content(5000, 30)
	c := putPermanent(t, d, didA, b)
	pending := putTemp(t, d, didA, content(10, 31))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := newDisk(t, dir)
	wantBlob(t, d2, didA, c, b)
	if err := d2.MakePermanent(t.Context(), didA, pending.Key, pending.CID); err != nil {
		t.Errorf("MakePermanent of an upload made before reopening: %v", err)
	}
}

func TestNewDiskErrors(t *testing.T) {
	if _, err := NewDisk(""); err == nil {
		t.Error("NewDisk(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDisk(file); err == nil {
		t.Error("NewDisk of a regular file succeeded")
	}
}

// TestDiskStaysInside plants ways out of the blob directory and checks
// that none is taken.
func TestDiskStaysInside(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "blobs")
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := []byte("not a blob")
	c := data.CIDForRaw(secret)
	if err := os.WriteFile(filepath.Join(outside, c.String()), secret, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDisk(t, dir)
	// An account directory that is a link to the outside.
	if err := os.Symlink(outside, filepath.Join(dir, "did_plc_aaaaaaaaaaaaaaaaaaaaaaaa")); err != nil {
		t.Fatal(err)
	}
	if rc, _, err := d.Get(t.Context(), didA, c); err == nil {
		rc.Close()
		t.Error("Get followed a link out of the blob directory")
	}
	if err := d.Delete(t.Context(), didA, c); err == nil {
		t.Error("Delete through a link out of the blob directory reported no error")
	}
	tb := putTemp(t, d, didA, []byte("new"))
	if err := d.MakePermanent(t.Context(), didA, tb.Key, tb.CID); err == nil {
		t.Error("MakePermanent wrote through a link out of the blob directory")
	}
	// DeleteAll removes the link itself, not what it points to.
	if err := d.DeleteAll(t.Context(), didA); err != nil {
		t.Errorf("DeleteAll: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "did_plc_aaaaaaaaaaaaaaaaaaaaaaaa")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link survived DeleteAll: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(outside, c.String()))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the file outside was touched: %q, %v", got, err)
	}
	entries, err := os.ReadDir(outside)
	if err != nil || len(entries) != 1 {
		t.Errorf("outside directory now holds %d entries (%v)", len(entries), err)
	}
}
