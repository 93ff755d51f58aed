package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// firehoseWait bounds how long a test waits for events to arrive.
const firehoseWait = 30 * time.Second

// firehoseMsg is one message received from subscribeRepos.
type firehoseMsg struct {
	seq  int64
	typ  string
	body []byte
}

// firehose collects the messages of one subscription.
type firehose struct {
	t      testing.TB
	mu     sync.Mutex
	msgs   []firehoseMsg
	errs   []error
	cancel context.CancelFunc
	done   chan struct{}
}

// subscribe consumes p's firehose from cursor (-1: live only) until the
// test ends or stop is called.
func subscribe(t testing.TB, p *testPDS, cursor int64) *firehose {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &firehose{t: t, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		stream.Subscribe(ctx, p.wsURL(), cursor, func(_ context.Context, m stream.Message) error {
			f.mu.Lock()
			f.msgs = append(f.msgs, firehoseMsg{seq: m.Seq, typ: m.Header.T, body: bytes.Clone(m.Body)})
			f.mu.Unlock()
			return nil
		}, &stream.SubscribeOptions{
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			OnError: func(err error) {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			},
		})
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *firehose) stop() {
	f.cancel()
	<-f.done
}

// waitFor waits until n messages arrived and returns them; more than n is
// a failure.
func (f *firehose) waitFor(n int) []firehoseMsg {
	f.t.Helper()
	deadline := time.Now().Add(firehoseWait)
	for {
		f.mu.Lock()
		got := append([]firehoseMsg(nil), f.msgs...)
		errs := append([]error(nil), f.errs...)
		f.mu.Unlock()
		if len(got) > n {
			f.t.Fatalf("firehose: %d messages, want %d", len(got), n)
		}
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("firehose: %d of %d messages after %v (connection errors: %v)", len(got), n, firehoseWait, errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// repoState is what a relay keeps per account to check the chain of
// #commit events.
type repoState struct {
	rev  string
	data data.CID
}

// checkFirehose checks msgs as a relay would, against the commits the test
// made (by account, in order) and the accounts' keys: seqs follow one
// another from firstSeq; each #commit is signed by the account's key, its
// ops are the commit's, its since and prevData continue the account's
// chain, and inverting its ops on its CAR slice alone gives prevData back
// (the sync 1.1 check). It returns the #identity and #account messages.
func checkFirehose(t *testing.T, msgs []firehoseMsg, firstSeq int64, keys map[syntax.DID]crypto.PublicKey, commits map[syntax.DID][]*repo.CommitResult) (other []firehoseMsg) {
	t.Helper()
	state := map[syntax.DID]*repoState{}
	next := map[syntax.DID]int{}
	for i, m := range msgs {
		if want := firstSeq + int64(i); m.seq != want {
			t.Fatalf("message %d: seq %d, want %d", i, m.seq, want)
		}
		if m.typ != "#commit" {
			other = append(other, m)
			continue
		}
		var ev atproto.SyncSubscribeRepos_Commit
		if err := lexutil.UnmarshalCBOR(m.body, &ev); err != nil {
			t.Fatalf("seq %d: decode #commit: %v", m.seq, err)
		}
		did := syntax.DID(ev.Repo)
		key, ok := keys[did]
		if !ok {
			t.Fatalf("seq %d: commit of unknown account %s", m.seq, did)
		}
		if ev.Seq != m.seq || ev.TooBig || ev.Rebase || ev.Blobs == nil || len(ev.Blobs) != 0 {
			t.Errorf("seq %d: seq %d tooBig %v rebase %v blobs %v", m.seq, ev.Seq, ev.TooBig, ev.Rebase, ev.Blobs)
		}
		if _, err := syntax.ParseDatetime(ev.Time); err != nil {
			t.Errorf("seq %d: time %q: %v", m.seq, ev.Time, err)
		}
		roots, blocks, err := car.ReadAll(bytes.NewReader(ev.Blocks), car.CommitLimits())
		if err != nil {
			t.Fatalf("seq %d: CAR slice: %v", m.seq, err)
		}
		if len(roots) == 0 || roots[0] != ev.Commit {
			t.Fatalf("seq %d: CAR roots %v, want the commit %s first", m.seq, roots, ev.Commit)
		}
		cb, ok := blocks[ev.Commit]
		if !ok {
			t.Fatalf("seq %d: commit block not in the CAR slice", m.seq)
		}
		c, err := repo.ParseCommit(cb)
		if err != nil {
			t.Fatalf("seq %d: commit: %v", m.seq, err)
		}
		if err := c.Verify(key); err != nil {
			t.Errorf("seq %d: signature: %v", m.seq, err)
		}
		if c.DID != did || string(c.Rev) != ev.Rev {
			t.Errorf("seq %d: commit of %s rev %s, event says %s rev %s", m.seq, c.DID, c.Rev, did, ev.Rev)
		}

		// The commit the test made, in order.
		i := next[did]
		if i >= len(commits[did]) {
			t.Fatalf("seq %d: more commits of %s than were made", m.seq, did)
		}
		next[did]++
		want := commits[did][i]
		if ev.Commit != want.CID || ev.Rev != string(want.Rev) {
			t.Fatalf("seq %d: commit %s rev %s, want %s rev %s (commit %d of %s)", m.seq, ev.Commit, ev.Rev, want.CID, want.Rev, i, did)
		}
		ops := make([]repo.Op, len(ev.Ops))
		for j, op := range ev.Ops {
			ops[j] = repo.Op{Action: op.Action, Path: op.Path, CID: op.Cid, Prev: op.Prev}
		}
		if len(ops) != len(want.Ops) {
			t.Errorf("seq %d: %d ops, want %d", m.seq, len(ops), len(want.Ops))
		} else {
			for j := range ops {
				if !sameOp(ops[j], want.Ops[j]) {
					t.Errorf("seq %d: op %d is %+v, want %+v", m.seq, j, ops[j], want.Ops[j])
				}
			}
		}

		// The chain: since and prevData name the previous commit.
		prev := state[did]
		switch {
		case prev == nil:
			if ev.Since != nil || ev.PrevData != nil {
				t.Errorf("seq %d: first commit of %s has since %v prevData %v", m.seq, did, ev.Since, ev.PrevData)
			}
		default:
			if ev.Since == nil || *ev.Since != prev.rev {
				t.Errorf("seq %d: since %v, want %s", m.seq, ev.Since, prev.rev)
			}
			if ev.Rev <= prev.rev {
				t.Errorf("seq %d: rev %s not after %s", m.seq, ev.Rev, prev.rev)
			}
			if ev.PrevData == nil || *ev.PrevData != prev.data {
				t.Fatalf("seq %d: prevData %v, want %s", m.seq, ev.PrevData, prev.data)
			}
			got, err := repo.InvertOps(blocks, c.Data, ops)
			if err != nil {
				t.Fatalf("seq %d: inverting the ops: %v", m.seq, err)
			}
			if got != *ev.PrevData {
				t.Errorf("seq %d: inversion gives %s, want prevData %s", m.seq, got, *ev.PrevData)
			}
		}
		state[did] = &repoState{rev: ev.Rev, data: c.Data}
	}
	for did, cs := range commits {
		if next[did] != len(cs) {
			t.Errorf("%s: %d commits on the firehose, want %d", did, next[did], len(cs))
		}
	}
	return other
}

func sameOp(a, b repo.Op) bool {
	eq := func(x, y *data.CID) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Action == b.Action && a.Path == b.Path && eq(a.CID, b.CID) && eq(a.Prev, b.Prev)
}

// firstCommit is the commit an account's repository starts with, read back
// from its store (seedAccount makes it without returning it).
func firstCommit(t *testing.T, p *testPDS, did syntax.DID) *repo.CommitResult {
	t.Helper()
	head, rev, ok, err := p.srv.repoHead(t.Context(), did)
	if err != nil || !ok {
		t.Fatalf("head of %s: %v %v", did, ok, err)
	}
	return &repo.CommitResult{CID: head, Rev: syntax.TID(rev)}
}

// seedFirehoseAccount creates an account and returns its key and the list
// of its commits so far (the first one).
func seedFirehoseAccount(t *testing.T, p *testPDS, handle string, keys map[syntax.DID]crypto.PublicKey, commits map[syntax.DID][]*repo.CommitResult) syntax.DID {
	t.Helper()
	did, key := seedAccount(t, p, handle)
	keys[did] = key.Public()
	first := firstCommit(t, p, did)
	commits[did] = []*repo.CommitResult{first}
	return did
}

func TestFirehoseCommits(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	ctx := t.Context()
	live := subscribe(t, p, -1)
	waitConsumers(t, p, 1)

	keys := map[syntax.DID]crypto.PublicKey{}
	commits := map[syntax.DID][]*repo.CommitResult{}
	alice := seedFirehoseAccount(t, p, "alice.test", keys, commits)
	bob := seedFirehoseAccount(t, p, "bob.test", keys, commits)
	add := func(did syntax.DID, writes ...repo.RecordWrite) {
		commits[did] = append(commits[did], commit(t, p, did, writes...))
	}
	add(alice, createPost(t, "3kaaaaaaaaaa2", "a1"), createPost(t, "3kaaaaaaaaab2", "a2"), createPost(t, "3kaaaaaaaaac2", "a3"))
	add(bob, createPost(t, "3kbbbbbbbbba2", "b1"))
	add(alice, updatePost(t, "3kaaaaaaaaaa2", "a1 edited"), deletePost("3kaaaaaaaaab2"), createPost(t, "3kaaaaaaaaad2", "a4"))
	add(bob, createPost(t, "3kbbbbbbbbbb2", "b2"), createPost(t, "3kbbbbbbbbbc2", "b3"))
	add(alice, deletePost("3kaaaaaaaaaa2"))
	add(bob, deletePost("3kbbbbbbbbba2"), updatePost(t, "3kbbbbbbbbbb2", "b2 edited"))
	// A batch as large as a commit may be.
	var many []repo.RecordWrite
	for i := range repo.MaxCommitOps {
		many = append(many, createPost(t, fmt.Sprintf("3kmany%07d", i), fmt.Sprintf("post %d", i)))
	}
	add(alice, many...)
	add(bob) // an empty commit: only the rev moves
	if err := p.srv.emitIdentity(ctx, alice, "alice.test"); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.emitAccount(ctx, bob, false, "deactivated"); err != nil {
		t.Fatal(err)
	}

	n := 2 // the #identity and #account events
	for _, cs := range commits {
		n += len(cs)
	}
	msgs := live.waitFor(n)
	other := checkFirehose(t, msgs, 1, keys, commits)
	if len(other) != 2 || other[0].typ != "#identity" || other[1].typ != "#account" {
		t.Fatalf("other messages %v, want #identity then #account", other)
	}
	var id atproto.SyncSubscribeRepos_Identity
	if err := lexutil.UnmarshalCBOR(other[0].body, &id); err != nil {
		t.Fatal(err)
	}
	if id.Did != string(alice) || id.Handle == nil || *id.Handle != "alice.test" || id.Seq != other[0].seq {
		t.Errorf("#identity %+v", id)
	}
	var acct atproto.SyncSubscribeRepos_Account
	if err := lexutil.UnmarshalCBOR(other[1].body, &acct); err != nil {
		t.Fatal(err)
	}
	if acct.Did != string(bob) || acct.Active || acct.Status == nil || *acct.Status != "deactivated" || acct.Seq != other[1].seq {
		t.Errorf("#account %+v", acct)
	}

	// Replays give the very same messages: from the start, and from the
	// middle.
	all := subscribe(t, p, 0).waitFor(n)
	sameMessages(t, "replay from 0", all, msgs)
	mid := int64(n / 2)
	rest := subscribe(t, p, mid).waitFor(n - int(mid))
	sameMessages(t, "replay from the middle", rest, msgs[mid:])
}

// waitConsumers waits until the firehose has n live consumers, so that a
// live-only subscription made before the writes misses none of them.
func waitConsumers(t *testing.T, p *testPDS, n int) {
	t.Helper()
	deadline := time.Now().Add(firehoseWait)
	for p.srv.events.Consumers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d live consumers, want %d", p.srv.events.Consumers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sameMessages(t *testing.T, what string, got, want []firehoseMsg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].seq != want[i].seq || got[i].typ != want[i].typ || !bytes.Equal(got[i].body, want[i].body) {
			t.Fatalf("%s: message %d is seq %d %s, want seq %d %s (or bodies differ)", what, i, got[i].seq, got[i].typ, want[i].seq, want[i].typ)
		}
	}
}

// TestFirehoseRestart stops the PDS and starts it again on the same data:
// the firehose keeps every event, and new ones continue from the next seq.
func TestFirehoseRestart(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	keys := map[syntax.DID]crypto.PublicKey{}
	commits := map[syntax.DID][]*repo.CommitResult{}
	alice := seedFirehoseAccount(t, p, "alice.test", keys, commits)
	bob := seedFirehoseAccount(t, p, "bob.test", keys, commits)
	for i := range 5 {
		commits[alice] = append(commits[alice], commit(t, p, alice, createPost(t, fmt.Sprintf("3kalice%06d", i), "before")))
		commits[bob] = append(commits[bob], commit(t, p, bob, createPost(t, fmt.Sprintf("3kbob%08d", i), "before")))
	}
	before := 2 + 10
	first := subscribe(t, p, 0).waitFor(before)
	checkFirehose(t, first, 1, keys, commits)

	// Writes right before the stop: Close must not lose them.
	for i := range 3 {
		commits[alice] = append(commits[alice], commit(t, p, alice, createPost(t, fmt.Sprintf("3klast%07d", i), "just before")))
	}
	p.stop()

	p2 := startPDS(t, p.dir, p.plcURL, nil)
	live := subscribe(t, p2, int64(before))
	for i := range 4 {
		commits[alice] = append(commits[alice], commit(t, p2, alice, createPost(t, fmt.Sprintf("3kafter%06d", i), "after")))
		commits[bob] = append(commits[bob], commit(t, p2, bob, createPost(t, fmt.Sprintf("3kbafter%05d", i), "after")))
	}
	total := before + 3 + 8
	all := subscribe(t, p2, 0).waitFor(total)
	checkFirehose(t, all, 1, keys, commits)
	sameMessages(t, "events from before the restart", all[:before], first)
	sameMessages(t, "live after the restart", live.waitFor(total-before), all[before:])

	latest, err := p2.srv.seq.LatestSeq(t.Context())
	if err != nil || latest != int64(total) {
		t.Errorf("LatestSeq = %d, %v; want %d", latest, err, total)
	}
}

// xrpcWrite makes a write call through the XRPC API and returns the
// decoded JSON response.
func xrpcWrite(t *testing.T, p *testPDS, nsid, token string, body map[string]any) map[string]any {
	t.Helper()
	var out map[string]any
	if status, name := p.call("POST", nsid, token, nil, body, &out); status != http.StatusOK {
		t.Fatalf("%s: %d %s", nsid, status, name)
	}
	return out
}

// commitOf is the commit a write call reports, with the ops it made.
func commitOf(t *testing.T, out map[string]any, ops ...repo.Op) *repo.CommitResult {
	t.Helper()
	cm, _ := out["commit"].(map[string]any)
	cs, _ := cm["cid"].(string)
	rev, _ := cm["rev"].(string)
	c, err := data.ParseCID(cs)
	if err != nil {
		t.Fatalf("commit in %v: %v", out, err)
	}
	return &repo.CommitResult{CID: c, Rev: syntax.TID(rev), Ops: ops}
}

func cidOf(t *testing.T, v any) *data.CID {
	t.Helper()
	s, _ := v.(string)
	c, err := data.ParseCID(s)
	if err != nil {
		t.Fatalf("cid %v: %v", v, err)
	}
	return &c
}

// TestFirehoseXRPC writes through the repository API as a client does and
// checks the firehose, then reads the written blob back with getBlob.
func TestFirehoseXRPC(t *testing.T) {
	t.Parallel()
	p := newTestPDS(t, nil)
	keys := map[syntax.DID]crypto.PublicKey{}
	commits := map[syntax.DID][]*repo.CommitResult{}
	did := seedFirehoseAccount(t, p, "alice.test", keys, commits)
	token := session(t, p, did)
	post := func(text string) map[string]any {
		return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-02T03:04:05.000Z"}
	}
	path := func(rkey string) string { return string(postCollection) + "/" + rkey }

	out := xrpcWrite(t, p, "com.atproto.repo.createRecord", token, map[string]any{
		"repo": string(did), "collection": string(postCollection), "rkey": "3kaaaaaaaaaa2", "record": post("one")})
	c1 := cidOf(t, out["cid"])
	commits[did] = append(commits[did], commitOf(t, out, repo.Op{Action: "create", Path: path("3kaaaaaaaaaa2"), CID: c1}))

	out = xrpcWrite(t, p, "com.atproto.repo.putRecord", token, map[string]any{
		"repo": string(did), "collection": string(postCollection), "rkey": "3kaaaaaaaaaa2", "record": post("one, edited")})
	c2 := cidOf(t, out["cid"])
	commits[did] = append(commits[did], commitOf(t, out, repo.Op{Action: "update", Path: path("3kaaaaaaaaaa2"), CID: c2, Prev: c1}))

	out = xrpcWrite(t, p, "com.atproto.repo.applyWrites", token, map[string]any{
		"repo": string(did), "writes": []any{
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": string(postCollection), "rkey": "3kbbbbbbbbbb2", "value": post("two")},
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": string(postCollection), "rkey": "3kcccccccccc2", "value": post("three")},
			map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": string(postCollection), "rkey": "3kaaaaaaaaaa2"},
		}})
	results, _ := out["results"].([]any)
	if len(results) != 3 {
		t.Fatalf("applyWrites results %v", out["results"])
	}
	cb := cidOf(t, results[0].(map[string]any)["cid"])
	cc := cidOf(t, results[1].(map[string]any)["cid"])
	commits[did] = append(commits[did], commitOf(t, out,
		repo.Op{Action: "create", Path: path("3kbbbbbbbbbb2"), CID: cb},
		repo.Op{Action: "create", Path: path("3kcccccccccc2"), CID: cc},
		repo.Op{Action: "delete", Path: path("3kaaaaaaaaaa2"), Prev: c2}))

	out = xrpcWrite(t, p, "com.atproto.repo.deleteRecord", token, map[string]any{
		"repo": string(did), "collection": string(postCollection), "rkey": "3kbbbbbbbbbb2"})
	commits[did] = append(commits[did], commitOf(t, out, repo.Op{Action: "delete", Path: path("3kbbbbbbbbbb2"), Prev: cb}))

	// A post with an image: upload, reference, then getBlob.
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{9}, 2000)...)
	req, err := http.NewRequest("POST", p.url+"/xrpc/com.atproto.repo.uploadBlob", bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "image/png")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up struct {
		Blob map[string]any `json:"blob"`
	}
	err = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("uploadBlob: %d %v", resp.StatusCode, err)
	}
	withImage := post("look")
	withImage["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{
		map[string]any{"alt": "a picture", "image": up.Blob}}}
	out = xrpcWrite(t, p, "com.atproto.repo.createRecord", token, map[string]any{
		"repo": string(did), "collection": string(postCollection), "rkey": "3kdddddddddd2", "record": withImage})
	commits[did] = append(commits[did], commitOf(t, out, repo.Op{Action: "create", Path: path("3kdddddddddd2"), CID: cidOf(t, out["cid"])}))

	n := 0
	for _, cs := range commits {
		n += len(cs)
	}
	checkFirehose(t, subscribe(t, p, 0).waitFor(n), 1, keys, commits)

	ref, _ := up.Blob["ref"].(map[string]any)
	link, _ := ref["$link"].(string)
	r := p.get("com.atproto.sync.getBlob", params("did", string(did), "cid", link), nil).mustOK(t, "getBlob")
	if !bytes.Equal(r.body, png) || r.header.Get("Content-Type") != "image/png" {
		t.Errorf("getBlob: %d bytes of %s, want the %d uploaded of image/png", len(r.body), r.header.Get("Content-Type"), len(png))
	}
	var listed struct {
		Cids []string `json:"cids"`
	}
	p.getJSON("com.atproto.sync.listBlobs", params("did", string(did)), nil, &listed).mustOK(t, "listBlobs")
	if len(listed.Cids) != 1 || listed.Cids[0] != link {
		t.Errorf("listBlobs = %v, want [%s]", listed.Cids, link)
	}
}
