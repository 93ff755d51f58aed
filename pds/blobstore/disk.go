package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// TempDirName is the directory, inside a Disk's directory, that holds the
// temporary blobs.
const TempDirName = "tmp"

const (
	dirMode  = 0o700
	fileMode = 0o600
)

// Disk is a Store on the local file system:
//
//	<dir>/<account>/<cid>           permanent blobs
//	<dir>/tmp/<account>/<key>       temporary blobs
//
// where <account> is the DID with ':' replaced by '_' (or a hash, for DIDs
// too long for a file name) and <cid> the CID's string form. Files have
// mode 0600 and directories 0700.
//
// Every file operation goes through an os.Root opened on dir, so no name,
// and no symbolic link planted inside dir, can reach a file outside it.
type Disk struct {
	root *os.Root
}

var _ Store = (*Disk)(nil)

// NewDisk opens, creating it if needed, the blob directory dir. Close
// releases it.
func NewDisk(dir string) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("blobstore: empty blob directory")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	d := &Disk{root: root}
	if err := d.mkdir(TempDirName); err != nil {
		root.Close()
		return nil, err
	}
	return d, nil
}

// Close releases the directory. The Disk must not be used afterwards.
func (d *Disk) Close() error { return d.root.Close() }

// mkdir creates the directory name (one level below an existing one) if it
// is missing, and then makes its entry durable.
func (d *Disk) mkdir(name string) error {
	err := d.root.Mkdir(name, dirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	return d.syncDir(filepath.Dir(name))
}

// syncDir flushes a directory, making the entries created, renamed or
// removed in it durable.
func (d *Disk) syncDir(name string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there
	}
	f, err := d.root.Open(name)
	if err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("blobstore: sync %s: %w", name, err)
	}
	return nil
}

func tempDir(did syntax.DID) string { return filepath.Join(TempDirName, accountName(did, true)) }

func tempPath(did syntax.DID, key string) string { return filepath.Join(tempDir(did), key) }

func permDir(did syntax.DID) string { return accountName(did, true) }

func permPath(did syntax.DID, cid data.CID) string { return filepath.Join(permDir(did), cid.String()) }

// PutTemp implements Store. The upload is written straight to its
// temporary file, which is removed again if anything goes wrong, and
// synced, together with its directory entry, before PutTemp returns.
func (d *Disk) PutTemp(ctx context.Context, did syntax.DID, r io.Reader, maxSize int64) (TempBlob, error) {
	if err := checkPut(did, r, maxSize); err != nil {
		return TempBlob{}, err
	}
	if err := ctx.Err(); err != nil {
		return TempBlob{}, err
	}
	dir := tempDir(did)
	if err := d.mkdir(dir); err != nil {
		return TempBlob{}, err
	}
	key := newTempKey()
	name := filepath.Join(dir, key)
	f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return TempBlob{}, fmt.Errorf("blobstore: %w", err)
	}
	br := newBlobReader(ctx, r, maxSize)
	_, err = io.Copy(onlyWriter{f}, br)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.syncDir(dir)
	}
	if err != nil {
		_ = d.root.Remove(name)
		if br.tooLarge() {
			return TempBlob{}, br.err
		}
		return TempBlob{}, fmt.Errorf("blobstore: store upload: %w", err)
	}
	return br.result(key), nil
}

// onlyWriter hides the file's ReadFrom, so that io.Copy reads through the
// blobReader with its own buffer rather than handing the reader to the
// file, which would gain nothing for an arbitrary reader.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// MakePermanent implements Store: a rename within the blob directory,
// followed by a sync of the account's directory.
func (d *Disk) MakePermanent(ctx context.Context, did syntax.DID, tempKey string, cid data.CID) error {
	if err := checkDID(did); err != nil {
		return err
	}
	if err := checkTempKey(tempKey); err != nil {
		return err
	}
	if err := checkCID(cid); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	src, dst := tempPath(did, tempKey), permPath(did, cid)
	if d.exists(dst) {
		// Already permanent: the temporary copy has the same bytes.
		if err := d.root.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blobstore: %w", err)
		}
		return nil
	}
	if err := d.mkdir(permDir(did)); err != nil {
		return err
	}
	if err := d.root.Rename(src, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if d.exists(dst) { // made permanent meanwhile
				return nil
			}
			return fmt.Errorf("%w: temporary blob %s of %s", ErrNotFound, tempKey, did)
		}
		return fmt.Errorf("blobstore: %w", err)
	}
	return d.syncDir(permDir(did))
}

