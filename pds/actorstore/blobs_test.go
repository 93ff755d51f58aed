package actorstore

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const profile = syntax.NSID("app.bsky.actor.profile")

func blobCID(s string) data.CID { return data.CIDForRaw([]byte(s)) }

func blobRef(c data.CID, size int64) data.Blob {
	return data.Blob{Ref: c, MimeType: "image/png", Size: size}
}

// withBlobs is a record of col referencing blobs (as avatar and in a list).
func withBlobs(t testing.TB, col syntax.NSID, blobs ...data.CID) []byte {
	t.Helper()
	rec := map[string]any{"$type": string(col), "createdAt": "2024-01-02T03:04:05.000Z"}
	var list []any
	for i, c := range blobs {
		if i == 0 {
			rec["avatar"] = blobRef(c, 10)
			continue
		}
		list = append(list, map[string]any{"image": blobRef(c, int64(10+i))})
	}
	if list != nil {
		rec["images"] = list
	}
	b, err := data.MarshalCBOR(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(col syntax.NSID, rkey string, b []byte) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionCreate, Collection: col, RKey: syntax.RecordKey(rkey), Value: b}
}

func update(col syntax.NSID, rkey string, b []byte) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionUpdate, Collection: col, RKey: syntax.RecordKey(rkey), Value: b}
}

func del(col syntax.NSID, rkey string) repo.RecordWrite {
	return repo.RecordWrite{Action: repo.ActionDelete, Collection: col, RKey: syntax.RecordKey(rkey)}
}

