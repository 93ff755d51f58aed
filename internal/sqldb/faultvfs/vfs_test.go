package faultvfs

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/internal/sqldb"
)

// The power-loss tests run SQLite in a child process (this test binary, in
// TestPowerLossChild) that opens its database through the VFS, kill it
// with SIGKILL, roll the files back with Rollback and check, in the parent,
// what survived.

const childEnv = "WELKIN_FAULTVFS_CHILD"

// Child modes.
const (
	// modeFull commits rows with synchronous=FULL until killed.
	modeFull = "full"
	// modeOff commits offSynced rows with synchronous=FULL, then offTotal
	// in all with synchronous=OFF, prints "done" and waits to be killed.
	modeOff = "off"
	// modeDurable opens the database with synchronous=NORMAL, commits
	// offSynced-1 rows with plain transactions and one with
	// sqldb.DurableTx, then offTotal in all with plain transactions,
	// prints "done" and waits to be killed.
	modeDurable = "durable"
)

const (
	offSynced = 10
	offTotal  = 60
)

// rowBody is the body of row id: its length and bytes depend on id, so
// that a row rolled back to another row's bytes is caught.
func rowBody(id int64) []byte {
	return bytes.Repeat([]byte{byte(id), byte(id >> 8), 0xa5}, 30+int(id*397%2000))
}

// TestPowerLossChild is the child process of the power-loss tests: it
// writes rows to the database named in its environment, through the VFS,
// printing "ack ID" once each commit has returned. Run directly, it skips.
func TestPowerLossChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("child process of the power-loss tests")
	}
	mode, rest, _ := strings.Cut(spec, "|")
	dbPath, journal, _ := strings.Cut(rest, "|")
	j, err := OpenJournal(journal)
	if err != nil {
		t.Fatal(err)
	}
	if err := Register("faultvfs-child", j); err != nil {
		t.Fatal(err)
	}
	if err := MakeDefault("faultvfs-child"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if mode == modeDurable {
		durableChild(t, dbPath)
		return
	}
	db, err := sqldb.Open(ctx, sqldb.Config{URL: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	w := db.SQL()
	// Checkpoint often, so that the database file is written and the WAL
	// restarted over old frames many times per run.
	if _, err := w.Exec("PRAGMA wal_autocheckpoint=8"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := w.QueryRow("SELECT coalesce(max(id), 0) FROM t").Scan(&id); err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		if mode == modeOff && n == offSynced {
			if _, err := w.Exec("PRAGMA synchronous=OFF"); err != nil {
				t.Fatal(err)
			}
		}
		if mode == modeOff && n == offTotal {
			fmt.Println("done")
			select {}
		}
		id++
		if _, err := w.Exec("INSERT INTO t (id, body) VALUES (?, ?)", id, rowBody(id)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ack %d\n", id)
	}
}

// durableChild is TestPowerLossChild in modeDurable.
func durableChild(t *testing.T, dbPath string) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, sqldb.Config{URL: dbPath, Synchronous: sqldb.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= offTotal; id++ {
		insert := func(tx *sql.Tx) error {
			_, err := tx.Exec("INSERT INTO t (id, body) VALUES (?, ?)", id, rowBody(id))
			return err
		}
		if id == offSynced {
			err = db.DurableTx(ctx, insert)
		} else {
			err = db.Tx(ctx, insert)
		}
		if err != nil {
			t.Fatal(err)
		}
		var sync int
		if err := db.SQL().QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if sync != 1 {
			t.Fatalf("after row %d the writer's synchronous is %d, want 1 (NORMAL)", id, sync)
		}
		fmt.Printf("ack %d\n", id)
	}
	fmt.Println("done")
	select {}
}

// child is one run of TestPowerLossChild.
type child struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer

	mu   sync.Mutex
	acks []int64
	done bool
	eof  chan struct{}
}

func startChild(t *testing.T, mode, dbPath, journal string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPowerLossChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode+"|"+dbPath+"|"+journal)
	c := &child{cmd: cmd, stderr: &bytes.Buffer{}, eof: make(chan struct{})}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.eof)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			if s, ok := strings.CutPrefix(line, "ack "); ok {
				if id, err := strconv.ParseInt(s, 10, 64); err == nil {
					c.acks = append(c.acks, id)
				}
			} else if line == "done" {
				c.done = true
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// waitFor polls until cond holds, failing the test after a minute.
func (c *child) waitFor(t *testing.T, what string, cond func(acks int, done bool) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c.mu.Lock()
		ok := cond(len(c.acks), c.done)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.eof:
			c.cmd.Wait()
			t.Fatalf("child exited while waiting for %s:\n%s", what, c.stderr)
		default:
		}
		if time.Now().After(deadline) {
			c.kill()
			t.Fatalf("child: no %s within a minute:\n%s", what, c.stderr)
		}
		time.Sleep(time.Millisecond)
	}
}

// kill kills the child with SIGKILL and returns every ID it acknowledged,
// including those still in the pipe when it died.
func (c *child) kill() []int64 {
	c.cmd.Process.Kill()
	c.cmd.Wait()
	<-c.eof
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices64(c.acks)
}

func slices64(s []int64) []int64 { return append([]int64(nil), s...) }

