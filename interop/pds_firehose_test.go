package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/bluesky-social/indigo/events/schedulers/sequential"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/gorilla/websocket"
	"github.com/ipfs/go-cid"

	wcrypto "github.com/welkin-atproto/welkin/atproto/crypto"
	wrepo "github.com/welkin-atproto/welkin/atproto/repo"
	wsyntax "github.com/welkin-atproto/welkin/atproto/syntax"
)

// These tests consume a PDS's com.atproto.sync.subscribeRepos while the
// client scenario (node/pds.js) runs against it, with two readers no one
// here wrote:
//
//   - node/pds_firehose.js: the Firehose of @atproto/sync, which resolves
//     each DID through the PLC directory and verifies every op of every
//     commit (signature and MST proof) before it emits it;
//   - indigo, from Go: its stream reader (events.HandleRepoStream) and its
//     sync-1.1 checks (repo.VerifyCommitSignature, and
//     repo.VerifyCommitMessage, which inverts each commit's ops and
//     compares the result with prevData), plus the rev/since chain and
//     prevData against the previous commit's data, checked here.
//
// Both must accept every event, and between them see all of them: every
// commit the scenario made, in order, with no gap in any account's chain.
// The same checks run against the reference PDS, which keeps the checks
// honest.

// Deadlines for the firehose readers. They bound waits; nothing asserts
// speed.
const (
	firehoseCatchUp     = 60 * time.Second
	firehoseNodeTimeout = 3 * time.Minute
)

func TestPDSFirehoseReaders(t *testing.T) {
	requireNode(t)
	t.Run("welkin", func(t *testing.T) {
		wk := startWelkinPDS(t)
		checkPDSFirehose(t, wk.url, "ws://"+wk.addr, wk.plcURL)
	})
	t.Run("reference", func(t *testing.T) {
		ref := startReferenceStack(t)
		checkPDSFirehose(t, ref.pdsURL, "ws"+strings.TrimPrefix(ref.pdsURL, "http"), ref.plcURL)
	})
}

// checkPDSFirehose subscribes both readers to the PDS at wsBase, runs the
// scenario against pdsURL, and checks what the readers saw.
func checkPDSFirehose(t *testing.T, pdsURL, wsBase, plcURL string) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	gc := newGoFirehose(plcURL)
	goDone, err := gc.start(ctx, wsBase+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0")
	if err != nil {
		t.Fatalf("indigo: subscribing: %v", err)
	}
	node, err := startNodeFirehose(t, wsBase, plcURL)
	if err != nil {
		t.Fatal(err)
	}

	doc := runScenario(t, pdsURL)
	if len(doc.Meta.Revs) != 2 {
		t.Fatalf("the scenario reported the final revs of %d accounts, want 2: %v", len(doc.Meta.Revs), doc.Meta.Revs)
	}

	// Wait for indigo's reader to reach every account's last commit; the
	// highest seq it has seen then is where the Node reader must get to.
	deadline := time.Now().Add(firehoseCatchUp)
	for !gc.reached(doc.Meta.Revs) {
		select {
		case err := <-goDone:
			t.Fatalf("indigo: the stream ended before the last commits: %v\n%s", err, gc.report())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("indigo: did not see the last commits %v within %s\n%s", doc.Meta.Revs, firehoseCatchUp, gc.report())
		}
		time.Sleep(20 * time.Millisecond)
	}
	lastSeq := gc.maxSeq()
	nodeLines := node.finish(t, lastSeq)
	cancel()
	<-goDone

	gc.mu.Lock()
	defer gc.mu.Unlock()
	for _, p := range gc.problems {
		t.Errorf("indigo: %s", p)
	}
	if len(gc.events) == 0 {
		t.Fatal("indigo saw no events")
	}
	for did, want := range doc.Meta.Commits {
		if got := gc.commits[did]; got != want {
			t.Errorf("indigo saw %d commits of %s, the scenario made %d", got, did, want)
		}
	}
	checkNodeFirehose(t, gc.events, nodeLines, lastSeq)
	total := 0
	for _, n := range gc.commits {
		total += n
	}
	t.Logf("indigo accepted %d events up to seq %d (%d commits); @atproto/sync emitted %d lines",
		len(gc.events), lastSeq, total, len(nodeLines))
}

// goEvent is one event indigo's reader accepted.
type goEvent struct {
	seq    int64
	kind   string // "commit", "sync", "identity", "account"
	did    string
	rev    string
	commit string
	ops    []tsOp
}

