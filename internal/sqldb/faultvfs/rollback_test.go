package faultvfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// simFS performs file operations the way the VFS does (journal first, then
// the operation; for a sync, the operation and then the journal), on plain
// files, so that Rollback can be checked without SQLite.
type simFS struct {
	t *testing.T
	j *Journal
}

type osFile struct{ f *os.File }

func (o osFile) size() (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (o osFile) readAt(p []byte, off int64) error {
	_, err := o.f.ReadAt(p, off)
	return err
}

func (s *simFS) create(path string) {
	s.t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := s.j.recordCreate(path); err != nil {
		s.t.Fatal(err)
	}
}

func (s *simFS) write(path string, off int64, data []byte) {
	s.t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if err := s.j.recordWrite(path, osFile{f}, off, len(data)); err != nil {
		s.t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		s.t.Fatal(err)
	}
}

func (s *simFS) truncate(path string, size int64) {
	s.t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if err := s.j.recordResize(path, osFile{f}, size); err != nil {
		s.t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		s.t.Fatal(err)
	}
}

func (s *simFS) sync(path string) {
	s.t.Helper()
	if err := s.j.recordSync(path); err != nil {
		s.t.Fatal(err)
	}
}

func (s *simFS) remove(path string) {
	s.t.Helper()
	if err := s.j.recordDelete(path); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		s.t.Fatal(err)
	}
}

// failedRemove is a delete that was recorded but did not happen.
func (s *simFS) failedRemove(path string) {
	s.t.Helper()
	if err := s.j.recordDelete(path); err != nil {
		s.t.Fatal(err)
	}
	if err := s.j.recordUndelete(path); err != nil {
		s.t.Fatal(err)
	}
}

func (s *simFS) syncDir(dir string) {
	s.t.Helper()
	if err := s.j.recordDirSync(dir); err != nil {
		s.t.Fatal(err)
	}
}

func newSim(t *testing.T) (*simFS, string) {
	t.Helper()
	dir := t.TempDir()
	j, err := OpenJournal(filepath.Join(dir, "journal", "j"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	return &simFS{t: t, j: j}, data
}

func rollback(t *testing.T, s *simFS) Result {
	t.Helper()
	if err := s.j.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := Rollback(s.j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.j.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal still there after Rollback: %v", err)
	}
	if _, err := os.Stat(s.j.Path() + backupSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal backups still there after Rollback: %v", err)
	}
	return res
}

func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", filepath.Base(path), got, want)
	}
}

func wantAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s should be gone: %v", filepath.Base(path), err)
	}
}