// readRows opens the database without the VFS, checks its integrity and
// every row's body, and returns the row IDs.
func readRows(t *testing.T, dbPath string) map[int64]bool {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldb.Config{URL: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.SQL().QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check: %q, %v", check, err)
	}
	rows, err := db.SQL().Query("SELECT id, body FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[int64]bool{}
	for rows.Next() {
		var id int64
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, rowBody(id)) {
			t.Errorf("row %d has a wrong body (%d bytes)", id, len(body))
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestPowerLossKeepsCommits kills a writer with synchronous=FULL at random
// moments, simulates a power loss each time, and checks that every
// acknowledged commit survived and the database is intact.
func TestPowerLossKeepsCommits(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "data", "t.db")
	journal := filepath.Join(dir, "journal")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var acked []int64
	var total Result
	for cycle := range 6 {
		c := startChild(t, modeFull, dbPath, journal)
		start := len(acked)
		target := 1 + rng.IntN(40)
		c.waitFor(t, fmt.Sprintf("%d commits", target), func(n int, _ bool) bool { return n >= target })
		acked = append(acked, c.kill()...)
		res, err := Rollback(journal)
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		total.Records += res.Records
		total.Undone += res.Undone
		ids := readRows(t, dbPath)
		for _, id := range acked {
			if !ids[id] {
				t.Fatalf("cycle %d: acknowledged row %d lost (%d rows acknowledged this cycle, rollback %+v)", cycle, id, len(acked)-start, res)
			}
		}
	}
	if total.Records == 0 {
		t.Fatal("the VFS journaled nothing; the test proves nothing")
	}
	t.Logf("%d commits acknowledged, %d journal records, %d unsynced writes undone", len(acked), total.Records, total.Undone)
}

// TestPowerLossLosesUnsynced is the test that the test can fail: commits
// made with synchronous=OFF are never synced, so the simulated power loss
// must take every one of them, and only them.
func TestPowerLossLosesUnsynced(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "t.db")
	journal := filepath.Join(dir, "journal")
	res := powerLossKeepsSynced(t, modeOff, dbPath, journal, "committed with synchronous=FULL")
	if res.Undone == 0 {
		t.Errorf("nothing undone: %+v", res)
	}

	// The same run without the power loss keeps everything: what the
	// rollback took, the kill alone did not.
	dir = t.TempDir()
	dbPath = filepath.Join(dir, "t.db")
	journal = filepath.Join(dir, "journal")
	c := startChild(t, modeOff, dbPath, journal)
	c.waitFor(t, "done", func(_ int, done bool) bool { return done })
	c.kill()
	if err := Discard(journal); err != nil {
		t.Fatal(err)
	}
	if ids := readRows(t, dbPath); len(ids) != offTotal {
		t.Errorf("%d rows after a kill without power loss, want %d", len(ids), offTotal)
	}
}

// powerLossKeepsSynced runs a child in mode (modeOff or modeDurable) to
// the end, cuts the power, and checks that exactly the first offSynced
// rows, the synced ones (described by synced), survived.
func powerLossKeepsSynced(t *testing.T, mode, dbPath, journal, synced string) Result {
	t.Helper()
	c := startChild(t, mode, dbPath, journal)
	c.waitFor(t, "done", func(_ int, done bool) bool { return done })
	if n := len(c.kill()); n != offTotal {
		t.Fatalf("%d commits acknowledged, want %d:\n%s", n, offTotal, c.stderr)
	}
	res, err := Rollback(journal)
	if err != nil {
		t.Fatal(err)
	}
	ids := readRows(t, dbPath)
	for id := int64(1); id <= offSynced; id++ {
		if !ids[id] {
			t.Errorf("row %d, %s, lost", id, synced)
		}
	}
	if len(ids) != offSynced {
		t.Errorf("%d rows after the power loss, want the %d synced ones (rollback %+v)", len(ids), offSynced, res)
	}
	return res
}

// TestPowerLossDurableTx checks sqldb.DurableTx on a database opened with
// synchronous=NORMAL: after a power loss its row and every row committed
// before it are there, and the plain commits after it are not (they were
// never synced; if they were, the test would not show what DurableTx adds).
func TestPowerLossDurableTx(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "t.db")
	journal := filepath.Join(dir, "journal")
	powerLossKeepsSynced(t, modeDurable, dbPath, journal, "committed before or by the durable transaction")
}

// TestVFSInProcess opens a database through a registered (not default)
// VFS by name and checks that WAL mode works through it and that its
// writes are journaled.
func TestVFSInProcess(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// Registration lasts as long as the process, which may run this test
	// more than once.
	name := fmt.Sprintf("faultvfs-inprocess-%d", time.Now().UnixNano())
	if err := Register(name, j); err != nil {
		t.Fatal(err)
	}
	if err := Register(name, j); err == nil {
		t.Error("registering a name twice succeeded")
	}
	if err := Register("", j); err == nil {
		t.Error("registering an empty name succeeded")
	}
	if err := Register("faultvfs-nil", nil); err == nil {
		t.Error("registering without a journal succeeded")
	}
	if err := MakeDefault("faultvfs-no-such"); err == nil {
		t.Error("MakeDefault of an unknown name succeeded")
	}

	dbPath := filepath.Join(dir, "x.db")
	q := url.Values{}
	q.Set("vfs", name)
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	db, err := sql.Open("sqlite", "file://"+(&url.URL{Path: dbPath}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v; want wal", mode, err)
	}
	if _, err := db.Exec("CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := db.Exec("INSERT INTO t VALUES (?)", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 5 {
		t.Fatalf("count %d, %v", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	recs, torn, err := decodeJournal(f, st.Size())
	if err != nil || torn {
		t.Fatalf("decode journal: torn %v, %v", torn, err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[string(r.kind)+" "+filepath.Base(r.path)] = true
	}
	for _, want := range []string{"C x.db", "W x.db", "S x.db", "C x.db-wal", "W x.db-wal", "S x.db-wal", "D " + filepath.Base(dir), "X x.db-wal"} {
		if !seen[want] {
			t.Errorf("journal has no %q record; it has %v", want, seen)
		}
	}
}