// goFirehose reads a stream with indigo and checks every event.
type goFirehose struct {
	dir identity.Directory

	mu       sync.Mutex
	events   []goEvent
	problems []string
	lastSeq  int64
	heads    map[string]repoHead // DID -> the last commit seen
	commits  map[string]int      // DID -> #commit events seen
}

// repoHead is where an account's chain stands.
type repoHead struct {
	rev  string
	data string // the MST root of the commit, which the next prevData must name
}

func newGoFirehose(plcURL string) *goFirehose {
	return &goFirehose{
		dir:     &identity.BaseDirectory{PLCURL: plcURL, SkipHandleVerification: true},
		heads:   map[string]repoHead{},
		commits: map[string]int{},
	}
}

// start dials u and reads it until ctx ends; the returned channel gets
// the reader's final error.
func (g *goFirehose) start(ctx context.Context, u string) (<-chan error, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(dctx, u, nil)
	if err != nil {
		return nil, err
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	cb := &events.RepoStreamCallbacks{
		RepoCommit: func(evt *comatproto.SyncSubscribeRepos_Commit) error { g.onCommit(ctx, evt); return nil },
		RepoSync:   func(evt *comatproto.SyncSubscribeRepos_Sync) error { g.onSync(ctx, evt); return nil },
		RepoIdentity: func(evt *comatproto.SyncSubscribeRepos_Identity) error {
			g.onOther(evt.Seq, "identity", evt.Did)
			return nil
		},
		RepoAccount: func(evt *comatproto.SyncSubscribeRepos_Account) error {
			g.onOther(evt.Seq, "account", evt.Did)
			return nil
		},
		RepoInfo: func(evt *comatproto.SyncSubscribeRepos_Info) error {
			g.problem("#info %s", evt.Name)
			return nil
		},
		Error: func(evt *events.ErrorFrame) error {
			g.problem("error frame %s: %s", evt.Error, evt.Message)
			return nil
		},
	}
	done := make(chan error, 1)
	go func() {
		done <- events.HandleRepoStream(ctx, conn, sequential.NewScheduler("interop", cb.EventHandler), nil)
	}()
	return done, nil
}

func (g *goFirehose) problem(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.problems = append(g.problems, fmt.Sprintf(format, args...))
}

// advance checks that seq follows the last one seen and records it.
func (g *goFirehose) advance(seq int64) {
	if seq <= g.lastSeq {
		g.problems = append(g.problems, fmt.Sprintf("seq %d after seq %d", seq, g.lastSeq))
	}
	g.lastSeq = max(g.lastSeq, seq)
}

func (g *goFirehose) onOther(seq int64, kind, did string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.advance(seq)
	g.events = append(g.events, goEvent{seq: seq, kind: kind, did: did})
}

// onCommit verifies one #commit the way a sync-1.1 relay does.
func (g *goFirehose) onCommit(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit) {
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("seq %d (%s rev %s): ", evt.Seq, evt.Repo, evt.Rev)+fmt.Sprintf(format, args...))
	}
	if evt.TooBig || evt.Rebase {
		fail("tooBig %v rebase %v", evt.TooBig, evt.Rebase)
	}
	if err := repo.VerifyCommitSignature(ctx, g.dir, evt); err != nil {
		fail("signature: %v", err)
	}
	// VerifyCommitMessage skips the inversion when prevData or an op's
	// prev is missing; sync 1.1 requires them, so their absence is
	// checked here.
	if _, err := repo.VerifyCommitMessage(ctx, evt); err != nil {
		fail("VerifyCommitMessage: %v", err)
	}
	ops := make([]tsOp, 0, len(evt.Ops))
	for _, op := range evt.Ops {
		o := tsOp{Action: op.Action, Path: op.Path}
		if op.Cid != nil {
			o.CID = op.Cid.String()
		}
		if op.Prev != nil {
			o.Prev = op.Prev.String()
		}
		if op.Action != "create" && op.Prev == nil {
			fail("%s %s carries no prev", op.Action, op.Path)
		}
		ops = append(ops, o)
	}
	commit, root, err := repo.LoadCommitFromCAR(ctx, bytes.NewReader(evt.Blocks))
	var data string
	switch {
	case err != nil:
		fail("reading the CAR slice: %v", err)
	case root.String() != evt.Commit.String():
		fail("the CAR slice's root is %s, the message's commit %s", root, evt.Commit)
	default:
		data = commit.Data.String()
		if commit.Rev != evt.Rev || commit.DID != evt.Repo {
			fail("commit block says %s rev %s", commit.DID, commit.Rev)
		}
	}
	if _, err := syntax.ParseDatetime(evt.Time); err != nil {
		fail("time: %v", err)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	g.advance(evt.Seq)
	prev, seen := g.heads[evt.Repo]
	since := "<null>"
	if evt.Since != nil {
		since = *evt.Since
	}
	switch {
	case !seen:
		// The stream is read from its start, on a fresh PDS: the first
		// commit of an account is its first commit ever.
		if evt.Since != nil {
			fail("the account's first commit has since %s", since)
		}
	default:
		if since != prev.rev {
			fail("since %s, but the last commit seen was rev %s", since, prev.rev)
		}
		if evt.Rev <= prev.rev {
			fail("rev does not increase from %s", prev.rev)
		}
		switch {
		case evt.PrevData == nil:
			fail("no prevData")
		case evt.PrevData.String() != prev.data:
			fail("prevData %s, but the last commit's data is %s", evt.PrevData, prev.data)
		}
	}
	g.problems = append(g.problems, problems...)
	g.heads[evt.Repo] = repoHead{rev: evt.Rev, data: data}
	g.commits[evt.Repo]++
	g.events = append(g.events, goEvent{seq: evt.Seq, kind: "commit", did: evt.Repo, rev: evt.Rev, commit: evt.Commit.String(), ops: ops})
}

