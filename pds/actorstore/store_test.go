package actorstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const (
	testDID  = syntax.DID("did:plc:z72i7hdynmk6r22z27h6tvur")
	testDID2 = syntax.DID("did:web:example.com")
	post     = syntax.NSID("app.bsky.feed.post")
	like     = syntax.NSID("app.bsky.feed.like")
)

func openStore(t testing.TB, dir string, did syntax.DID) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, did)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testKey(t testing.TB) crypto.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateP256()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func record(t testing.TB, typ syntax.NSID, text string) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{"$type": string(typ), "text": text, "createdAt": "2024-01-02T03:04:05.000Z"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func create(t testing.TB, col syntax.NSID, rkey, text string) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionCreate, Collection: col, RKey: syntax.RecordKey(rkey), Value: record(t, col, text)}
}

// openRepo opens the account's repository at the stored head, or a new one.
func openRepo(t testing.TB, s *Store) *repo.Repo {
	t.Helper()
	r, err := openRepoErr(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openRepoErr(s *Store) (*repo.Repo, error) {
	ctx := context.Background()
	head, _, ok, err := s.Head(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		return repo.OpenRepo(ctx, s.CommitStore(), head)
	}
	return repo.NewRepo(s.DID(), s.CommitStore())
}

func eventFor(res *repo.CommitResult) []byte { return []byte("event " + string(res.Rev)) }

// write commits writes on top of the stored head and stores the commit.
func write(t testing.TB, s *Store, key crypto.PrivateKey, clock *repo.RevClock, writes ...repo.RecordWrite) *repo.CommitResult {
	t.Helper()
	res, err := writeErr(s, key, clock, writes...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// writeErr is write for goroutines other than the test's.
func writeErr(s *Store, key crypto.PrivateKey, clock *repo.RevClock, writes ...repo.RecordWrite) (*repo.CommitResult, error) {
	ctx := context.Background()
	s.Lock()
	defer s.Unlock()
	r, err := openRepoErr(s)
	if err != nil {
		return nil, err
	}
	if err := r.Apply(ctx, writes); err != nil {
		return nil, err
	}
	res, err := r.Commit(ctx, key, clock)
	if err != nil {
		return nil, err
	}
	if _, err := s.ApplyCommit(ctx, res, eventFor(res)); err != nil {
		return nil, err
	}
	return res, nil
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, dir, testDID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := s.Head(ctx); err != nil || ok {
		t.Fatalf("new store Head: ok=%v err=%v, want no head", ok, err)
	}
	res := write(t, s, testKey(t), repo.NewRevClock(1), create(t, post, "3jzfcijpj2z2a", "hello"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir, testDID)
	head, rev, ok, err := s.Head(ctx)
	if err != nil || !ok || head != res.CID || rev != string(res.Rev) {
		t.Fatalf("Head after reopen = %v %q %v %v, want %v %q", head, rev, ok, err, res.CID, res.Rev)
	}
	c, b, err := s.GetRecord(ctx, post, "3jzfcijpj2z2a")
	if err != nil {
		t.Fatal(err)
	}
	if want := record(t, post, "hello"); !bytes.Equal(b, want) || c != data.CIDForCBOR(want) {
		t.Fatalf("GetRecord after reopen = %v %x", c, b)
	}
	// The repository opened from the reopened store reads the same record.
	r, err := repo.OpenRepo(ctx, s, head)
	if err != nil {
		t.Fatal(err)
	}
	if _, rb, err := r.GetRecord(ctx, post, "3jzfcijpj2z2a"); err != nil || !bytes.Equal(rb, b) {
		t.Fatalf("repo GetRecord = %x, %v", rb, err)
	}
}

func TestFileMode(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, testDID)
	if want := filepath.Join(Dir(dir, testDID), FileName); s.Path() != want {
		t.Errorf("Path = %q, want %q", s.Path(), want)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("database file mode %v, want 0600", m)
	}
}

func TestOpenRejectsBadDID(t *testing.T) {
	if _, err := Open(t.Context(), t.TempDir(), "not-a-did"); err == nil {
		t.Fatal("Open with an invalid DID succeeded")
	}
}

func TestCommitRoundTrip(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(2)

	// Before ApplyCommit, the commit's blocks are not in the store.
	r := openRepo(t, s)
	if err := r.Apply(ctx, []repo.RecordWrite{create(t, post, "a", "one")}); err != nil {
		t.Fatal(err)
	}
	first, err := r.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	var missing *repo.MissingBlockError
	if _, err := s.GetBlock(ctx, first.CID); !errors.As(err, &missing) {
		t.Fatalf("GetBlock before ApplyCommit: %v, want MissingBlockError", err)
	}
	if _, err := s.ApplyCommit(ctx, first, eventFor(first)); err != nil {
		t.Fatal(err)
	}
	for c, want := range first.Blocks {
		got, err := s.GetBlock(ctx, c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("GetBlock(%v) = %x, %v", c, got, err)
		}
	}

	second := write(t, s, key, clock,
		create(t, post, "b", "two"), create(t, post, "c", "three"), create(t, like, "x", "liked"))
	third := write(t, s, key, clock,
		repo.RecordWrite{Action: repo.ActionUpdate, Collection: post, RKey: "a", Value: record(t, post, "one, edited")},
		repo.RecordWrite{Action: repo.ActionDelete, Collection: post, RKey: "b"})
	if second.Since != first.Rev || third.Since != second.Rev {
		t.Fatalf("since chain broken: %q %q %q", first.Rev, second.Since, third.Since)
	}

	head, rev, ok, err := s.Head(ctx)
	if err != nil || !ok || head != third.CID || rev != string(third.Rev) {
		t.Fatalf("Head = %v %q %v %v, want %v %q", head, rev, ok, err, third.CID, third.Rev)
	}

	// The index matches the repository at the head.
	r = openRepo(t, s)
	want := map[string]data.CID{}
	if err := r.Walk(ctx, func(p string, c data.CID) error { want[p] = c; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 {
		t.Fatalf("repository holds %d records, want 3: %v", len(want), want)
	}
	for _, col := range []syntax.NSID{post, like} {
		refs, next, err := s.ListRecords(ctx, col, "", 0, false)
		if err != nil || next != "" {
			t.Fatalf("ListRecords(%s) cursor %q err %v", col, next, err)
		}
		for _, ref := range refs {
			p := repo.RecordPath(col, ref.RKey)
			if want[p] != ref.CID {
				t.Errorf("index %s = %v, repo has %v", p, ref.CID, want[p])
			}
			delete(want, p)
		}
	}
	if len(want) != 0 {
		t.Errorf("records missing from the index: %v", want)
	}

	c, b, err := s.GetRecord(ctx, post, "a")
	if err != nil {
		t.Fatal(err)
	}
	if wantB := record(t, post, "one, edited"); !bytes.Equal(b, wantB) || c != data.CIDForCBOR(wantB) {
		t.Errorf("updated record = %v %q", c, b)
	}
	if _, _, err := s.GetRecord(ctx, post, "b"); !errors.Is(err, repo.ErrRecordNotFound) {
		t.Errorf("deleted record: err = %v, want ErrRecordNotFound", err)
	}
}

func TestListRecordsPaging(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	var writes []repo.RecordWrite
	var keys []string
	for i := range 7 {
		k := fmt.Sprintf("k%02d", i)
		keys = append(keys, k)
		writes = append(writes, create(t, post, k, k))
	}
	writes = append(writes, create(t, like, "other", "x"))
	write(t, s, testKey(t), repo.NewRevClock(3), writes...)

	for _, reverse := range []bool{false, true} {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			refs, next, err := s.ListRecords(ctx, post, cursor, 3, reverse)
			if err != nil {
				t.Fatal(err)
			}
			if len(refs) > 3 {
				t.Fatalf("page of %d records, limit 3", len(refs))
			}
			for _, r := range refs {
				got = append(got, string(r.RKey))
			}
			if next == "" {
				break
			}
			cursor = next
		}
		want := make([]string, len(keys))
		for i, k := range keys {
			if reverse {
				want[len(keys)-1-i] = k
			} else {
				want[i] = k
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("reverse=%v: listed %v, want %v", reverse, got, want)
		}
	}
}

func TestStaleSinceRefused(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(4)
	first := write(t, s, key, clock, create(t, post, "a", "one"))

	// Two writers build on the same head; the second to store loses.
	r1, r2 := openRepo(t, s), openRepo(t, s)
	if err := r1.Apply(ctx, []repo.RecordWrite{create(t, post, "b", "winner")}); err != nil {
		t.Fatal(err)
	}
	if err := r2.Apply(ctx, []repo.RecordWrite{create(t, post, "c", "loser")}); err != nil {
		t.Fatal(err)
	}
	win, err := r1.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	lose, err := r2.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	if lose.Since != first.Rev {
		t.Fatalf("loser built on %q, want %q", lose.Since, first.Rev)
	}
	if _, err := s.ApplyCommit(ctx, win, eventFor(win)); err != nil {
		t.Fatal(err)
	}
	_, err = s.ApplyCommit(ctx, lose, eventFor(lose))
	var cw *ConcurrentWriteError
	if !errors.Is(err, ErrConcurrentWrite) || !errors.As(err, &cw) || cw.Head != string(win.Rev) {
		t.Fatalf("stale ApplyCommit: %v, want ConcurrentWriteError with head %q", err, win.Rev)
	}

	// Nothing of the refused commit was written.
	head, rev, _, err := s.Head(ctx)
	if err != nil || head != win.CID || rev != string(win.Rev) {
		t.Fatalf("Head = %v %q %v, want the winner %v", head, rev, err, win.CID)
	}
	if _, _, err := s.GetRecord(ctx, post, "c"); !errors.Is(err, repo.ErrRecordNotFound) {
		t.Errorf("refused record indexed: %v", err)
	}
	for c := range lose.Blocks {
		if _, ok := win.Blocks[c]; ok {
			continue
		}
		if _, ok := first.Blocks[c]; ok {
			continue
		}
		if _, err := s.GetBlock(ctx, c); err == nil {
			t.Errorf("block %v of the refused commit was stored", c)
		}
	}
	rows, err := s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Rev != string(win.Rev) {
		t.Fatalf("outbox = %+v, want the two accepted commits", rows)
	}

	// A first commit is refused once the repository has a head.
	fresh, err := repo.NewRepo(testDID, s.CommitStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Apply(ctx, []repo.RecordWrite{create(t, post, "z", "z")}); err != nil {
		t.Fatal(err)
	}
	res, err := fresh.Commit(ctx, key, clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyCommit(ctx, res, nil); !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("first commit over an existing head: %v, want ErrConcurrentWrite", err)
	}
}

func TestApplyCommitRejectsMalformed(t *testing.T) {
	s := openStore(t, t.TempDir(), testDID)
	if _, err := s.ApplyCommit(t.Context(), &repo.CommitResult{}, nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("empty result: %v, want ErrInvalidCommit", err)
	}
	res := &repo.CommitResult{CID: data.CIDForCBOR([]byte{0xa0}), Rev: "3jzfcijpj2z2a",
		Ops: []repo.Op{{Action: repo.ActionCreate, Path: "no-slash"}}}
	if _, err := s.ApplyCommit(t.Context(), res, nil); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("bad path: %v, want ErrInvalidCommit", err)
	}
	if _, _, ok, _ := s.Head(t.Context()); ok {
		t.Fatal("malformed commit set the head")
	}
}

func TestOutbox(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(5)
	var results []*repo.CommitResult
	for i := range 5 {
		results = append(results, write(t, s, key, clock, create(t, post, fmt.Sprintf("r%d", i), "x")))
	}
	rows, err := s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(results) {
		t.Fatalf("%d outbox rows, want %d", len(rows), len(results))
	}
	for i, row := range rows {
		res := results[i]
		if row.Rev != string(res.Rev) || row.Kind != KindCommit || !bytes.Equal(row.Body, eventFor(res)) {
			t.Errorf("row %d = %+v, want rev %q and its event", i, row, res.Rev)
		}
		if i > 0 && row.ID <= rows[i-1].ID {
			t.Errorf("outbox ids not increasing: %d after %d", row.ID, rows[i-1].ID)
		}
	}

	page, err := s.Outbox(ctx, rows[1].ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != rows[2].ID || page[1].ID != rows[3].ID {
		t.Fatalf("Outbox(after %d, 2) = %+v", rows[1].ID, page)
	}

	if err := s.AckOutbox(ctx, rows[2].ID); err != nil {
		t.Fatal(err)
	}
	// Acknowledged rows go with the store's next write transaction: here
	// a Sync, below a commit.
	if kept, err := s.Outbox(ctx, 0, 0); err != nil || len(kept) != len(rows) {
		t.Fatalf("before the next write, outbox = %d rows (%v), want all %d", len(kept), err, len(rows))
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0].ID != rows[3].ID || left[1].ID != rows[4].ID {
		t.Fatalf("after ack, outbox = %+v, want rows 3 and 4", left)
	}

	// IDs are not reused after acknowledged rows are deleted.
	if err := s.AckOutbox(ctx, rows[4].ID); err != nil {
		t.Fatal(err)
	}
	write(t, s, key, clock, create(t, post, "later", "x"))
	after, err := s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0].ID <= rows[4].ID {
		t.Fatalf("new outbox row %+v, want an id above %d", after, rows[4].ID)
	}
}

// An acknowledgement above every row the store has held (one meant for an
// earlier database of the same account) deletes none of its later rows.
func TestAckOutboxAboveRows(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key := testKey(t)
	clock := repo.NewRevClock(1)
	if err := s.AckOutbox(ctx, 50); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		write(t, s, key, clock, create(t, post, fmt.Sprintf("3k%011d", i), "x"))
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("outbox holds %d rows after an acknowledgement from before them, want 3", len(rows))
	}
}

func TestPutBlock(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	b := record(t, post, "loose block")
	c := data.CIDForCBOR(b)
	if err := s.PutBlock(ctx, c, b); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlock(ctx, c, b); err != nil {
		t.Fatalf("second PutBlock of the same block: %v", err)
	}
	got, err := s.GetBlock(ctx, c)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("GetBlock = %x, %v", got, err)
	}
}

func TestParallelAccounts(t *testing.T) {
	dir := t.TempDir()
	const commits = 10
	dids := []syntax.DID{testDID, testDID2}
	stores := make([]*Store, len(dids))
	for i, did := range dids {
		stores[i] = openStore(t, dir, did)
	}
	key, clock := testKey(t), repo.NewRevClock(6)

	var wg sync.WaitGroup
	for _, s := range stores {
		// Two writers per account contend for its lock.
		for w := range 2 {
			var writes []repo.RecordWrite
			for i := range commits {
				writes = append(writes, create(t, post, fmt.Sprintf("w%d-%02d", w, i), "x"))
			}
			wg.Go(func() {
				for _, wr := range writes {
					if _, err := writeErr(s, key, clock, wr); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		// A reader runs alongside.
		wg.Go(func() {
			for range commits {
				if _, _, err := s.ListRecords(context.Background(), post, "", 0, false); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	for _, s := range stores {
		refs, _, err := s.ListRecords(t.Context(), post, "", MaxListLimit, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != 2*commits {
			t.Errorf("%s: %d records, want %d", s.DID(), len(refs), 2*commits)
		}
		rows, err := s.Outbox(t.Context(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2*commits {
			t.Errorf("%s: %d outbox rows, want %d", s.DID(), len(rows), 2*commits)
		}
		for i := 1; i < len(rows); i++ {
			if rows[i].Rev <= rows[i-1].Rev {
				t.Errorf("%s: outbox revs out of order: %q after %q", s.DID(), rows[i].Rev, rows[i-1].Rev)
			}
		}
		r := openRepo(t, s)
		n := 0
		if err := r.Walk(t.Context(), func(string, data.CID) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 2*commits {
			t.Errorf("%s: repository holds %d records, want %d", s.DID(), n, 2*commits)
		}
	}
}