func putTemp(t *testing.T, s *Store, c data.CID, key string, at time.Time) BlobMeta {
	t.Helper()
	m, err := s.PutTempBlob(t.Context(), BlobMeta{CID: c, MimeType: "image/png", Size: 10, TempKey: key, CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBlobLifecycle(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(3)
	write(t, s, key, clock) // the first, empty commit

	a, b := blobCID("a"), blobCID("b")
	now := time.Now().Truncate(time.Microsecond)
	m := putTemp(t, s, a, "tempkeya", now)
	if m.Permanent() || m.TempKey != "tempkeya" || m.Size != 10 || m.MimeType != "image/png" || !m.CreatedAt.Equal(now) {
		t.Fatalf("PutTempBlob = %+v", m)
	}
	if _, err := s.Blob(ctx, b); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("Blob of an unknown CID: %v, want ErrBlobNotFound", err)
	}

	// A record referencing a (uploaded) and b (never uploaded).
	write(t, s, key, clock, put(profile, "self", withBlobs(t, profile, a, b)))
	if m, err := s.Blob(ctx, a); err != nil || !m.Permanent() {
		t.Fatalf("referenced blob: %+v, %v; want permanent", m, err)
	}
	for _, c := range []data.CID{a, b} {
		if ok, err := s.HasBlobRefs(ctx, c); err != nil || !ok {
			t.Fatalf("HasBlobRefs(%v) = %v, %v", c, ok, err)
		}
	}
	missing, err := s.ListMissingBlobs(ctx, data.CID{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 1 || missing[0].CID != b || missing[0].Collection != profile || missing[0].RKey != "self" {
		t.Fatalf("ListMissingBlobs = %+v, want b in %s/self", missing, profile)
	}
	listed, err := s.ListBlobs(ctx, "", data.CID{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || !slices.Contains(listed, a) || !slices.Contains(listed, b) {
		t.Fatalf("ListBlobs = %v, want a and b", listed)
	}

	// A second upload of a permanent blob leaves it permanent.
	if m := putTemp(t, s, a, "tempkeya2", now); !m.Permanent() {
		t.Fatalf("re-upload of a permanent blob made it temporary: %+v", m)
	}

	// A post also references a; updating the profile to drop a keeps it.
	write(t, s, key, clock, put(post, "p1", withBlobs(t, post, a)))
	write(t, s, key, clock, update(profile, "self", withBlobs(t, profile, b)))
	if s.BlobGCPending() {
		if g, err := s.BlobGarbage(ctx, 0); err != nil || len(g) != 0 {
			t.Fatalf("BlobGarbage with a still referenced = %v, %v", g, err)
		}
	}
	// Deleting the post drops a's last reference.
	write(t, s, key, clock, del(post, "p1"))
	if !s.BlobGCPending() {
		t.Fatal("no garbage pending after the last reference went")
	}
	g, err := s.BlobGarbage(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 1 || g[0] != a {
		t.Fatalf("BlobGarbage = %v, want [a]", g)
	}
	if err := s.DeleteBlobs(ctx, g); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blob(ctx, a); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("Blob after DeleteBlobs: %v", err)
	}
	if s.BlobGCPending() {
		t.Fatal("garbage still pending after DeleteBlobs")
	}
	if g, err := s.BlobGarbage(ctx, 0); err != nil || len(g) != 0 {
		t.Fatalf("BlobGarbage after DeleteBlobs = %v, %v", g, err)
	}
}

func TestBlobGarbageReferencedAgain(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openStore(t, dir, testDID)
	key, clock := testKey(t), repo.NewRevClock(4)
	a := blobCID("a")
	putTemp(t, s, a, "k", time.Now())
	write(t, s, key, clock, put(post, "p1", withBlobs(t, post, a)))
	write(t, s, key, clock, del(post, "p1"))
	// Referenced again before the queue was drained: not garbage.
	write(t, s, key, clock, put(post, "p2", withBlobs(t, post, a)))
	s.Close()

	// The queue is durable: a reopened store knows it has work.
	s = openStore(t, dir, testDID)
	if !s.BlobGCPending() {
		t.Fatal("reopened store lost its pending garbage")
	}
	g, err := s.BlobGarbage(ctx, 0)
	if err != nil || len(g) != 0 {
		t.Fatalf("BlobGarbage = %v, %v; want none (referenced again)", g, err)
	}
	if s.BlobGCPending() {
		t.Fatal("garbage still pending")
	}
	if m, err := s.Blob(ctx, a); err != nil || !m.Permanent() {
		t.Fatalf("Blob = %+v, %v", m, err)
	}
}

func TestDeleteStaleTempBlobs(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	now := time.Now()
	putTemp(t, s, blobCID("old"), "k1", now.Add(-2*time.Hour))
	putTemp(t, s, blobCID("new"), "k2", now)
	n, err := s.DeleteStaleTempBlobs(ctx, now.Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteStaleTempBlobs = %d, %v; want 1", n, err)
	}
	if _, err := s.Blob(ctx, blobCID("old")); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("stale blob kept: %v", err)
	}
	if _, err := s.Blob(ctx, blobCID("new")); err != nil {
		t.Fatalf("fresh blob: %v", err)
	}
	if err := s.MarkBlobPermanent(ctx, blobCID("new")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteStaleTempBlobs(ctx, now.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteStaleTempBlobs removed %d permanent blobs, %v", n, err)
	}
}

func TestPutTempBlobRejectsIncomplete(t *testing.T) {
	s := openStore(t, t.TempDir(), testDID)
	for _, m := range []BlobMeta{
		{MimeType: "a/b", TempKey: "k"},
		{CID: blobCID("x"), MimeType: "a/b"},
		{CID: blobCID("x"), TempKey: "k"},
		{CID: blobCID("x"), MimeType: "a/b", TempKey: "k", Size: -1},
	} {
		if _, err := s.PutTempBlob(t.Context(), m); err == nil {
			t.Errorf("PutTempBlob(%+v) succeeded", m)
		}
	}
}

func TestListBlobsPaging(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(5)
	var all []data.CID
	var revs []syntax.TID
	for i := range 5 {
		c := blobCID(fmt.Sprint(i))
		all = append(all, c)
		res := write(t, s, key, clock, put(post, fmt.Sprintf("p%d", i), withBlobs(t, post, c)))
		revs = append(revs, res.Rev)
	}
	slices.SortFunc(all, func(a, b data.CID) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	var got []data.CID
	var cursor data.CID
	for {
		page, err := s.ListBlobs(ctx, "", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if len(page) < 2 {
			break
		}
		cursor = page[len(page)-1]
	}
	if !slices.Equal(got, all) {
		t.Fatalf("paged ListBlobs = %v, want %v", got, all)
	}
	// since: only the blobs of the last two commits.
	since, err := s.ListBlobs(ctx, string(revs[2]), data.CID{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != 2 || !slices.Contains(since, blobCID("3")) || !slices.Contains(since, blobCID("4")) {
		t.Fatalf("ListBlobs since %s = %v", revs[2], since)
	}
	missing, err := s.ListMissingBlobs(ctx, all[1], 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 2 || missing[0].CID != all[2] || missing[1].CID != all[3] {
		t.Fatalf("ListMissingBlobs after %v = %+v", all[1], missing)
	}
}

func likeRecord(t testing.TB, subject string) []byte {
	t.Helper()
	b, err := data.MarshalCBOR(map[string]any{
		"$type":     string(like),
		"subject":   map[string]any{"uri": subject, "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
		"createdAt": "2024-01-02T03:04:05.000Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBacklinks(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(6)
	const subj = "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3k2a"
	write(t, s, key, clock, put(like, "l1", likeRecord(t, subj)), put(like, "l2", likeRecord(t, subj)),
		put(like, "l3", likeRecord(t, "at://did:web:example.com/app.bsky.feed.post/x")),
		put(like, "bad", likeRecord(t, "not a uri")))
	got, err := s.BacklinkConflicts(ctx, like, "subject.uri", subj)
	if err != nil || !slices.Equal(got, []syntax.RecordKey{"l1", "l2"}) {
		t.Fatalf("BacklinkConflicts = %v, %v; want [l1 l2]", got, err)
	}
	write(t, s, key, clock, del(like, "l1"), update(like, "l2", likeRecord(t, "at://did:web:example.com/app.bsky.feed.post/x")))
	if got, err := s.BacklinkConflicts(ctx, like, "subject.uri", subj); err != nil || len(got) != 0 {
		t.Fatalf("BacklinkConflicts after delete and update = %v, %v", got, err)
	}
	if got, err := s.BacklinkConflicts(ctx, like, "subject.uri", "at://did:web:example.com/app.bsky.feed.post/x"); err != nil || !slices.Equal(got, []syntax.RecordKey{"l2", "l3"}) {
		t.Fatalf("BacklinkConflicts = %v, %v; want [l2 l3]", got, err)
	}
}

func TestBacklinksOfRecords(t *testing.T) {
	const did = "did:plc:z72i7hdynmk6r22z27h6tvur"
	for _, tc := range []struct {
		col  string
		rec  map[string]any
		want []Backlink
	}{
		{"app.bsky.graph.follow", map[string]any{"subject": did}, []Backlink{{"subject", did}}},
		{"app.bsky.graph.block", map[string]any{"subject": did}, []Backlink{{"subject", did}}},
		{"app.bsky.graph.follow", map[string]any{"subject": "alice.test"}, nil},
		{"app.bsky.graph.follow", map[string]any{"subject": int64(3)}, nil},
		{"app.bsky.feed.repost", map[string]any{"subject": map[string]any{"uri": "at://" + did}}, []Backlink{{"subject.uri", "at://" + did}}},
		{"app.bsky.feed.repost", map[string]any{"subject": "at://" + did}, nil},
		{"app.bsky.feed.post", map[string]any{"subject": did}, nil},
	} {
		if got := Backlinks(tc.col, tc.rec); !slices.Equal(got, tc.want) {
			t.Errorf("Backlinks(%s, %v) = %v, want %v", tc.col, tc.rec, got, tc.want)
		}
	}
}

func TestListRecordDataAndCollections(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(7)
	if cols, err := s.ListCollections(ctx); err != nil || len(cols) != 0 {
		t.Fatalf("ListCollections of an empty store = %v, %v", cols, err)
	}
	var ws []repo.RecordWrite
	for i := range 5 {
		ws = append(ws, create(t, post, fmt.Sprintf("k%d", i), fmt.Sprint(i)))
	}
	ws = append(ws, create(t, like, "l", "x"), put(profile, "self", withBlobs(t, profile, blobCID("a"))))
	write(t, s, key, clock, ws...)

	cols, err := s.ListCollections(ctx)
	if err != nil || !slices.Equal(cols, []syntax.NSID{profile, like, post}) {
		t.Fatalf("ListCollections = %v, %v", cols, err)
	}
	page, next, err := s.ListRecordData(ctx, post, "", 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].RKey != "k4" || page[1].RKey != "k3" || next != "k3" {
		t.Fatalf("ListRecordData reverse = %+v next %q", page, next)
	}
	if want := record(t, post, "4"); !bytes.Equal(page[0].Value, want) || page[0].CID != data.CIDForCBOR(want) {
		t.Fatalf("ListRecordData value = %x", page[0].Value)
	}
	page, next, err = s.ListRecordData(ctx, post, "k2", 10, false)
	if err != nil || len(page) != 2 || page[0].RKey != "k3" || next != "" {
		t.Fatalf("ListRecordData after k2 = %+v %q %v", page, next, err)
	}

	c, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Records != 7 || c.Blocks == 0 || c.ExpectedBlobs != 1 || c.ImportedBlobs != 0 {
		t.Fatalf("Counts = %+v", c)
	}
}

// buildRepo makes a repository of did in memory holding writes and
// returns the import with its blocks and records.
func buildRepo(t *testing.T, writes ...repo.RecordWrite) (*repo.Repo, *repo.CommitResult, *repo.MemBlockStore) {
	t.Helper()
	ctx := t.Context()
	mem := repo.NewMemBlockStore()
	r, err := repo.NewRepo(testDID, mem)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	res, err := r.Commit(ctx, testKey(t), repo.NewRevClock(9))
	if err != nil {
		t.Fatal(err)
	}
	return r, res, mem
}

func replacementOf(t *testing.T, r *repo.Repo, res *repo.CommitResult, mem *repo.MemBlockStore, since syntax.TID) *Replacement {
	t.Helper()
	var recs []repo.Entry
	if err := r.Walk(t.Context(), func(path string, c data.CID) error {
		recs = append(recs, repo.Entry{Key: path, Value: c})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return &Replacement{Since: since, CommitCID: res.CID, Rev: res.Rev, Blocks: mem.Blocks(), Records: recs, Event: []byte("sync")}
}

func TestReplaceRepo(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	key, clock := testKey(t), repo.NewRevClock(8)
	old, kept, fresh := blobCID("old"), blobCID("kept"), blobCID("fresh")
	putTemp(t, s, old, "k1", time.Now())
	putTemp(t, s, kept, "k2", time.Now())
	first := write(t, s, key, clock, put(profile, "self", withBlobs(t, profile, old, kept)),
		create(t, post, "gone", "bye"), put(like, "l1", likeRecord(t, "at://did:web:example.com/a.b.c/x")))
	putTemp(t, s, fresh, "k3", time.Now())

	r, res, mem := buildRepo(t, create(t, post, "p1", "one"), put(post, "p2", withBlobs(t, post, kept, fresh)))
	imp := replacementOf(t, r, res, mem, "")
	if err := s.ReplaceRepo(ctx, imp); !errors.Is(err, ErrConcurrentWrite) {
		t.Fatalf("ReplaceRepo with a stale Since: %v, want ErrConcurrentWrite", err)
	}
	imp.Since = first.Rev
	if err := s.ReplaceRepo(ctx, imp); err != nil {
		t.Fatal(err)
	}

	head, rev, ok, err := s.Head(ctx)
	if err != nil || !ok || head != res.CID || rev != string(res.Rev) {
		t.Fatalf("Head = %v %q %v %v", head, rev, ok, err)
	}
	if _, _, err := s.GetRecord(ctx, post, "gone"); !errors.Is(err, repo.ErrRecordNotFound) {
		t.Fatalf("old record still there: %v", err)
	}
	if _, b, err := s.GetRecord(ctx, post, "p1"); err != nil || !bytes.Equal(b, record(t, post, "one")) {
		t.Fatalf("imported record: %x, %v", b, err)
	}
	if c, err := s.Counts(ctx); err != nil || c.Records != 2 || c.Blocks != int64(len(imp.Blocks)) || c.ExpectedBlobs != 2 {
		t.Fatalf("Counts = %+v, %v (want 2 records, %d blocks, 2 blobs)", c, err, len(imp.Blocks))
	}
	if got, err := s.BacklinkConflicts(ctx, like, "subject.uri", "at://did:web:example.com/a.b.c/x"); err != nil || len(got) != 0 {
		t.Fatalf("old backlinks kept: %v, %v", got, err)
	}
	// The blob the old repository alone referenced is garbage; the
	// temporary one the new repository references awaits the caller.
	g, err := s.BlobGarbage(ctx, 0)
	if err != nil || !slices.Equal(g, []data.CID{old}) {
		t.Fatalf("BlobGarbage = %v, %v; want [old]", g, err)
	}
	temp, err := s.TempBlobsReferenced(ctx)
	if err != nil || len(temp) != 1 || temp[0].CID != fresh || temp[0].TempKey != "k3" {
		t.Fatalf("TempBlobsReferenced = %+v, %v", temp, err)
	}
	// The outbox holds the #sync event.
	rows, err := s.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := rows[len(rows)-1]
	if last.Kind != KindSync || string(last.Body) != "sync" || last.Rev != string(res.Rev) {
		t.Fatalf("last outbox row = %+v", last)
	}
	// The repository opens at the new head.
	rr, err := repo.OpenRepo(ctx, s, head)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := rr.GetRecord(ctx, post, "p2"); err != nil {
		t.Fatal(err)
	}
}

func TestReplaceRepoRejectsBadInput(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, t.TempDir(), testDID)
	r, res, mem := buildRepo(t, create(t, post, "p1", "one"))
	imp := replacementOf(t, r, res, mem, "")
	for name, edit := range map[string]func(*Replacement){
		"no commit block": func(r *Replacement) { delete(r.Blocks, r.CommitCID) },
		"no rev":          func(r *Replacement) { r.Rev = "" },
		"bad path":        func(r *Replacement) { r.Records = []repo.Entry{{Key: "nope", Value: r.Records[0].Value}} },
		"missing record":  func(r *Replacement) { r.Records = []repo.Entry{{Key: "a.b.c/x", Value: blobCID("x")}} },
	} {
		cp := *imp
		cp.Blocks = maps(imp.Blocks)
		cp.Records = slices.Clone(imp.Records)
		edit(&cp)
		if err := s.ReplaceRepo(ctx, &cp); err == nil {
			t.Errorf("%s: ReplaceRepo succeeded", name)
		}
	}
	// A record block that is not a map cannot be indexed.
	bad, _ := data.MarshalCBOR([]any{"mimeType"})
	badCID := data.CIDForCBOR(bad)
	cp := *imp
	cp.Blocks = maps(imp.Blocks)
	cp.Blocks[badCID] = bad
	cp.Records = append(slices.Clone(imp.Records), repo.Entry{Key: "a.b.c/bad", Value: badCID})
	var re *RecordError
	if err := s.ReplaceRepo(ctx, &cp); !errors.As(err, &re) || !errors.Is(err, ErrInvalidRecord) || re.Path != "a.b.c/bad" {
		t.Fatalf("ReplaceRepo with a bad record: %v", err)
	}
	if _, _, ok, _ := s.Head(ctx); ok {
		t.Fatal("a refused replacement wrote a head")
	}
}

func maps(m map[data.CID][]byte) map[data.CID][]byte {
	out := make(map[data.CID][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestIndexRecordSkipsPlainRecords(t *testing.T) {
	// Bytes that are not a record at all are not decoded when they cannot
	// hold a blob and the collection has no backlinks.
	if idx, err := indexRecord(string(post), []byte{0xff}); err != nil || idx.blobs != nil {
		t.Fatalf("indexRecord of plain bytes = %+v, %v", idx, err)
	}
	if _, err := indexRecord(string(like), []byte{0xff}); err == nil {
		t.Fatal("indexRecord decoded garbage of a backlink collection")
	}
	idx, err := indexRecord(string(post), withBlobs(t, post, blobCID("a"), blobCID("b"), blobCID("a")))
	if err != nil || len(idx.blobs) != 2 {
		t.Fatalf("indexRecord = %+v, %v; want two distinct blobs", idx, err)
	}
}

func FuzzIndexRecord(f *testing.F) {
	f.Add(string(post), withBlobs(f, post, blobCID("a")))
	f.Add(string(like), likeRecord(f, "at://did:web:example.com/a.b.c/x"))
	f.Add(string(like), []byte{0xa1, 0x68, 'm', 'i', 'm', 'e', 'T', 'y', 'p', 'e'})
	f.Fuzz(func(t *testing.T, col string, b []byte) {
		idx, err := indexRecord(col, b)
		if err != nil {
			return
		}
		for _, c := range idx.blobs {
			if !c.Defined() {
				t.Fatalf("undefined blob CID from %x", b)
			}
		}
	})
}