func TestRollbackCases(t *testing.T) {
	t.Run("unsynced writes are undone, synced ones kept", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "a")
		os.WriteFile(p, []byte("0123456789"), 0o600)
		s.write(p, 2, []byte("ab"))
		s.sync(p)
		s.write(p, 8, []byte("xyzw")) // extends the file
		s.write(p, 0, []byte("Q"))
		res := rollback(t, s)
		wantFile(t, p, []byte("01ab456789"))
		if res.Undone != 2 || res.Records != 4 || !slices.Equal(res.Paths, []string{p}) {
			t.Errorf("result %+v, want 2 undone of 4 records on %s", res, p)
		}
	})
	t.Run("truncation is undone", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "a")
		os.WriteFile(p, []byte("0123456789"), 0o600)
		s.truncate(p, 3)
		s.write(p, 5, []byte("zz")) // leaves a hole
		s.truncate(p, 20)           // extends
		rollback(t, s)
		wantFile(t, p, []byte("0123456789"))
	})
	t.Run("a created file without a directory sync is gone", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "new")
		s.create(p)
		s.write(p, 0, []byte("hello"))
		s.sync(p)
		res := rollback(t, s)
		wantAbsent(t, p)
		if res.Removed != 1 {
			t.Errorf("Removed = %d, want 1", res.Removed)
		}
	})
	t.Run("a created file with a directory sync keeps its synced data", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "new")
		s.create(p)
		s.write(p, 0, []byte("hello"))
		s.syncDir(dir)
		s.write(p, 5, []byte(" world"))
		s.sync(p)
		s.write(p, 0, []byte("J"))
		rollback(t, s)
		wantFile(t, p, []byte("hello world"))
	})
	t.Run("a directory sync covers only its directory", func(t *testing.T) {
		s, dir := newSim(t)
		sub := filepath.Join(dir, "sub")
		os.Mkdir(sub, 0o700)
		p, q := filepath.Join(dir, "p"), filepath.Join(sub, "q")
		s.create(p)
		s.create(q)
		s.syncDir(sub)
		rollback(t, s)
		wantAbsent(t, p)
		wantFile(t, q, nil)
	})
	t.Run("a deleted file without a directory sync comes back as synced", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "wal")
		os.WriteFile(p, []byte("synced"), 0o600)
		s.write(p, 0, []byte("UNSYNC"))
		s.remove(p)
		res := rollback(t, s)
		wantFile(t, p, []byte("synced"))
		if res.Restored != 1 {
			t.Errorf("Restored = %d, want 1", res.Restored)
		}
	})
	t.Run("a deleted file with a directory sync stays gone", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "wal")
		os.WriteFile(p, []byte("synced"), 0o600)
		s.remove(p)
		s.syncDir(dir)
		rollback(t, s)
		wantAbsent(t, p)
	})
	t.Run("a path reused after an undurable delete holds the old file", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "wal")
		os.WriteFile(p, []byte("old"), 0o600)
		s.remove(p)
		s.create(p)
		s.write(p, 0, []byte("new"))
		s.sync(p)
		rollback(t, s)
		wantFile(t, p, []byte("old"))
	})
	t.Run("a path reused after a durable delete holds the new file", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "wal")
		os.WriteFile(p, []byte("old"), 0o600)
		s.remove(p)
		s.create(p)
		s.write(p, 0, []byte("new"))
		s.sync(p)
		s.syncDir(dir)
		s.write(p, 0, []byte("NEW!"))
		rollback(t, s)
		wantFile(t, p, []byte("new"))
	})
	t.Run("a failed delete changes nothing", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "wal")
		os.WriteFile(p, []byte("old"), 0o600)
		s.failedRemove(p)
		s.write(p, 0, []byte("x"))
		s.sync(p)
		s.syncDir(dir)
		rollback(t, s)
		wantFile(t, p, []byte("xld"))
	})
	t.Run("a missing journal is nothing to do", func(t *testing.T) {
		res, err := Rollback(filepath.Join(t.TempDir(), "none"))
		if err != nil || res.Records != 0 || res.Paths != nil {
			t.Fatalf("Rollback of a missing journal: %+v, %v", res, err)
		}
	})
	t.Run("a journal is appended to across opens", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "a")
		os.WriteFile(p, []byte("abc"), 0o600)
		s.write(p, 0, []byte("X"))
		s.j.Close()
		j2, err := OpenJournal(s.j.Path())
		if err != nil {
			t.Fatal(err)
		}
		s.j = j2
		s.write(p, 1, []byte("Y"))
		rollback(t, s)
		wantFile(t, p, []byte("abc"))
	})
	t.Run("Discard keeps everything", func(t *testing.T) {
		s, dir := newSim(t)
		p := filepath.Join(dir, "a")
		os.WriteFile(p, []byte("abc"), 0o600)
		s.write(p, 0, []byte("X"))
		s.remove(p)
		s.j.Close()
		if err := Discard(s.j.Path()); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, p)
		wantAbsent(t, s.j.Path())
		wantAbsent(t, s.j.Path()+backupSuffix)
	})
}

func TestRollbackTornTail(t *testing.T) {
	s, dir := newSim(t)
	p := filepath.Join(dir, "a")
	os.WriteFile(p, []byte("0123"), 0o600)
	s.write(p, 0, []byte("AB"))
	s.write(p, 2, []byte("CD"))
	s.j.Close()
	// Cut the last record short, as a SIGKILL in the middle of its
	// write(2) would; its write never happened, so undo it by hand.
	st, _ := os.Stat(s.j.Path())
	if err := os.Truncate(s.j.Path(), st.Size()-3); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("AB23"), 0o600)
	res, err := Rollback(s.j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Torn || res.Records != 1 {
		t.Errorf("result %+v, want a torn journal of 1 record", res)
	}
	wantFile(t, p, []byte("0123"))
}