// onSync verifies a #sync event; it resets the account's chain to the
// commit it carries.
func (g *goFirehose) onSync(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Sync) {
	commit, err := repo.VerifySyncMessage(ctx, g.dir, evt)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.advance(evt.Seq)
	if err != nil {
		g.problems = append(g.problems, fmt.Sprintf("seq %d #sync of %s: %v", evt.Seq, evt.Did, err))
		return
	}
	g.heads[evt.Did] = repoHead{rev: commit.Rev, data: commit.Data.String()}
	g.events = append(g.events, goEvent{seq: evt.Seq, kind: "sync", did: evt.Did, rev: evt.Rev})
}

// reached reports whether every account's chain is at its final rev.
func (g *goFirehose) reached(revs map[string]string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for did, rev := range revs {
		if g.heads[did].rev != rev {
			return false
		}
	}
	return true
}

func (g *goFirehose) maxSeq() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastSeq
}

// report describes what was seen, for failure messages.
func (g *goFirehose) report() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d events, last seq %d, heads %v\n", len(g.events), g.lastSeq, g.heads)
	for _, p := range g.problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}

// nodeFirehose is a running pds_firehose.js.
type nodeFirehose struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lockedBuffer
	stderr *lockedBuffer
	exited chan struct{}
}

// nodeFhLine is one line pds_firehose.js prints.
type nodeFhLine struct {
	Error       string `json:"error"`
	Seq         int64  `json:"seq"`
	Event       string `json:"event"`
	DID         string `json:"did"`
	Path        string `json:"path"`
	Rev         string `json:"rev"`
	Commit      string `json:"commit"`
	CID         string `json:"cid"`
	RecordType  string `json:"recordType"`
	DIDDocument string `json:"didDocument"`
}

func startNodeFirehose(t *testing.T, wsBase, plcURL string) (*nodeFirehose, error) {
	ctx, cancel := context.WithTimeout(context.Background(), firehoseNodeTimeout)
	cmd := exec.CommandContext(ctx, "node", "pds_firehose.js")
	cmd.Dir = nodeDir
	n := &nodeFirehose{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = n.stdout
	cmd.Stderr = n.stderr
	var err error
	if n.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting pds_firehose.js: %w", err)
	}
	go func() {
		cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-n.exited
	})
	cfg, _ := json.Marshal(map[string]any{
		"service":   wsBase,
		"plcUrl":    plcURL,
		"timeoutMs": firehoseCatchUp.Milliseconds(),
	})
	if _, err := n.stdin.Write(append(cfg, '\n')); err != nil {
		return nil, fmt.Errorf("pds_firehose.js: %w\n%s", err, n.stderr.String())
	}
	return n, nil
}