// exists reports whether name is a regular file.
func (d *Disk) exists(name string) bool {
	fi, err := d.root.Lstat(name)
	return err == nil && fi.Mode().IsRegular()
}

// Get implements Store. The reader is an *os.File, so it also implements
// io.Seeker and io.ReaderAt.
func (d *Disk) Get(ctx context.Context, did syntax.DID, cid data.CID) (io.ReadCloser, int64, error) {
	if err := checkDID(did); err != nil {
		return nil, 0, err
	}
	if err := checkCID(cid); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	f, err := d.root.Open(permPath(did, cid))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s of %s", ErrNotFound, cid, did)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blobstore: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blobstore: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("blobstore: %s of %s is not a regular file", cid, did)
	}
	return f, fi.Size(), nil
}

// Has implements Store.
func (d *Disk) Has(ctx context.Context, did syntax.DID, cid data.CID) (bool, error) {
	if err := checkDID(did); err != nil {
		return false, err
	}
	if err := checkCID(cid); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	fi, err := d.root.Lstat(permPath(did, cid))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blobstore: %w", err)
	}
	return fi.Mode().IsRegular(), nil
}

// Delete implements Store.
func (d *Disk) Delete(ctx context.Context, did syntax.DID, cids ...data.CID) error {
	if err := checkDID(did); err != nil {
		return err
	}
	for _, c := range cids {
		if err := checkCID(c); err != nil {
			return err
		}
	}
	var errs []error
	removed := false
	for _, c := range cids {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		err := d.root.Remove(permPath(did, c))
		switch {
		case err == nil:
			removed = true
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("blobstore: %w", err))
		}
	}
	if removed {
		errs = append(errs, d.syncDir(permDir(did)))
	}
	return errors.Join(errs...)
}

// DeleteTemp implements Store.
func (d *Disk) DeleteTemp(ctx context.Context, did syntax.DID, tempKey string) error {
	if err := checkDID(did); err != nil {
		return err
	}
	if err := checkTempKey(tempKey); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := d.root.Remove(tempPath(did, tempKey))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: %w", err)
	}
	return nil
}

// DeleteAll implements Store.
func (d *Disk) DeleteAll(ctx context.Context, did syntax.DID) error {
	if err := checkDID(did); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var errs []error
	for _, name := range []string{permDir(did), tempDir(did)} {
		if err := d.root.RemoveAll(name); err != nil {
			errs = append(errs, fmt.Errorf("blobstore: %w", err))
			continue
		}
		errs = append(errs, d.syncDir(filepath.Dir(name)))
	}
	return errors.Join(errs...)
}

// CleanTemp implements Store, going by the files' modification times.
// Only names PutTemp could have made are removed; the per-account
// directories stay.
func (d *Disk) CleanTemp(ctx context.Context, olderThan time.Time) error {
	accounts, err := d.readDir(TempDirName)
	if err != nil {
		return err
	}
	var errs []error
	for _, acct := range accounts {
		if !acct.IsDir() {
			continue
		}
		dir := filepath.Join(TempDirName, acct.Name())
		files, err := d.readDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the account was deleted meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return errors.Join(append(errs, err)...)
			}
			if !f.Type().IsRegular() || checkTempKey(f.Name()) != nil {
				continue
			}
			fi, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("blobstore: %w", err))
				continue
			}
			if !fi.ModTime().Before(olderThan) {
				continue
			}
			if err := d.root.Remove(filepath.Join(dir, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("blobstore: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func (d *Disk) readDir(name string) ([]fs.DirEntry, error) {
	f, err := d.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	return entries, nil
}
