package faultvfs

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// A journal whose writer died in the middle of a record is cut back to its
// last whole record when another process opens it to go on, so that the
// torn record never ends up in the middle of the journal.
func TestOpenJournalCutsTornRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.recordSync("/some/file.db"); err != nil {
		t.Fatal(err)
	}
	j.Close()
	whole, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A record frame announcing 100 bytes, of which 10 made it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	var frame [8]byte
	binary.LittleEndian.PutUint32(frame[0:4], 100)
	f.Write(frame[:])
	f.Write(make([]byte, 10))
	f.Close()

	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != whole.Size() {
		t.Fatalf("journal is %d bytes after reopening, want %d (the torn record cut off)", st.Size(), whole.Size())
	}
	if err := j.recordSync("/some/file.db"); err != nil {
		t.Fatal(err)
	}
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	st, _ = rf.Stat()
	recs, torn, err := decodeJournal(rf, st.Size())
	if err != nil || torn || len(recs) != 2 {
		t.Fatalf("journal after going on: %d records, torn %v, err %v; want 2 whole records", len(recs), torn, err)
	}
}
