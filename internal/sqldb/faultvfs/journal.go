package faultvfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// The journal file: the magic, then records. A record is a 4-byte
// little-endian payload length, the payload's CRC-32C (4 bytes, little
// endian) and the payload. A payload is a kind byte followed by the kind's
// fields; integers are unsigned varints, strings and byte strings a varint
// length and the bytes.
//
//	kindWrite    path, offset, old size, old bytes (the range the write covers, cut at the old size)
//	kindResize   path, new size, old size, old bytes (the tail a shrink removes)
//	kindSync     path
//	kindCreate   path
//	kindDelete   path, backup name (a file in the backup directory)
//	kindUndelete path (the delete recorded just before it failed)
//	kindDirSync  directory
const journalMagic = "WFVJRNL1"

// maxRecord bounds a record's payload, so that a corrupt length cannot make
// Rollback allocate without limit. A write or truncation whose undo data
// would exceed it fails with an I/O error.
const maxRecord = 1 << 30

const (
	kindWrite    byte = 'W'
	kindResize   byte = 'T'
	kindSync     byte = 'S'
	kindCreate   byte = 'C'
	kindDelete   byte = 'X'
	kindUndelete byte = 'U'
	kindDirSync  byte = 'D'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// backupSuffix names the directory, next to the journal, that holds the
// files deleted through the VFS (hard links, or copies where a link is not
// possible) until Rollback or Discard.
const backupSuffix = ".files"

// Journal is the undo log of a fault-injecting VFS: before a write,
// truncation or delete reaches a file, the journal records what it takes
// to undo it; a sync of the file makes the file's earlier records moot.
// Records are appended with plain write(2) calls and never synced: they
// survive the death of the process (the kernel keeps them), which is all
// the model needs, since Rollback runs after the process is gone and before
// anything else touches the files.
//
// A Journal is safe for concurrent use. Records of different files may
// interleave; for each file, SQLite's own locking keeps writes and syncs in
// order, and the journal additionally serializes them per path.
type Journal struct {
	path   string
	backup string
	prefix string // makes backup names unique across processes

	mu     sync.Mutex // guards f, buf, seq, closed and the appends
	f      *os.File
	buf    []byte
	seq    uint64
	closed bool

	// ns serializes creations, deletions and directory syncs with the
	// records that describe them, so that the order of the records is the
	// order in which the directory changed.
	ns sync.Mutex

	pathMu sync.Mutex
	paths  map[string]*sync.Mutex
}

// OpenJournal opens the journal file at path for appending, creating it
// (and its directory) if it does not exist. A journal left by an earlier
// process that was neither rolled back nor discarded is appended to: its
// records still describe writes that were never synced. A last record that
// process left cut short is removed first.
func OpenJournal(path string) (*Journal, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("faultvfs: journal path: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("faultvfs: create journal directory: %w", err)
	}
	if err := os.MkdirAll(abs+backupSuffix, 0o700); err != nil {
		return nil, fmt.Errorf("faultvfs: create journal backup directory: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("faultvfs: open journal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("faultvfs: open journal: %w", err)
	}
	if st.Size() == 0 {
		if _, err := f.Write([]byte(journalMagic)); err != nil {
			f.Close()
			return nil, fmt.Errorf("faultvfs: write journal header: %w", err)
		}
	} else {
		head := make([]byte, len(journalMagic))
		if _, err := f.ReadAt(head, 0); err != nil || string(head) != journalMagic {
			f.Close()
			return nil, fmt.Errorf("faultvfs: %s is not a faultvfs journal", abs)
		}
		// The process that wrote it may have died in the middle of a
		// record (a crash without a power loss, the journal going on):
		// cut that record off, so that it does not end up in the middle.
		_, end, torn, err := decodeJournalEnd(f, st.Size())
		if err != nil {
			f.Close()
			return nil, err
		}
		if torn {
			if err := f.Truncate(end); err != nil {
				f.Close()
				return nil, fmt.Errorf("faultvfs: cut the torn record off the journal: %w", err)
			}
		}
	}
	return &Journal{
		path:   abs,
		backup: abs + backupSuffix,
		prefix: strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		f:      f,
		paths:  map[string]*sync.Mutex{},
	}, nil
}

// Path returns the absolute path of the journal file, the argument
// Rollback and Discard take.
func (j *Journal) Path() string { return j.path }

// Close closes the journal file. Writes through a VFS using the journal
// fail afterwards.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	return j.f.Close()
}

// lockPath returns the mutex that orders the records and operations of one
// file.
func (j *Journal) lockPath(path string) *sync.Mutex {
	j.pathMu.Lock()
	m := j.paths[path]
	if m == nil {
		m = &sync.Mutex{}
		j.paths[path] = m
	}
	j.pathMu.Unlock()
	m.Lock()
	return m
}

// fileState is what recording a write or truncation needs from the file:
// its current size and its current bytes.
type fileState interface {
	size() (int64, error)
	// readAt fills p from offset off, which with len(p) lies within the
	// file's size.
	readAt(p []byte, off int64) error
}

// recordWrite records the undo of a write of n bytes at off.
func (j *Journal) recordWrite(path string, f fileState, off int64, n int) error {
	if off < 0 || n < 0 {
		return fmt.Errorf("faultvfs: write of %d bytes at %d", n, off)
	}
	size, err := f.size()
	if err != nil {
		return err
	}
	var old []byte
	if off < size {
		m := min(int64(n), size-off)
		if m > maxRecord {
			return fmt.Errorf("faultvfs: write of %d bytes is too large to journal", m)
		}
		old = make([]byte, m)
		if err := f.readAt(old, off); err != nil {
			return err
		}
	}
	return j.append(kindWrite, path, "", []uint64{uint64(off), uint64(size)}, old)
}

// recordResize records the undo of setting the file's size to newSize (a
// truncation, or an extension such as a size hint).
func (j *Journal) recordResize(path string, f fileState, newSize int64) error {
	if newSize < 0 {
		return fmt.Errorf("faultvfs: resize to %d", newSize)
	}
	size, err := f.size()
	if err != nil {
		return err
	}
	var tail []byte
	if newSize < size {
		if size-newSize > maxRecord {
			return fmt.Errorf("faultvfs: truncation of %d bytes is too large to journal", size-newSize)
		}
		tail = make([]byte, size-newSize)
		if err := f.readAt(tail, newSize); err != nil {
			return err
		}
	}
	return j.append(kindResize, path, "", []uint64{uint64(newSize), uint64(size)}, tail)
}

// recordSync records that the file's contents and size are durable.
func (j *Journal) recordSync(path string) error {
	return j.append(kindSync, path, "", nil, nil)
}

// recordCreate records that the file was just created.
func (j *Journal) recordCreate(path string) error {
	return j.append(kindCreate, path, "", nil, nil)
}

// recordDelete keeps the file at path in the backup directory (a hard
// link, or a copy) and records that it is about to be deleted.
func (j *Journal) recordDelete(path string) error {
	j.mu.Lock()
	j.seq++
	name := j.prefix + "-" + strconv.FormatUint(j.seq, 10)
	j.mu.Unlock()
	keep := filepath.Join(j.backup, name)
	if err := os.Link(path, keep); err != nil {
		if err := copyFile(path, keep); err != nil {
			return fmt.Errorf("faultvfs: keep %s before deleting it: %w", path, err)
		}
	}
	return j.append(kindDelete, path, name, nil, nil)
}

// recordUndelete records that the delete recorded last for path did not
// happen.
func (j *Journal) recordUndelete(path string) error {
	return j.append(kindUndelete, path, "", nil, nil)
}

// recordDirSync records that the directory's entries are durable.
func (j *Journal) recordDirSync(dir string) error {
	return j.append(kindDirSync, dir, "", nil, nil)
}

// append writes one record with one write(2).
func (j *Journal) append(kind byte, path, name string, ints []uint64, data []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return errors.New("faultvfs: journal closed")
	}
	b := append(j.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0, kind)
	b = appendString(b, path)
	for _, v := range ints {
		b = binary.AppendUvarint(b, v)
	}
	switch kind {
	case kindWrite, kindResize:
		b = binary.AppendUvarint(b, uint64(len(data)))
		b = append(b, data...)
	case kindDelete:
		b = appendString(b, name)
	}
	payload := b[8:]
	if len(payload) > maxRecord {
		return fmt.Errorf("faultvfs: journal record of %d bytes is too large", len(payload))
	}
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	if cap(b) <= 1<<20 {
		j.buf = b
	}
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("faultvfs: append to journal: %w", err)
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// copyFile copies src to a new file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
