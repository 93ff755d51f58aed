package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	indigosyntax "github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	gocar "github.com/ipld/go-car"
	carutil "github.com/ipld/go-car/util"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// The repository benchmarks give both implementations the same records:
// keys "app.bsky.feed.post/<tid>" with TIDs a few milliseconds apart, and
// values the CIDs of small DAG-CBOR posts, encoded once by Welkin and
// handed to indigo as the same bytes and CIDs.

const (
	repoDID       = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	repoTIDStart  = int64(1_767_225_600_000_000) // 2026-01-01, in microseconds
	repoTIDStep   = int64(3_217)                 // microseconds between records
	repoSmall     = 10_000
	repoLarge     = 100_000
	repoFreshBase = 50_000_000 // the record number of the key the commit benchmark writes
)

// repoRecord is one record: its MST key, block and CID in both forms.
type repoRecord struct {
	key   string
	block []byte
	cid   data.CID
	icid  cid.Cid
}

// repoRecordN makes record number i. Its key's TID follows those of the
// records before it.
func repoRecordN(tb testing.TB, i int) repoRecord {
	tb.Helper()
	tid := syntax.NewTID(repoTIDStart+int64(i)*repoTIDStep, uint(i%1024))
	rec := map[string]any{
		"$type":     "app.bsky.feed.post",
		"text":      fmt.Sprintf("Post number %d from the repository benchmark.", i),
		"createdAt": "2026-01-01T00:00:00.000Z",
		"langs":     []any{"en"},
	}
	b, err := data.MarshalCBOR(rec)
	if err != nil {
		tb.Fatal(err)
	}
	c := data.CIDForCBOR(b)
	ic, err := cid.Cast(c.Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	return repoRecord{key: "app.bsky.feed.post/" + string(tid), block: b, cid: c, icid: ic}
}

// repoRecords returns the first n records, computed once per n.
func repoRecords(tb testing.TB, n int) []repoRecord {
	tb.Helper()
	recordsMu.Lock()
	defer recordsMu.Unlock()
	if r, ok := recordsCache[n]; ok {
		return r
	}
	r := make([]repoRecord, n)
	for i := range r {
		r[i] = repoRecordN(tb, i)
	}
	recordsCache[n] = r
	return r
}

var (
	recordsMu    sync.Mutex
	recordsCache = map[int][]repoRecord{}
)

func welkinMap(recs []repoRecord) map[string]data.CID {
	m := make(map[string]data.CID, len(recs))
	for _, r := range recs {
		m[r.key] = r.cid
	}
	return m
}

func indigoMap(recs []repoRecord) map[string]cid.Cid {
	m := make(map[string]cid.Cid, len(recs))
	for _, r := range recs {
		m[r.key] = r.icid
	}
	return m
}

// repoKeys returns the K-256 key pair both implementations sign with.
func repoKeys(tb testing.TB) keyPair { return keyFor(tb, "k256") }

func toIndigoCID(tb testing.TB, c data.CID) cid.Cid {
	tb.Helper()
	ic, err := cid.Cast(c.Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	return ic
}

func toWelkinCID(tb testing.TB, c cid.Cid) data.CID {
	tb.Helper()
	wc, err := data.CIDFromBytes(c.Bytes())
	if err != nil {
		tb.Fatal(err)
	}
	return wc
}

// --- Welkin: a stored repository, its export and its import ---

// welkinRepo is a whole repository held in a block store.
type welkinRepo struct {
	store  *repo.MemBlockStore
	tree   *repo.Tree
	commit data.CID
	rev    syntax.TID
}

// buildWelkinRepo builds the tree of recs, stores its nodes and records and
// a commit signed with key.
func buildWelkinRepo(tb testing.TB, recs []repoRecord, key crypto.PrivateKey) welkinRepo {
	tb.Helper()
	ctx := context.Background()
	tree, err := repo.BuildTree(welkinMap(recs))
	if err != nil {
		tb.Fatal(err)
	}
	store := repo.NewMemBlockStore()
	if err := tree.WriteBlocks(ctx, store); err != nil {
		tb.Fatal(err)
	}
	for _, r := range recs {
		if err := store.PutBlock(ctx, r.cid, r.block); err != nil {
			tb.Fatal(err)
		}
	}
	root, err := tree.Root()
	if err != nil {
		tb.Fatal(err)
	}
	rev := syntax.NewTID(repoTIDStart+int64(len(recs)+1)*repoTIDStep, 7)
	c := repo.NewCommit(syntax.DID(repoDID), root, rev)
	if err := c.Sign(key); err != nil {
		tb.Fatal(err)
	}
	cb, err := c.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	cc := data.CIDForCBOR(cb)
	if err := store.PutBlock(ctx, cc, cb); err != nil {
		tb.Fatal(err)
	}
	return welkinRepo{store: store, tree: tree, commit: cc, rev: rev}
}

// exportWelkin writes the repository whose commit is commitCID as a CAR
// file with repo.ExportCAR: the commit, then the tree depth first, each
// node followed by its left subtree and then, entry by entry, the entry's
// record and the subtree to its right.
func exportWelkin(ctx context.Context, w io.Writer, store repo.BlockStore, commitCID data.CID) error {
	return repo.ExportCAR(ctx, store, commitCID, w)
}

// importWelkin reads a repository CAR file as an untrusted export with
// repo.ImportCAR into a fresh MemBlockStore: every block is checked
// against its CID, the commit is parsed, its DID checked and its signature
// verified, the whole tree is validated and every record must be present.
// It returns the commit.
func importWelkin(ctx context.Context, b []byte, pub crypto.PublicKey) (*repo.Commit, *repo.MemBlockStore, error) {
	store := repo.NewMemBlockStore()
	res, err := repo.ImportCAR(ctx, bytes.NewReader(b), store, repo.ImportOptions{DID: repoDID, PublicKey: pub})
	if err != nil {
		return nil, nil, err
	}
	if !res.SignatureChecked {
		return nil, nil, errors.New("signature not checked")
	}
	return res.Commit, store, nil
}

// --- indigo: the same operations through its atproto/repo packages ---

// mapBlockstore is the smallest blockstore.Blockstore, for the blocks
// indigo's MST writes.
type mapBlockstore struct{ m map[cid.Cid]blocks.Block }

func newMapBlockstore() *mapBlockstore { return &mapBlockstore{m: map[cid.Cid]blocks.Block{}} }

func (s *mapBlockstore) DeleteBlock(_ context.Context, c cid.Cid) error { delete(s.m, c); return nil }
func (s *mapBlockstore) Has(_ context.Context, c cid.Cid) (bool, error) {
	_, ok := s.m[c]
	return ok, nil
}
func (s *mapBlockstore) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	if b, ok := s.m[c]; ok {
		return b, nil
	}
	return nil, &ipld.ErrNotFound{Cid: c}
}
func (s *mapBlockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	b, err := s.Get(ctx, c)
	if err != nil {
		return 0, err
	}
	return len(b.RawData()), nil
}
func (s *mapBlockstore) Put(_ context.Context, b blocks.Block) error { s.m[b.Cid()] = b; return nil }
func (s *mapBlockstore) PutMany(ctx context.Context, bs []blocks.Block) error {
	for _, b := range bs {
		s.m[b.Cid()] = b
	}
	return nil
}
func (s *mapBlockstore) AllKeysChan(context.Context) (<-chan cid.Cid, error) {
	ch := make(chan cid.Cid, len(s.m))
	for c := range s.m {
		ch <- c
	}
	close(ch)
	return ch, nil
}
func (s *mapBlockstore) HashOnRead(bool) {}

// indigoRepo is a whole repository in indigo's TinyBlockstore.
type indigoRepo struct {
	store  *indigorepo.TinyBlockstore
	blocks *mapBlockstore // the same blocks, for the agreement tests
	commit cid.Cid
}

func indigoCommitBlock(c *indigorepo.Commit) ([]byte, cid.Cid, error) {
	var buf bytes.Buffer
	if err := c.MarshalCBOR(&buf); err != nil {
		return nil, cid.Undef, err
	}
	cc, err := indigoPrefix.Sum(buf.Bytes())
	return buf.Bytes(), cc, err
}

// buildIndigoRepo builds the tree of recs with indigo, stores its nodes and
// records and a commit signed with key.
func buildIndigoRepo(tb testing.TB, recs []repoRecord, key atcrypto.PrivateKey) indigoRepo {
	tb.Helper()
	ctx := context.Background()
	tree, err := mst.LoadTreeFromMap(indigoMap(recs))
	if err != nil {
		tb.Fatal(err)
	}
	bs := newMapBlockstore()
	root, err := tree.WriteDiffBlocks(ctx, bs)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range recs {
		blk, err := blocks.NewBlockWithCid(r.block, r.icid)
		if err != nil {
			tb.Fatal(err)
		}
		bs.Put(ctx, blk)
	}
	rev := syntax.NewTID(repoTIDStart+int64(len(recs)+1)*repoTIDStep, 7)
	c := indigorepo.Commit{DID: repoDID, Version: indigorepo.ATPROTO_REPO_VERSION, Data: *root, Rev: string(rev)}
	if err := c.Sign(key); err != nil {
		tb.Fatal(err)
	}
	cb, cc, err := indigoCommitBlock(&c)
	if err != nil {
		tb.Fatal(err)
	}
	blk, err := blocks.NewBlockWithCid(cb, cc)
	if err != nil {
		tb.Fatal(err)
	}
	bs.Put(ctx, blk)
	tiny := indigorepo.NewTinyBlockstore()
	for _, b := range bs.m {
		tiny.Put(ctx, b)
	}
	return indigoRepo{store: tiny, blocks: bs, commit: cc}
}

// exportIndigo writes the same CAR file as exportWelkin, in the same
// order, with indigo's node decoding and go-car's writer.
func exportIndigo(ctx context.Context, w io.Writer, store *indigorepo.TinyBlockstore, commitCID cid.Cid) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := gocar.WriteHeader(&gocar.CarHeader{Roots: []cid.Cid{commitCID}, Version: 1}, bw); err != nil {
		return err
	}
	put := func(c cid.Cid) ([]byte, error) {
		blk, err := store.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return blk.RawData(), carutil.LdWrite(bw, c.Bytes(), blk.RawData())
	}
	cb, err := put(commitCID)
	if err != nil {
		return err
	}
	var c indigorepo.Commit
	if err := c.UnmarshalCBOR(bytes.NewReader(cb)); err != nil {
		return err
	}
	var walk func(n cid.Cid) error
	walk = func(n cid.Cid) error {
		b, err := put(n)
		if err != nil {
			return err
		}
		nd, err := mst.NodeDataFromCBOR(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if nd.Left != nil {
			if err := walk(*nd.Left); err != nil {
				return err
			}
		}
		for _, e := range nd.Entries {
			if _, err := put(e.Value); err != nil {
				return err
			}
			if e.Right != nil {
				if err := walk(*e.Right); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(c.Data); err != nil {
		return err
	}
	return bw.Flush()
}

// importIndigo is importWelkin with indigo: go-car reads the blocks (its
// reader does not check them, so each is hashed here), the commit is
// decoded, checked and its signature verified, and the tree is loaded and
// checked with mst.Tree.Verify.
func importIndigo(ctx context.Context, b []byte, pub atcrypto.PublicKey) (*indigorepo.Commit, *mst.Tree, error) {
	cr, err := gocar.NewCarReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	if len(cr.Header.Roots) == 0 {
		return nil, nil, errors.New("no root")
	}
	bs := indigorepo.NewTinyBlockstore()
	for {
		blk, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		sum, err := blk.Cid().Prefix().Sum(blk.RawData())
		if err != nil {
			return nil, nil, err
		}
		if !sum.Equals(blk.Cid()) {
			return nil, nil, fmt.Errorf("block %s does not match its CID", blk.Cid())
		}
		if err := bs.Put(ctx, blk); err != nil {
			return nil, nil, err
		}
	}
	cb, err := bs.Get(ctx, cr.Header.Roots[0])
	if err != nil {
		return nil, nil, err
	}
	var c indigorepo.Commit
	if err := c.UnmarshalCBOR(bytes.NewReader(cb.RawData())); err != nil {
		return nil, nil, err
	}
	if err := c.VerifyStructure(); err != nil {
		return nil, nil, err
	}
	if err := c.VerifySignature(pub); err != nil {
		return nil, nil, err
	}
	tree, err := mst.LoadTreeFromStore(ctx, bs, c.Data)
	if err != nil {
		return nil, nil, err
	}
	if err := tree.Verify(); err != nil {
		return nil, nil, err
	}
	return &c, tree, nil
}

// --- commit slices ---

// commitSlice is a sync 1.1 #commit event made by Welkin: one record op
// on a repository, with the CAR slice of blocks it carries.
type commitSlice struct {
	car      []byte
	commit   data.CID
	rev      syntax.TID
	ops      []repo.Op
	prevData data.CID
	newData  data.CID
}

// indigoMessage turns the event into indigo's firehose message type.
func (s commitSlice) indigoMessage(tb testing.TB) *comatproto.SyncSubscribeRepos_Commit {
	tb.Helper()
	prev := lexutil.LexLink(toIndigoCID(tb, s.prevData))
	msg := &comatproto.SyncSubscribeRepos_Commit{
		Blocks:   lexutil.LexBytes(s.car),
		Commit:   lexutil.LexLink(toIndigoCID(tb, s.commit)),
		PrevData: &prev,
		Repo:     repoDID,
		Rev:      string(s.rev),
		Time:     "2026-01-01T00:00:00.000Z",
		Blobs:    []lexutil.LexLink{},
	}
	for _, op := range s.ops {
		rop := &comatproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path}
		if op.CID != nil {
			l := lexutil.LexLink(toIndigoCID(tb, *op.CID))
			rop.Cid = &l
		}
		if op.Prev != nil {
			l := lexutil.LexLink(toIndigoCID(tb, *op.Prev))
			rop.Prev = &l
		}
		msg.Ops = append(msg.Ops, rop)
	}
	return msg
}

// makeCommitSlice applies one op to tree (whose change set must be empty)
// with Welkin and returns the event. rec is the new record for a create or
// update; a delete ignores it.
func makeCommitSlice(tb testing.TB, tree *repo.Tree, key crypto.PrivateKey, action, path string, rec *repoRecord, rev syntax.TID) commitSlice {
	tb.Helper()
	prevData, err := tree.Root()
	if err != nil {
		tb.Fatal(err)
	}
	old, had, err := tree.Get(path)
	if err != nil {
		tb.Fatal(err)
	}
	op := repo.Op{Action: action, Path: path}
	if had {
		op.Prev = &old
	}
	switch action {
	case "create", "update":
		c := rec.cid
		op.CID = &c
		err = tree.Put(path, rec.cid)
	case "delete":
		err = tree.Delete(path)
	}
	if err != nil {
		tb.Fatal(err)
	}
	newData, err := tree.Root()
	if err != nil {
		tb.Fatal(err)
	}
	blks, err := tree.CommitSlice()
	if err != nil {
		tb.Fatal(err)
	}
	if rec != nil && action != "delete" {
		blks[rec.cid] = rec.block
	}
	c := repo.NewCommit(syntax.DID(repoDID), newData, rev)
	if err := c.Sign(key); err != nil {
		tb.Fatal(err)
	}
	cb, err := c.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	cc := data.CIDForCBOR(cb)
	blks[cc] = cb
	var buf bytes.Buffer
	if err := car.WriteAll(&buf, []data.CID{cc}, blks); err != nil {
		tb.Fatal(err)
	}
	return commitSlice{car: buf.Bytes(), commit: cc, rev: rev, ops: []repo.Op{op}, prevData: prevData, newData: newData}
}

// invertWelkin checks a #commit event as a sync 1.1 consumer does: it reads
// the slice, parses the commit, and undoes the ops on the tree the slice
// holds, which must give prevData back. (The signature is checked
// elsewhere, as indigo's VerifyCommitMessage leaves it out too.)
func invertWelkin(b []byte, ops []repo.Op, prevData data.CID) error {
	roots, blks, err := car.ReadAll(bytes.NewReader(b), car.CommitLimits())
	if err != nil {
		return err
	}
	if len(roots) == 0 {
		return errors.New("no root")
	}
	c, err := repo.ParseCommit(blks[roots[0]])
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.CID != nil {
			if _, ok := blks[*op.CID]; !ok {
				return fmt.Errorf("record block of %s missing", op.Path)
			}
		}
	}
	got, err := repo.InvertOps(blks, c.Data, ops)
	if err != nil {
		return err
	}
	if got != prevData {
		return fmt.Errorf("inverted root %s, prevData %s", got, prevData)
	}
	return nil
}

// --- benchmarks ---

func BenchmarkRepoBuild100k(b *testing.B) {
	recs := repoRecords(b, repoLarge)
	wm, im := welkinMap(recs), indigoMap(recs)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, err := repo.BuildTree(wm)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := t.Root(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, err := mst.LoadTreeFromMap(im)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := t.RootCID(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRepoCommitOne10k makes one single-record commit per iteration
// on a 10,000-record repository: the write (one fresh record, created on
// odd iterations and deleted again on even ones, so the tree keeps its
// size), the new root, the blocks the #commit event carries, and the
// signed commit block and its CID.
func BenchmarkRepoCommitOne10k(b *testing.B) { benchCommitOne(b, true) }

// BenchmarkRepoCommitOne10kNoSign is BenchmarkRepoCommitOne10k without the
// K-256 signature: the commit block is the unsigned commit. It shows the
// work of the repository code apart from signing, which dominates the
// signed figure.
func BenchmarkRepoCommitOne10kNoSign(b *testing.B) { benchCommitOne(b, false) }

func benchCommitOne(b *testing.B, sign bool) {
	recs := repoRecords(b, repoSmall)
	keys := repoKeys(b)
	fresh := repoRecordN(b, repoFreshBase)
	b.Run("impl=welkin", func(b *testing.B) {
		t, err := repo.BuildTree(welkinMap(recs))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.CommitSlice(); err != nil {
			b.Fatal(err)
		}
		clock := repo.NewRevClock(3)
		var last syntax.TID
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if i%2 == 1 {
				err = t.Put(fresh.key, fresh.cid)
			} else {
				err = t.Delete(fresh.key)
			}
			if err != nil {
				b.Fatal(err)
			}
			root, err := t.Root()
			if err != nil {
				b.Fatal(err)
			}
			blks, err := t.CommitSlice()
			if err != nil {
				b.Fatal(err)
			}
			blks[fresh.cid] = fresh.block
			rev, err := clock.Next(last)
			if err != nil {
				b.Fatal(err)
			}
			last = rev
			c := repo.NewCommit(syntax.DID(repoDID), root, rev)
			var cb []byte
			if sign {
				if err := c.Sign(keys.welkin); err != nil {
					b.Fatal(err)
				}
				cb, err = c.Bytes()
			} else {
				cb, err = c.UnsignedBytes()
			}
			if err != nil {
				b.Fatal(err)
			}
			blks[data.CIDForCBOR(cb)] = cb
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		t, err := mst.LoadTreeFromMap(indigoMap(recs))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.RootCID(); err != nil {
			b.Fatal(err)
		}
		clock := indigosyntax.NewTIDClock(3)
		ctx := context.Background()
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			if i%2 == 1 {
				_, err = t.Insert([]byte(fresh.key), fresh.icid)
			} else {
				_, err = t.Remove([]byte(fresh.key))
			}
			if err != nil {
				b.Fatal(err)
			}
			bs := newMapBlockstore()
			root, err := t.WriteDiffBlocks(ctx, bs)
			if err != nil {
				b.Fatal(err)
			}
			rb, _ := blocks.NewBlockWithCid(fresh.block, fresh.icid)
			bs.Put(ctx, rb)
			c := indigorepo.Commit{DID: repoDID, Version: indigorepo.ATPROTO_REPO_VERSION, Data: *root, Rev: clock.Next().String()}
			var (
				cb []byte
				cc cid.Cid
			)
			if sign {
				if err := c.Sign(keys.indigo); err != nil {
					b.Fatal(err)
				}
				cb, cc, err = indigoCommitBlock(&c)
			} else {
				if cb, err = c.UnsignedBytes(); err == nil {
					cc, err = indigoPrefix.Sum(cb)
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			blk, _ := blocks.NewBlockWithCid(cb, cc)
			bs.Put(ctx, blk)
		}
	})
}

// repoLargeFixture holds the 100,000-record repository in both stores and
// its CAR export, built once.
type repoLargeFixture struct {
	welkin welkinRepo
	indigo indigoRepo
	car    []byte
}

var (
	largeOnce sync.Once
	large     repoLargeFixture
)

func loadLargeRepo(tb testing.TB) repoLargeFixture {
	tb.Helper()
	largeOnce.Do(func() {
		recs := repoRecords(tb, repoLarge)
		keys := repoKeys(tb)
		large.welkin = buildWelkinRepo(tb, recs, keys.welkin)
		large.indigo = buildIndigoRepo(tb, recs, keys.indigo)
		var buf bytes.Buffer
		if err := exportWelkin(context.Background(), &buf, large.welkin.store, large.welkin.commit); err != nil {
			tb.Fatal(err)
		}
		large.car = buf.Bytes()
	})
	if large.car == nil {
		tb.Fatal("building the large repository failed")
	}
	return large
}

func BenchmarkRepoExportCAR100k(b *testing.B) {
	fx := loadLargeRepo(b)
	ctx := context.Background()
	b.Run("impl=welkin", func(b *testing.B) {
		var buf bytes.Buffer
		b.SetBytes(int64(len(fx.car)))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := exportWelkin(ctx, &buf, fx.welkin.store, fx.welkin.commit); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		var buf bytes.Buffer
		b.SetBytes(int64(len(fx.car)))
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := exportIndigo(ctx, &buf, fx.indigo.store, fx.indigo.commit); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRepoImportVerify100k(b *testing.B) {
	fx := loadLargeRepo(b)
	keys := repoKeys(b)
	ctx := context.Background()
	b.Run("impl=welkin", func(b *testing.B) {
		pub := keys.welkin.Public()
		b.SetBytes(int64(len(fx.car)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := importWelkin(ctx, fx.car, pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		pub := indigoPublic(b, keys.indigo)
		b.SetBytes(int64(len(fx.car)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := importIndigo(ctx, fx.car, pub); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRepoInvertOneOp checks a one-create #commit event made on a
// 10,000-record repository: read the slice, parse the commit, invert the op
// on the partial tree and compare with prevData. indigo's side is its
// sync 1.1 check, repo.VerifyCommitMessage, on the same event.
func BenchmarkRepoInvertOneOp(b *testing.B) {
	recs := repoRecords(b, repoSmall)
	keys := repoKeys(b)
	t, err := repo.BuildTree(welkinMap(recs))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := t.CommitSlice(); err != nil {
		b.Fatal(err)
	}
	fresh := repoRecordN(b, repoSmall)
	ev := makeCommitSlice(b, t, keys.welkin, "create", fresh.key, &fresh, syntax.NewTID(repoTIDStart+int64(repoSmall+5)*repoTIDStep, 7))
	msg := ev.indigoMessage(b)
	b.Run("impl=welkin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := invertWelkin(ev.car, ev.ops, ev.prevData); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=indigo", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := indigorepo.VerifyCommitMessage(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// --- agreement ---

// TestRepoRootAgreement checks that both implementations build the same
// tree for the same 10,000 records, in bulk and (indigo) key by key, and
// after the same deletions.
func TestRepoRootAgreement(t *testing.T) {
	recs := repoRecords(t, repoSmall)
	wt, err := repo.BuildTree(welkinMap(recs))
	if err != nil {
		t.Fatal(err)
	}
	wr, err := wt.Root()
	if err != nil {
		t.Fatal(err)
	}
	it, err := mst.LoadTreeFromMap(indigoMap(recs))
	if err != nil {
		t.Fatal(err)
	}
	ir, err := it.RootCID()
	if err != nil {
		t.Fatal(err)
	}
	if wr.String() != ir.String() {
		t.Fatalf("10k roots differ: welkin %s, indigo %s", wr, ir)
	}
	// Delete every third record from both, Welkin incrementally.
	for i := 0; i < len(recs); i += 3 {
		if err := wt.Delete(recs[i].key); err != nil {
			t.Fatal(err)
		}
		if _, err := it.Remove([]byte(recs[i].key)); err != nil {
			t.Fatal(err)
		}
	}
	wr, err = wt.Root()
	if err != nil {
		t.Fatal(err)
	}
	ir, err = it.RootCID()
	if err != nil {
		t.Fatal(err)
	}
	if wr.String() != ir.String() {
		t.Fatalf("roots after deletions differ: welkin %s, indigo %s", wr, ir)
	}
	if err := it.Verify(); err != nil {
		t.Fatalf("indigo's tree after deletions: %v", err)
	}
}

// carSections lists the CIDs of a CAR file's blocks in file order.
func carSections(t *testing.T, b []byte) []data.CID {
	t.Helper()
	cr, err := car.NewReader(bytes.NewReader(b), car.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var out []data.CID
	for {
		c, _, err := cr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// TestRepoCARAgreement checks that each implementation loads the other's
// signed 10,000-record export with the same commit, data root and records,
// and that the two exports, written in the same order, hold the same blocks
// in the same order.
func TestRepoCARAgreement(t *testing.T) {
	ctx := context.Background()
	recs := repoRecords(t, repoSmall)
	keys := repoKeys(t)
	wrepo := buildWelkinRepo(t, recs, keys.welkin)
	irepo := buildIndigoRepo(t, recs, keys.indigo)
	// Welkin's ECDSA signatures are hedged (randomised), indigo's are
	// deterministic, so the commits agree up to the signature.
	wcb, err := wrepo.store.GetBlock(ctx, wrepo.commit)
	if err != nil {
		t.Fatal(err)
	}
	wcm, err := repo.ParseCommit(wcb)
	if err != nil {
		t.Fatal(err)
	}
	wu, err := wcm.UnsignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	icb, err := irepo.store.Get(ctx, irepo.commit)
	if err != nil {
		t.Fatal(err)
	}
	var icm indigorepo.Commit
	if err := icm.UnmarshalCBOR(bytes.NewReader(icb.RawData())); err != nil {
		t.Fatal(err)
	}
	iu, err := icm.UnsignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wu, iu) {
		t.Errorf("unsigned commits differ:\nwelkin %x\nindigo %x", wu, iu)
	}

	var wcar, icar bytes.Buffer
	if err := exportWelkin(ctx, &wcar, wrepo.store, wrepo.commit); err != nil {
		t.Fatal(err)
	}
	if err := exportIndigo(ctx, &icar, irepo.store, irepo.commit); err != nil {
		t.Fatal(err)
	}
	if ws, is := carSections(t, wcar.Bytes()), carSections(t, icar.Bytes()); len(ws) != len(is) {
		t.Errorf("exports differ: welkin %d blocks, indigo %d", len(ws), len(is))
	} else {
		// The first block is the commit; every other block must be the
		// same, in the same place.
		for i := 1; i < len(ws); i++ {
			if ws[i] != is[i] {
				t.Errorf("export block %d: welkin %s, indigo %s", i, ws[i], is[i])
				break
			}
		}
	}
	want := welkinMap(recs)

	// Welkin's export in indigo, through its own loader and the import
	// path benchmarked above.
	ic, irp, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(wcar.Bytes()))
	if err != nil {
		t.Fatalf("indigo LoadRepoFromCAR of Welkin's export: %v", err)
	}
	wroot, _ := wrepo.tree.Root()
	if ic.Data.String() != wroot.String() {
		t.Errorf("indigo read data root %s, Welkin wrote %s", ic.Data, wroot)
	}
	if err := ic.VerifySignature(indigoPublic(t, keys.indigo)); err != nil {
		t.Errorf("indigo refuses Welkin's commit signature: %v", err)
	}
	n := 0
	err = irp.MST.Walk(func(k []byte, v cid.Cid) error {
		n++
		if w, ok := want[string(k)]; !ok || w.String() != v.String() {
			return fmt.Errorf("indigo read %s = %s from Welkin's export", k, v)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if n != len(recs) {
		t.Errorf("indigo read %d records from Welkin's export, want %d", n, len(recs))
	}
	if _, _, err := importIndigo(ctx, wcar.Bytes(), indigoPublic(t, keys.indigo)); err != nil {
		t.Errorf("indigo import of Welkin's export: %v", err)
	}

	// indigo's export in Welkin.
	wc, store, err := importWelkin(ctx, icar.Bytes(), keys.welkin.Public())
	if err != nil {
		t.Fatalf("Welkin import of indigo's export: %v", err)
	}
	if wc.Data.String() != wroot.String() {
		t.Errorf("Welkin read data root %s from indigo's export, want %s", wc.Data, wroot)
	}
	tree, err := repo.LoadTree(ctx, store, wc.Data)
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	err = tree.Walk(ctx, func(k string, v data.CID) error {
		n++
		if want[k] != v {
			return fmt.Errorf("Welkin read %s = %s from indigo's export", k, v)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if n != len(recs) {
		t.Errorf("Welkin read %d records from indigo's export, want %d", n, len(recs))
	}
}

// TestRepoCommitAgreement checks signatures across the implementations
// and that indigo's sync 1.1 check (VerifyCommitMessage, which inverts the
// ops on the slice and compares with prevData) accepts Welkin's #commit
// events for a create, an update and a delete, and refuses a wrong
// prevData, as Welkin's inversion does.
func TestRepoCommitAgreement(t *testing.T) {
	ctx := context.Background()
	recs := repoRecords(t, repoSmall)
	keys := repoKeys(t)

	// One commit signed by each, verified by the other.
	root := recs[0].cid
	rev := syntax.NewTID(repoTIDStart, 9)
	wc := repo.NewCommit(syntax.DID(repoDID), root, rev)
	if err := wc.Sign(keys.welkin); err != nil {
		t.Fatal(err)
	}
	wb, err := wc.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var ic indigorepo.Commit
	if err := ic.UnmarshalCBOR(bytes.NewReader(wb)); err != nil {
		t.Fatal(err)
	}
	if err := ic.VerifySignature(indigoPublic(t, keys.indigo)); err != nil {
		t.Errorf("indigo refuses Welkin's commit signature: %v", err)
	}
	ic2 := indigorepo.Commit{DID: repoDID, Version: 3, Data: toIndigoCID(t, root), Rev: string(rev)}
	if err := ic2.Sign(keys.indigo); err != nil {
		t.Fatal(err)
	}
	ib, _, err := indigoCommitBlock(&ic2)
	if err != nil {
		t.Fatal(err)
	}
	wc2, err := repo.ParseCommit(ib)
	if err != nil {
		t.Fatalf("Welkin refuses indigo's commit block: %v", err)
	}
	if err := wc2.Verify(keys.welkin.Public()); err != nil {
		t.Errorf("Welkin refuses indigo's commit signature: %v", err)
	}

	tree, err := repo.BuildTree(welkinMap(recs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.CommitSlice(); err != nil {
		t.Fatal(err)
	}
	fresh := repoRecordN(t, repoSmall)
	changed := repoRecordN(t, repoSmall+1)
	cases := []struct {
		action, path string
		rec          *repoRecord
	}{
		{"create", fresh.key, &fresh},
		{"update", recs[4321].key, &changed},
		{"delete", recs[777].key, nil},
	}
	for i, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			ev := makeCommitSlice(t, tree, keys.welkin, tc.action, tc.path, tc.rec, syntax.NewTID(repoTIDStart+int64(repoSmall+10+i)*repoTIDStep, 7))
			if err := invertWelkin(ev.car, ev.ops, ev.prevData); err != nil {
				t.Errorf("Welkin: %v", err)
			}
			if _, err := indigorepo.VerifyCommitMessage(ctx, ev.indigoMessage(t)); err != nil {
				t.Errorf("indigo VerifyCommitMessage refuses Welkin's event: %v", err)
			}
			bad := ev
			bad.prevData = ev.newData
			if err := invertWelkin(bad.car, bad.ops, bad.prevData); err == nil {
				t.Error("Welkin accepted a wrong prevData")
			}
			if _, err := indigorepo.VerifyCommitMessage(ctx, bad.indigoMessage(t)); err == nil {
				t.Error("indigo accepted a wrong prevData")
			}
		})
	}
}
