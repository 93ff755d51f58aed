package faultvfs

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// FuzzJournal feeds arbitrary bytes to the journal decoder and the
// rollback planner: they return an error or a plan, never panic, and a plan
// only names clean absolute paths and backup names without a separator.
func FuzzJournal(f *testing.F) {
	dir := f.TempDir()
	j, err := OpenJournal(filepath.Join(dir, "j"))
	if err != nil {
		f.Fatal(err)
	}
	p := filepath.Join(dir, "file")
	os.WriteFile(p, []byte("0123456789"), 0o600)
	fh, _ := os.Open(p)
	j.recordWrite(p, osFile{fh}, 3, 4)
	j.recordResize(p, osFile{fh}, 2)
	j.recordSync(p)
	j.recordCreate(p + "-wal")
	j.recordDirSync(dir)
	j.recordDelete(p)
	j.recordUndelete(p)
	fh.Close()
	j.Close()
	valid, err := os.ReadFile(j.Path())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	f.Add([]byte(journalMagic))
	f.Add([]byte(journalMagic[:3]))
	f.Add([]byte{})
	f.Add(append([]byte(journalMagic), 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0))
	// The valid journal's payloads in the second pass's form.
	var payloads []byte
	for rest := valid[len(journalMagic):]; len(rest) >= 8; {
		n := int(binary.LittleEndian.Uint32(rest))
		if n > 255 || len(rest) < 8+n {
			break
		}
		payloads = append(append(payloads, byte(n)), rest[8:8+n]...)
		rest = rest[8+n:]
	}
	f.Add(payloads)

	f.Fuzz(func(t *testing.T, data []byte) {
		checkJournal(t, data)
		// The checksums keep mutated bytes from reaching the record
		// parser and the planner; a second pass reads data as a list of
		// payloads (each a length byte and that many bytes) and frames
		// them with the right checksums.
		framed := []byte(journalMagic)
		for rest := data; len(rest) > 0; {
			n := min(int(rest[0]), len(rest)-1)
			payload := rest[1 : 1+n]
			rest = rest[1+n:]
			framed = binary.LittleEndian.AppendUint32(framed, uint32(len(payload)))
			framed = binary.LittleEndian.AppendUint32(framed, crc32.Checksum(payload, castagnoli))
			framed = append(framed, payload...)
		}
		checkJournal(t, framed)
	})
}

// checkJournal decodes and plans one journal.
func checkJournal(t *testing.T, data []byte) {
	t.Helper()
	recs, torn, err := decodeJournal(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if recs != nil || torn {
			t.Fatalf("error %v with %d records, torn %v", err, len(recs), torn)
		}
		return
	}
	for _, r := range recs {
		if r.dataOff < 0 || r.dataLen < 0 || r.dataOff+r.dataLen > int64(len(data)) {
			t.Fatalf("record data [%d, +%d) outside the journal of %d bytes", r.dataOff, r.dataLen, len(data))
		}
	}
	acts, err := planRollback(recs)
	if err != nil {
		return
	}
	for _, a := range acts {
		if !filepath.IsAbs(a.path) || filepath.Clean(a.path) != a.path {
			t.Fatalf("plan names path %q", a.path)
		}
		if a.from != "" && filepath.Base(a.from) != a.from {
			t.Fatalf("plan names backup %q", a.from)
		}
		for _, i := range a.undo {
			if i < 0 || i >= len(recs) || (recs[i].kind != kindWrite && recs[i].kind != kindResize) {
				t.Fatalf("plan undoes record %d", i)
			}
		}
	}
}