func TestRollbackCorrupt(t *testing.T) {
	s, dir := newSim(t)
	p := filepath.Join(dir, "a")
	os.WriteFile(p, []byte("0123"), 0o600)
	s.write(p, 0, []byte("AB"))
	s.write(p, 2, []byte("CD"))
	s.j.Close()
	raw, _ := os.ReadFile(s.j.Path())
	raw[len(journalMagic)+12] ^= 0xff // inside the first record's payload
	os.WriteFile(s.j.Path(), raw, 0o600)
	if _, err := Rollback(s.j.Path()); !errors.Is(err, errCorrupt) {
		t.Fatalf("Rollback of a corrupt journal: %v, want errCorrupt", err)
	}
	wantFile(t, p, []byte("ABCD")) // untouched
	if _, err := os.Stat(s.j.Path()); err != nil {
		t.Errorf("journal removed after a failed Rollback: %v", err)
	}

	other := filepath.Join(t.TempDir(), "notajournal")
	os.WriteFile(other, []byte("hello, world"), 0o600)
	if _, err := Rollback(other); !errors.Is(err, errCorrupt) {
		t.Errorf("Rollback of a non-journal: %v, want errCorrupt", err)
	}
	if _, err := OpenJournal(other); err == nil {
		t.Error("OpenJournal accepted a file that is not a journal")
	}
}

// TestRollbackModel checks Rollback against an independent model of a
// disk that keeps nothing unsynced, over random histories.
func TestRollbackModel(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, uint64(seed)) })
	}
}

// inode is a file of the model: its contents now and at its last sync.
type inode struct{ data, synced []byte }

func runModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	s, root := newSim(t)
	dirs := []string{root, filepath.Join(root, "sub")}
	os.Mkdir(dirs[1], 0o700)
	var names []string
	for _, d := range dirs {
		for _, n := range []string{"db", "db-wal", "db-journal"} {
			names = append(names, filepath.Join(d, n))
		}
	}
	cur := map[string]*inode{}
	durable := map[string]*inode{}
	// Files that exist, synced, before the journal starts.
	for _, p := range names {
		if rng.IntN(2) == 0 {
			b := randBytes(rng, rng.IntN(20))
			os.WriteFile(p, b, 0o600)
			in := &inode{data: b, synced: slices.Clone(b)}
			cur[p], durable[p] = in, in
		}
	}
	var log []string
	for range 40 {
		p := names[rng.IntN(len(names))]
		in := cur[p]
		switch op := rng.IntN(9); {
		case in == nil:
			s.create(p)
			cur[p] = &inode{}
			log = append(log, "create "+p)
		case op <= 2:
			off := int64(rng.IntN(len(in.data) + 4))
			b := randBytes(rng, 1+rng.IntN(8))
			s.write(p, off, b)
			if need := off + int64(len(b)); need > int64(len(in.data)) {
				in.data = append(in.data, make([]byte, need-int64(len(in.data)))...)
			}
			copy(in.data[off:], b)
			log = append(log, fmt.Sprintf("write %s %d %q", p, off, b))
		case op == 3:
			size := int64(rng.IntN(len(in.data) + 5))
			s.truncate(p, size)
			if size <= int64(len(in.data)) {
				in.data = in.data[:size]
			} else {
				in.data = append(in.data, make([]byte, size-int64(len(in.data)))...)
			}
			log = append(log, fmt.Sprintf("truncate %s %d", p, size))
		case op <= 5:
			s.sync(p)
			in.synced = slices.Clone(in.data)
			log = append(log, "sync "+p)
		case op == 6:
			s.remove(p)
			delete(cur, p)
			log = append(log, "remove "+p)
		case op == 7:
			s.failedRemove(p)
			log = append(log, "failed remove "+p)
		default:
			d := filepath.Dir(p)
			s.syncDir(d)
			for _, q := range names {
				if filepath.Dir(q) == d {
					if cur[q] == nil {
						delete(durable, q)
					} else {
						durable[q] = cur[q]
					}
				}
			}
			log = append(log, "syncdir "+d)
		}
	}
	rollback(t, s)
	for _, p := range names {
		want := durable[p]
		got, err := os.ReadFile(p)
		switch {
		case want == nil && err == nil:
			t.Errorf("%s exists after rollback, want it gone", p)
		case want == nil:
		case err != nil:
			t.Errorf("%s: %v, want %q", p, err, want.synced)
		case !bytes.Equal(got, want.synced):
			t.Errorf("%s holds %q, want %q", p, got, want.synced)
		}
	}
	if t.Failed() {
		for _, l := range log {
			t.Log(l)
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return b
}
