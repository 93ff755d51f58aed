package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Limits of one commit, from the sync specification (#commit event).
const (
	// MaxCommitOps: "ops ... maxLength: 200" in com.atproto.sync.subscribeRepos
	// #commit; larger changes must be split into several commits.
	MaxCommitOps = 200
	// MaxCommitCARSize: "the blocks bytes field has a hard size limit of
	// 2 million bytes" (sync specification, #commit).
	MaxCommitCARSize = car.CommitMaxTotalSize
	// MaxRecordSize: "individual record blocks ... have a hard limit of one
	// million bytes" (sync specification, #commit).
	MaxRecordSize = car.RecordMaxBlockSize
)

// Actions of a record write and of an Op.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Errors matched with errors.Is.
var (
	// ErrRecordNotFound: the repository holds no record at the path.
	ErrRecordNotFound = errors.New("record not found")
	// ErrRecordExists: a create names a path that already holds a record.
	ErrRecordExists = errors.New("record already exists")
	// ErrInvalidWrite: a write is malformed (action, path or record value).
	ErrInvalidWrite = errors.New("invalid record write")
	// ErrCommitTooLarge: the pending changes exceed MaxCommitOps or their
	// CAR slice exceeds MaxCommitCARSize.
	ErrCommitTooLarge = errors.New("commit too large")
	// ErrNoCommit: the repository has never been committed.
	ErrNoCommit = errors.New("repository has no commit yet")
)

// RecordPath returns the repo path (MST key) of a record:
// "<collection>/<rkey>".
func RecordPath(collection syntax.NSID, rkey syntax.RecordKey) string {
	return string(collection) + "/" + string(rkey)
}

// ParseRecordPath splits a repo path into its collection NSID and record
// key, checking both against their syntax.
func ParseRecordPath(path string) (syntax.NSID, syntax.RecordKey, error) {
	i := strings.IndexByte(path, '/')
	if i < 0 {
		return "", "", fmt.Errorf("repo path %q: want <collection>/<record key>", path)
	}
	c, err := syntax.ParseNSID(path[:i])
	if err != nil {
		return "", "", fmt.Errorf("repo path %q: collection: %w", path, err)
	}
	k, err := syntax.ParseRecordKey(path[i+1:])
	if err != nil {
		return "", "", fmt.Errorf("repo path %q: record key: %w", path, err)
	}
	return c, k, nil
}

func checkPath(collection syntax.NSID, rkey syntax.RecordKey) (string, error) {
	if _, err := syntax.ParseNSID(string(collection)); err != nil {
		return "", fmt.Errorf("collection: %w", err)
	}
	if _, err := syntax.ParseRecordKey(string(rkey)); err != nil {
		return "", fmt.Errorf("record key: %w", err)
	}
	p := RecordPath(collection, rkey)
	if !ValidMSTKey(p) {
		return "", fmt.Errorf("path %q is not a valid repo path", p)
	}
	return p, nil
}

// ValidateRecord checks that b can be stored as a record: at most
// MaxRecordSize bytes of strict DAG-CBOR whose top level is a map with a
// non-empty string "$type" (data model specification: records carry their
// type).
func ValidateRecord(b []byte) error {
	if len(b) > MaxRecordSize {
		return fmt.Errorf("record is %d bytes, more than the %d allowed", len(b), MaxRecordSize)
	}
	m, err := data.UnmarshalCBOR(b)
	if err != nil {
		return fmt.Errorf("record is not a DAG-CBOR map: %w", err)
	}
	t, ok := m["$type"].(string)
	if !ok || t == "" {
		return errors.New(`record has no "$type" string`)
	}
	return nil
}

// RecordWrite is one change in a batch given to Repo.Apply.
type RecordWrite struct {
	Action     string // ActionCreate, ActionUpdate or ActionDelete
	Collection syntax.NSID
	RKey       syntax.RecordKey
	// Value is the record as DAG-CBOR (see ValidateRecord); empty for a
	// delete.
	Value []byte
}

// CommitResult is what Repo.Commit produced: everything a PDS stores and
// the #commit event it emits.
type CommitResult struct {
	Commit *Commit
	CID    data.CID // of the signed commit block
	Rev    syntax.TID
	// Since is the rev of the previous commit; "" for the first commit.
	Since syntax.TID
	// PrevData is the MST root of the previous commit; nil for the first.
	PrevData *data.CID
	// Ops lists the record changes, one per path, in the order the paths
	// were first written.
	Ops []Op
	// Blocks holds the blocks written to the store: the new records, the
	// new or changed MST nodes and the commit.
	Blocks map[data.CID][]byte
	// CAR is the CAR slice of the #commit event: the commit (root), the
	// MST nodes a receiver needs to check the ops (Tree.CommitSlice) and
	// the new record blocks.
	CAR []byte
}

// pendingPath tracks one path changed since the last commit.
type pendingPath struct {
	orig data.CID // value at the last commit; undefined if absent
	cur  data.CID // value now; undefined if deleted
}

// Repo is the repository of one account over a BlockStore: its current
// commit and MST, and the writes made since that commit. Writes are staged
// with Apply and become a signed commit with Commit. A Repo is safe for
// concurrent use; its operations are serialized.
type Repo struct {
	mu        sync.Mutex
	store     BlockStore
	did       syntax.DID
	commit    *Commit // nil before the first commit
	commitCID data.CID
	tree      *Tree

	pending      map[string]*pendingPath
	pendingOrder []string
	records      map[data.CID][]byte // staged record blocks
}

// NewRepo returns an empty repository of did, held in store once committed.
func NewRepo(did syntax.DID, store BlockStore) (*Repo, error) {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	if store == nil {
		return nil, errors.New("repo: nil BlockStore")
	}
	return &Repo{store: store, did: did, tree: NewTree()}, nil
}

// OpenRepo opens the repository whose signed commit block has the CID
// commitCID in store. The MST is read lazily. The commit's signature is
// not checked: the store is trusted.
func OpenRepo(ctx context.Context, store BlockStore, commitCID data.CID) (*Repo, error) {
	c, err := readCommit(ctx, store, commitCID)
	if err != nil {
		return nil, err
	}
	t, err := LoadTree(ctx, store, c.Data)
	if err != nil {
		return nil, fmt.Errorf("repo: opening commit %s: %w", commitCID, err)
	}
	return &Repo{store: store, did: c.DID, commit: c, commitCID: commitCID, tree: t}, nil
}

func readCommit(ctx context.Context, store BlockStore, c data.CID) (*Commit, error) {
	if !c.Defined() {
		return nil, errors.New("repo: undefined commit CID")
	}
	b, err := store.GetBlock(ctx, c)
	if err != nil {
		var mb *MissingBlockError
		if errors.As(err, &mb) {
			return nil, &MissingBlockError{CID: c, Context: "commit"}
		}
		return nil, fmt.Errorf("repo: reading commit %s: %w", c, err)
	}
	cm, err := ParseCommit(b)
	if err != nil {
		return nil, fmt.Errorf("repo: commit %s: %w", c, err)
	}
	return cm, nil
}

// DID returns the account that owns the repository.
func (r *Repo) DID() syntax.DID { return r.did }

// Head returns the current commit and its CID; nil before the first
// commit. The commit must not be modified.
func (r *Repo) Head() (*Commit, data.CID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commit, r.commitCID
}

// Rev returns the rev of the current commit, or "" before the first.
func (r *Repo) Rev() syntax.TID {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.commit == nil {
		return ""
	}
	return r.commit.Rev
}

// Store returns the repository's block store.
func (r *Repo) Store() BlockStore { return r.store }

// HasPending reports whether writes were applied since the last commit.
func (r *Repo) HasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

// GetRecord returns the CID and DAG-CBOR bytes of a record, including the
// writes not committed yet. A missing record gives an error matching
// ErrRecordNotFound.
func (r *Repo) GetRecord(ctx context.Context, collection syntax.NSID, rkey syntax.RecordKey) (data.CID, []byte, error) {
	path, err := checkPath(collection, rkey)
	if err != nil {
		return data.CID{}, nil, fmt.Errorf("repo: GetRecord: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tree.ctx = ctx
	c, ok, err := r.tree.Get(path)
	if err != nil {
		return data.CID{}, nil, fmt.Errorf("repo: GetRecord %s: %w", path, err)
	}
	if !ok {
		return data.CID{}, nil, fmt.Errorf("repo: %s: %w", path, ErrRecordNotFound)
	}
	if b, ok := r.records[c]; ok {
		return c, b, nil
	}
	b, err := r.store.GetBlock(ctx, c)
	if err != nil {
		var mb *MissingBlockError
		if errors.As(err, &mb) {
			return data.CID{}, nil, &MissingBlockError{CID: c, Context: "record " + path}
		}
		return data.CID{}, nil, fmt.Errorf("repo: reading record %s: %w", path, err)
	}
	return c, b, nil
}

// ListRecords lists up to limit records of a collection in record key
// order (reverse order with reverse), starting after the record key after
// when it is not empty. Entries carry the full path as Key. A limit of
// zero or less means no limit.
func (r *Repo) ListRecords(ctx context.Context, collection syntax.NSID, after string, limit int, reverse bool) ([]Entry, error) {
	if _, err := syntax.ParseNSID(string(collection)); err != nil {
		return nil, fmt.Errorf("repo: ListRecords: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tree.ctx = ctx
	return r.tree.List(ctx, string(collection), after, limit, reverse)
}

// Walk calls fn with every record path and CID in path order, including
// the writes not committed yet.
func (r *Repo) Walk(ctx context.Context, fn func(path string, c data.CID) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tree.ctx = ctx
	return r.tree.Walk(ctx, fn)
}

// Apply validates a batch of writes and stages them for the next commit.
// The batch is atomic: when any write is invalid (a bad path or record, a
// create of an existing record, an update or delete of an absent one,
// counting the writes before it in the batch) nothing is applied. The
// paths changed since the last commit may not exceed MaxCommitOps.
func (r *Repo) Apply(ctx context.Context, writes []RecordWrite) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tree.ctx = ctx

	type staged struct {
		path string
		val  data.CID // undefined for a delete
		rec  []byte
	}
	plan := make([]staged, 0, len(writes))
	// overlay holds the value of paths as the batch leaves them.
	overlay := make(map[string]data.CID, len(writes))
	newPaths := 0
	for i, w := range writes {
		fail := func(err error) error {
			return fmt.Errorf("repo: write %d (%s %s/%s): %w", i, w.Action, w.Collection, w.RKey, err)
		}
		path, err := checkPath(w.Collection, w.RKey)
		if err != nil {
			return fail(fmt.Errorf("%w: %w", ErrInvalidWrite, err))
		}
		cur, seen := overlay[path]
		present := cur.Defined()
		if !seen {
			c, ok, err := r.tree.Get(path)
			if err != nil {
				return fail(err)
			}
			cur, present = c, ok
			if _, ok := r.pending[path]; !ok {
				newPaths++
			}
		}
		st := staged{path: path}
		switch w.Action {
		case ActionCreate, ActionUpdate:
			if w.Action == ActionCreate && present {
				return fail(ErrRecordExists)
			}
			if w.Action == ActionUpdate && !present {
				return fail(ErrRecordNotFound)
			}
			if err := ValidateRecord(w.Value); err != nil {
				return fail(fmt.Errorf("%w: %w", ErrInvalidWrite, err))
			}
			st.val = data.CIDForCBOR(w.Value)
			st.rec = w.Value
		case ActionDelete:
			if !present {
				return fail(ErrRecordNotFound)
			}
			if len(w.Value) != 0 {
				return fail(fmt.Errorf("%w: a delete carries no value", ErrInvalidWrite))
			}
		default:
			return fail(fmt.Errorf("%w: unknown action %q", ErrInvalidWrite, w.Action))
		}
		overlay[path] = st.val
		plan = append(plan, st)
	}
	if n := len(r.pending) + newPaths; n > MaxCommitOps {
		return fmt.Errorf("repo: %w: %d paths changed, at most %d per commit", ErrCommitTooLarge, n, MaxCommitOps)
	}

	if r.pending == nil {
		r.pending = make(map[string]*pendingPath)
		r.records = make(map[data.CID][]byte)
	}
	for _, st := range plan {
		p, ok := r.pending[st.path]
		if !ok {
			orig, _, err := r.tree.Get(st.path)
			if err != nil {
				return r.poison(err)
			}
			p = &pendingPath{orig: orig}
			r.pending[st.path] = p
			r.pendingOrder = append(r.pendingOrder, st.path)
		}
		var err error
		if st.val.Defined() {
			r.records[st.val] = st.rec
			err = r.tree.Put(st.path, st.val)
		} else {
			err = r.tree.Delete(st.path)
		}
		if err != nil {
			return r.poison(err)
		}
		p.cur = st.val
	}
	return nil
}

// poison handles a failure half-way through changing the tree (a block
// the store could not give): the pending writes are discarded so that the
// repository is back at its last commit.
func (r *Repo) poison(err error) error {
	if derr := r.discard(); derr != nil {
		return fmt.Errorf("repo: %w (and resetting to the last commit failed: %v)", err, derr)
	}
	return fmt.Errorf("repo: %w (pending writes discarded)", err)
}

// Discard drops the writes applied since the last commit.
func (r *Repo) Discard(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tree.ctx = ctx
	return r.discard()
}

func (r *Repo) discard() error {
	r.pending, r.pendingOrder, r.records = nil, nil, nil
	if r.commit == nil {
		r.tree = NewTree()
		return nil
	}
	t, err := LoadTree(r.tree.ctx, r.store, r.commit.Data)
	if err != nil {
		return err
	}
	r.tree = t
	return nil
}

// pendingOps returns the record ops of the pending writes, one per path
// whose value changed.
func (r *Repo) pendingOps() []Op {
	ops := make([]Op, 0, len(r.pendingOrder))
	for _, path := range r.pendingOrder {
		p := r.pending[path]
		if p.orig == p.cur {
			continue
		}
		op := Op{Path: path}
		switch {
		case !p.orig.Defined():
			op.Action = ActionCreate
			c := p.cur
			op.CID = &c
		case !p.cur.Defined():
			op.Action = ActionDelete
			o := p.orig
			op.Prev = &o
		default:
			op.Action = ActionUpdate
			c, o := p.cur, p.orig
			op.CID, op.Prev = &c, &o
		}
		ops = append(ops, op)
	}
	return ops
}

// Commit turns the pending writes into a new signed commit, writes its
// blocks to the store and returns it with its #commit event data. The rev
// comes from clock. Commit with no pending writes makes a commit with the
// same data (as after a signing key rotation). On error nothing is
// committed and the pending writes are discarded.
func (r *Repo) Commit(ctx context.Context, key crypto.PrivateKey, clock *RevClock) (*CommitResult, error) {
	if key == nil || clock == nil {
		return nil, errors.New("repo: Commit needs a signing key and a RevClock")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tree.ctx = ctx
	res, err := r.commitLocked(ctx, key, clock)
	if err != nil {
		if derr := r.discard(); derr != nil {
			return nil, fmt.Errorf("%w (and resetting to the last commit failed: %v)", err, derr)
		}
		return nil, err
	}
	return res, nil
}

func (r *Repo) commitLocked(ctx context.Context, key crypto.PrivateKey, clock *RevClock) (*CommitResult, error) {
	ops := r.pendingOps()
	if len(ops) > MaxCommitOps {
		return nil, fmt.Errorf("repo: %w: %d ops, at most %d", ErrCommitTooLarge, len(ops), MaxCommitOps)
	}
	root, err := r.tree.Root()
	if err != nil {
		return nil, fmt.Errorf("repo: hashing the MST: %w", err)
	}
	unstored, err := r.tree.UnstoredBlocks()
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	slice, err := r.tree.CommitSlice()
	if err != nil {
		return nil, fmt.Errorf("repo: commit slice: %w", err)
	}
	res := &CommitResult{Ops: ops}
	var last syntax.TID
	if r.commit != nil {
		last = r.commit.Rev
		res.Since = last
		pd := r.commit.Data
		res.PrevData = &pd
	}
	rev, err := clock.Next(last)
	if err != nil {
		return nil, err
	}
	c := NewCommit(r.did, root, rev)
	if err := c.Sign(key); err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	cb, err := c.Bytes()
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	cc := data.CIDForCBOR(cb)
	res.Commit, res.CID, res.Rev = c, cc, rev

	// The new record blocks: the values of created and updated paths.
	recs := make([]data.CID, 0, len(ops))
	for _, op := range ops {
		if op.CID != nil {
			recs = append(recs, *op.CID)
		}
	}

	// Size the CAR at once: each section adds a length prefix and a CID
	// to its block.
	size := 64 + len(cb)
	for _, b := range slice {
		size += 48 + len(b)
	}
	for _, rc := range recs {
		size += 48 + len(r.records[rc])
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	cw, err := car.NewWriter(buf, cc)
	if err != nil {
		return nil, err
	}
	if err := cw.WriteBlock(cc, cb); err != nil {
		return nil, err
	}
	for _, nc := range sortedCIDs(slice) {
		if err := cw.WriteBlock(nc, slice[nc]); err != nil {
			return nil, err
		}
	}
	written := make(map[data.CID]bool, len(recs))
	for _, rc := range recs {
		if written[rc] || slice[rc] != nil {
			continue
		}
		written[rc] = true
		if err := cw.WriteBlock(rc, r.records[rc]); err != nil {
			return nil, err
		}
	}
	if err := cw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > MaxCommitCARSize {
		return nil, fmt.Errorf("repo: %w: the CAR slice is %d bytes, more than %d", ErrCommitTooLarge, buf.Len(), MaxCommitCARSize)
	}
	res.CAR = buf.Bytes()

	res.Blocks = make(map[data.CID][]byte, len(unstored)+len(recs)+1)
	for _, rc := range recs {
		if err := r.store.PutBlock(ctx, rc, r.records[rc]); err != nil {
			return nil, fmt.Errorf("repo: writing record block: %w", err)
		}
		res.Blocks[rc] = r.records[rc]
	}
	if err := r.tree.WriteBlocks(ctx, r.store); err != nil {
		return nil, fmt.Errorf("repo: writing MST nodes: %w", err)
	}
	for nc, b := range unstored {
		res.Blocks[nc] = b
	}
	if err := r.store.PutBlock(ctx, cc, cb); err != nil {
		return nil, fmt.Errorf("repo: writing commit block: %w", err)
	}
	res.Blocks[cc] = cb

	r.commit, r.commitCID = c, cc
	r.pending, r.pendingOrder, r.records = nil, nil, nil
	// Every node is now in r.store, so a tree built in memory (NewRepo)
	// can read back from it what it sheds.
	if r.tree.store == nil {
		r.tree.store = r.store
	}
	r.tree.Shed(shedAfter)
	return res, nil
}

// shedAfter is how many commits an MST node of a Repo stays decoded in
// memory after it last changed (see Tree.Shed). A repository written to for
// a long time would otherwise keep every node its writes created.
const shedAfter = 16

// sortedCIDs returns the keys of m in binary CID order, for deterministic
// output.
func sortedCIDs(m map[data.CID][]byte) []data.CID {
	out := make([]data.CID, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sortCIDs(out)
	return out
}

func sortCIDs(cs []data.CID) {
	slices.SortFunc(cs, func(a, b data.CID) int { return strings.Compare(a.KeyString(), b.KeyString()) })
}