// finish tells the script where to stop, waits for it and returns its
// lines.
func (n *nodeFirehose) finish(t *testing.T, lastSeq int64) []nodeFhLine {
	t.Helper()
	msg, _ := json.Marshal(map[string]any{"lastSeq": lastSeq})
	if _, err := n.stdin.Write(append(msg, '\n')); err != nil {
		t.Fatalf("pds_firehose.js: %v\n%s", err, n.stderr.String())
	}
	n.stdin.Close()
	<-n.exited
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("pds_firehose.js exited with %d:\n%s", code, n.stderr.String())
	}
	var lines []nodeFhLine
	sc := bufio.NewScanner(strings.NewReader(n.stdout.String()))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	for sc.Scan() {
		var l nodeFhLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("reading pds_firehose.js output: %v\n%s", err, sc.Text())
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// checkNodeFirehose requires the Node reader to have accepted every event
// indigo saw up to lastSeq, with the same content, and nothing else.
func checkNodeFirehose(t *testing.T, goEvents []goEvent, lines []nodeFhLine, lastSeq int64) {
	t.Helper()
	type key struct {
		seq  int64
		kind string
		path string
	}
	got := map[key]nodeFhLine{}
	for _, l := range lines {
		if l.Error != "" {
			t.Errorf("@atproto/sync: %s", l.Error)
			continue
		}
		if l.Seq > lastSeq {
			continue
		}
		k := key{seq: l.Seq, kind: l.Event, path: l.Path}
		if _, dup := got[k]; dup {
			t.Errorf("@atproto/sync emitted seq %d %s %s twice", l.Seq, l.Event, l.Path)
		}
		got[k] = l
	}
	want := 0
	for _, e := range goEvents {
		if e.seq > lastSeq {
			continue
		}
		switch e.kind {
		case "commit":
			for _, op := range e.ops {
				want++
				k := key{seq: e.seq, kind: op.Action, path: op.Path}
				l, ok := got[k]
				if !ok {
					t.Errorf("@atproto/sync did not emit seq %d %s %s of %s (it drops ops whose proof fails)", e.seq, op.Action, op.Path, e.did)
					continue
				}
				delete(got, k)
				if l.DID != e.did || l.Rev != e.rev || l.Commit != e.commit || l.CID != op.CID {
					t.Errorf("seq %d %s %s: @atproto/sync says did %s rev %s commit %s cid %s; indigo did %s rev %s commit %s cid %s",
						e.seq, op.Action, op.Path, l.DID, l.Rev, l.Commit, l.CID, e.did, e.rev, e.commit, op.CID)
				}
				if op.CID != "" && l.RecordType != strings.SplitN(op.Path, "/", 2)[0] {
					t.Errorf("seq %d %s: record $type %q", e.seq, op.Path, l.RecordType)
				}
			}
		default:
			want++
			k := key{seq: e.seq, kind: e.kind}
			l, ok := got[k]
			if !ok {
				t.Errorf("@atproto/sync did not emit seq %d #%s of %s", e.seq, e.kind, e.did)
				continue
			}
			delete(got, k)
			if l.DID != e.did {
				t.Errorf("seq %d #%s: @atproto/sync says did %s, indigo %s", e.seq, e.kind, l.DID, e.did)
			}
			if e.kind == "identity" && l.DIDDocument != e.did {
				t.Errorf("seq %d #identity: @atproto/sync resolved the DID document %q", e.seq, l.DIDDocument)
			}
		}
	}
	for k := range got {
		t.Errorf("@atproto/sync emitted seq %d %s %s, which indigo did not see", k.seq, k.kind, k.path)
	}
	if want == 0 {
		t.Error("no events to compare")
	}
}

// TestGoFirehoseCheckerCatches feeds the indigo-based checker commits made
// with Welkin's repository code, intact and then broken in the ways a
// faulty PDS could break them, so that its acceptance above means
// something.
func TestGoFirehoseCheckerCatches(t *testing.T) {
	key := firehoseKey(t)
	r, err := wrepo.NewRepo(firehoseDID, wrepo.NewMemBlockStore())
	if err != nil {
		t.Fatal(err)
	}
	clock := wrepo.NewRevClock(3)
	const post = "app.bsky.feed.post"
	w := func(action, rkey string, i int) wrepo.RecordWrite {
		rw := wrepo.RecordWrite{Action: action, Collection: post, RKey: wsyntax.RecordKey(rkey)}
		if action != wrepo.ActionDelete {
			rw.Value = firehoseRecord(t, post, i)
		}
		return rw
	}
	var commits []*wrepo.CommitResult
	for i, batch := range [][]wrepo.RecordWrite{
		{w("create", "3lcheckr00a", 0), w("create", "3lcheckr00b", 1)},
		{w("update", "3lcheckr00a", 2)},
		{w("delete", "3lcheckr00b", 0), w("create", "3lcheckr00c", 3)},
	} {
		if err := r.Apply(t.Context(), batch); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		c, err := r.Commit(t.Context(), key, clock)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		commits = append(commits, c)
	}

	link := func(s string) *lexutil.LexLink {
		c, err := cid.Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		l := lexutil.LexLink(c)
		return &l
	}
	message := func(i int) *comatproto.SyncSubscribeRepos_Commit {
		c := commits[i]
		m := &comatproto.SyncSubscribeRepos_Commit{
			Repo:   firehoseDID,
			Commit: *link(c.CID.String()),
			Rev:    string(c.Rev),
			Seq:    int64(i + 1),
			Time:   "2026-02-01T00:00:00.000Z",
			Blocks: lexutil.LexBytes(c.CAR),
			Blobs:  []lexutil.LexLink{},
		}
		if c.Since != "" {
			s := string(c.Since)
			m.Since = &s
		}
		if c.PrevData != nil {
			m.PrevData = link(c.PrevData.String())
		}
		for _, op := range c.Ops {
			o := &comatproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path}
			if op.CID != nil {
				o.Cid = link(op.CID.String())
			}
			if op.Prev != nil {
				o.Prev = link(op.Prev.String())
			}
			m.Ops = append(m.Ops, o)
		}
		return m
	}
	directory := func(multibase string) identity.Directory {
		d := identity.NewMockDirectory()
		d.Insert(identity.Identity{
			DID:    syntax.DID(firehoseDID),
			Handle: syntax.Handle("checker.test"),
			Keys:   map[string]identity.VerificationMethod{"atproto": {Type: "Multikey", PublicKeyMultibase: multibase}},
		})
		return d
	}
	good := key.Public().Multibase()
	other, err := wcrypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		keyMB   string
		feed    []int
		tamper  func(i int, m *comatproto.SyncSubscribeRepos_Commit)
		problem string // "" for none
	}{
		{name: "intact", keyMB: good, feed: []int{0, 1, 2}},
		{name: "gap", keyMB: good, feed: []int{0, 2}, problem: "since"},
		{name: "wrong key", keyMB: other.Public().Multibase(), feed: []int{0, 1, 2}, problem: "signature"},
		{name: "prevData of another commit", keyMB: good, feed: []int{0, 1, 2}, problem: "prevData",
			tamper: func(i int, m *comatproto.SyncSubscribeRepos_Commit) {
				if i == 2 {
					m.PrevData = link(commits[0].Commit.Data.String())
				}
			}},
		{name: "no prevData", keyMB: good, feed: []int{0, 1, 2}, problem: "no prevData",
			tamper: func(i int, m *comatproto.SyncSubscribeRepos_Commit) {
				if i == 1 {
					m.PrevData = nil
				}
			}},
		{name: "update without prev", keyMB: good, feed: []int{0, 1}, problem: "carries no prev",
			tamper: func(i int, m *comatproto.SyncSubscribeRepos_Commit) {
				if i == 1 {
					m.Ops[0].Prev = nil
				}
			}},
		{name: "op not in the tree", keyMB: good, feed: []int{0, 1}, problem: "VerifyCommitMessage",
			tamper: func(i int, m *comatproto.SyncSubscribeRepos_Commit) {
				if i == 1 {
					m.Ops[0].Cid = link(commits[0].Ops[0].CID.String())
				}
			}},
		{name: "seq goes back", keyMB: good, feed: []int{0, 1}, problem: "seq",
			tamper: func(i int, m *comatproto.SyncSubscribeRepos_Commit) {
				if i == 1 {
					m.Seq = 1
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &goFirehose{dir: directory(tc.keyMB), heads: map[string]repoHead{}, commits: map[string]int{}}
			for _, i := range tc.feed {
				m := message(i)
				if tc.tamper != nil {
					tc.tamper(i, m)
				}
				g.onCommit(t.Context(), m)
			}
			joined := strings.Join(g.problems, "\n")
			switch {
			case tc.problem == "" && len(g.problems) > 0:
				t.Errorf("intact commits were refused:\n%s", joined)
			case tc.problem != "" && !strings.Contains(joined, tc.problem):
				t.Errorf("want a problem mentioning %q, got:\n%s", tc.problem, joined)
			}
			if tc.problem == "" && g.commits[firehoseDID] != len(tc.feed) {
				t.Errorf("counted %d commits, fed %d", g.commits[firehoseDID], len(tc.feed))
			}
		})
	}
}
