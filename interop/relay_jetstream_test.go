package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jsclient "github.com/bluesky-social/jetstream/pkg/client"
	"github.com/bluesky-social/jetstream/pkg/client/schedulers/sequential"
	"github.com/bluesky-social/jetstream/pkg/models"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/devnet"
)

// jetstreamCatchUp bounds how long the Jetstream clients may take to see
// every write.
const jetstreamCatchUp = 60 * time.Second

// TestRelayJetstream reads the relay's JSON stream (/subscribe) with
// Jetstream's own Go client (github.com/bluesky-social/jetstream
// pkg/client), once without compression, following the stream live from
// before the writes, and once with zstd compression (the client's
// default, decoding with its own copy of the dictionary), replaying from
// cursor 0 after the writes. An account on the devnet's PDS creates,
// updates and deletes records, one by one and in an applyWrites batch;
// every operation must reach each client exactly once, with the record's
// JSON and CID, and time_us must increase along each stream.
func TestRelayJetstream(t *testing.T) {
	logs := &lockedBuffer{}
	base := freePortBase(t, 3)
	d, err := devnet.Start(t.Context(), devnet.Config{
		DataDir:  t.TempDir(),
		PortBase: base,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("starting the devnet on ports %d-%d: %v", base, base+2, err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("closing the devnet: %v", err)
		}
		if t.Failed() {
			t.Logf("devnet logs:\n%s", pdsTail(logs.String(), 12000))
		}
	})
	url := "ws" + strings.TrimPrefix(loopbackURL(t, d.URL("relay")), "http") + "/subscribe"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// The live reader connects before anything is written, with a
	// cursor of now (which replays nothing), so that it is in place.
	now := time.Now().UnixMicro()
	live := startJetstream(ctx, t, url, false, &now)

	want, err := writeDave(ctx, d.URL("pds"))
	if err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	replayed := startJetstream(ctx, t, url, true, &zero)

	for _, r := range []*jetstreamReader{live, replayed} {
		deadline := time.Now().Add(jetstreamCatchUp)
		for !r.has(want) {
			if err := r.failed(); err != nil {
				t.Fatalf("%s: the client stopped: %v\n%s", r.name, err, r.report())
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not every write arrived within %s\n%s", r.name, jetstreamCatchUp, r.report())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cancel()
	for _, r := range []*jetstreamReader{live, replayed} {
		r.check(t, want)
		r.mu.Lock()
		t.Logf("%s read %d events; %d operations were written", r.name, len(r.events), len(want.ops))
		r.mu.Unlock()
	}
}

// daveOp is one record operation as the writer made it.
type daveOp struct {
	op, collection, rkey, cid string
	record                    map[string]any // nil for deletes
}

func (o daveOp) key() string { return o.op + " " + o.collection + "/" + o.rkey + " " + o.cid }

// writeDave creates dave.test and writes: posts, a profile created then
// updated, a post deleted, and an applyWrites batch creating, updating
// and deleting. It returns the DID and the operations.
func writeDave(ctx context.Context, pdsURL string) (wantSet, error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	anon := &xrpc.Client{Host: pdsURL, HTTPClient: hc}
	email, password := "dave@example.test", "dave-password-1"
	acct, err := atproto.ServerCreateAccount(ctx, anon, &atproto.ServerCreateAccount_Input{
		Handle: "dave.test", Email: &email, Password: &password,
	})
	if err != nil {
		return wantSet{}, fmt.Errorf("createAccount dave.test on %s: %w", pdsURL, err)
	}
	did := acct.Did
	c := &xrpc.Client{Host: pdsURL, HTTPClient: hc, Auth: xrpc.NewSessionAuth(acct.AccessJwt, acct.RefreshJwt)}
	const post, profile = "app.bsky.feed.post", "app.bsky.actor.profile"
	var ops []daveOp
	at := func(i int) string {
		return time.Date(2026, 3, 1, 0, 0, i, 0, time.UTC).Format("2006-01-02T15:04:05.000Z")
	}
	postRec := func(text string, i int) map[string]any {
		return map[string]any{"$type": post, "text": text, "createdAt": at(i), "langs": []any{"en"}}
	}
	var rkeys []string
	for i := range 4 {
		rec := postRec(fmt.Sprintf("dave's post %d <&>", i), i)
		out, err := atproto.RepoCreateRecord(ctx, c, &atproto.RepoCreateRecord_Input{Repo: did, Collection: post, Record: rec})
		if err != nil {
			return wantSet{}, fmt.Errorf("dave: createRecord %d: %w", i, err)
		}
		rkey := out.Uri[strings.LastIndex(out.Uri, "/")+1:]
		rkeys = append(rkeys, rkey)
		ops = append(ops, daveOp{"create", post, rkey, out.Cid, rec})
	}
	for i, name := range []string{"Dave", "Dave D."} {
		rec := map[string]any{"$type": profile, "displayName": name}
		out, err := atproto.RepoPutRecord(ctx, c, &atproto.RepoPutRecord_Input{Repo: did, Collection: profile, Rkey: "self", Record: rec})
		if err != nil {
			return wantSet{}, fmt.Errorf("dave: putRecord profile: %w", err)
		}
		op := "create"
		if i > 0 {
			op = "update"
		}
		ops = append(ops, daveOp{op, profile, "self", out.Cid, rec})
	}
	if _, err := atproto.RepoDeleteRecord(ctx, c, &atproto.RepoDeleteRecord_Input{Repo: did, Collection: post, Rkey: rkeys[0]}); err != nil {
		return wantSet{}, fmt.Errorf("dave: deleteRecord: %w", err)
	}
	ops = append(ops, daveOp{op: "delete", collection: post, rkey: rkeys[0]})

	batchKey := "3mdavebatch22"
	created, updated := postRec("made in a batch", 10), postRec("dave's post 1, edited in a batch", 11)
	out, err := atproto.RepoApplyWrites(ctx, c, &atproto.RepoApplyWrites_Input{Repo: did, Writes: []*atproto.RepoApplyWrites_Input_Writes_Elem{
		{RepoApplyWrites_Create: &atproto.RepoApplyWrites_Create{Collection: post, Rkey: &batchKey, Value: created}},
		{RepoApplyWrites_Update: &atproto.RepoApplyWrites_Update{Collection: post, Rkey: rkeys[1], Value: updated}},
		{RepoApplyWrites_Delete: &atproto.RepoApplyWrites_Delete{Collection: post, Rkey: rkeys[2]}},
	}})
	if err != nil {
		return wantSet{}, fmt.Errorf("dave: applyWrites: %w", err)
	}
	if len(out.Results) != 3 || out.Results[0].RepoApplyWrites_CreateResult == nil || out.Results[1].RepoApplyWrites_UpdateResult == nil {
		return wantSet{}, fmt.Errorf("dave: applyWrites answered %d results, not create, update, delete", len(out.Results))
	}
	ops = append(ops,
		daveOp{"create", post, batchKey, out.Results[0].RepoApplyWrites_CreateResult.Cid, created},
		daveOp{"update", post, rkeys[1], out.Results[1].RepoApplyWrites_UpdateResult.Cid, updated},
		daveOp{op: "delete", collection: post, rkey: rkeys[2]},
	)
	return wantSet{did: did, ops: ops}, nil
}

type wantSet struct {
	did string
	ops []daveOp
}

// jetstreamReader runs one Jetstream client and keeps what it reads.
type jetstreamReader struct {
	name   string
	mu     sync.Mutex
	events []*models.Event
	err    error
	done   bool
}

func startJetstream(ctx context.Context, t *testing.T, url string, compress bool, cursor *int64) *jetstreamReader {
	t.Helper()
	r := &jetstreamReader{name: fmt.Sprintf("jetstream client (compress=%v, cursor=%d)", compress, *cursor)}
	cfg := jsclient.DefaultClientConfig()
	cfg.WebsocketURL = url
	cfg.Compress = compress
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	sched := sequential.NewScheduler(r.name, lg, func(_ context.Context, ev *models.Event) error {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
		return nil
	})
	c, err := jsclient.NewClient(cfg, lg, sched)
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	// The client's read loop returns when its connection ends, which the
	// devnet's Close ends at the latest.
	go func() {
		err := c.ConnectAndRead(ctx, cursor)
		r.mu.Lock()
		r.err, r.done = err, true
		r.mu.Unlock()
	}()
	return r
}

func (r *jetstreamReader) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		if r.err == nil {
			return fmt.Errorf("the stream ended")
		}
		return r.err
	}
	return nil
}

// commitKey is the daveOp key of a commit event.
func commitKey(ev *models.Event) string {
	c := ev.Commit
	return c.Operation + " " + c.Collection + "/" + c.RKey + " " + c.CID
}

// has reports whether every wanted operation has arrived.
func (r *jetstreamReader) has(w wantSet) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	for _, ev := range r.events {
		if ev.Did == w.did && ev.Kind == models.EventKindCommit && ev.Commit != nil {
			seen[commitKey(ev)] = true
		}
	}
	for _, o := range w.ops {
		if !seen[o.key()] {
			return false
		}
	}
	return true
}

// check requires each wanted operation exactly once with its record, no
// other commit of the account, and time_us increasing strictly.
func (r *jetstreamReader) check(t *testing.T, w wantSet) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	wanted := map[string]daveOp{}
	for _, o := range w.ops {
		wanted[o.key()] = o
	}
	count := map[string]int{}
	var last int64
	for _, ev := range r.events {
		if ev.TimeUS <= last {
			t.Errorf("%s: time_us %d follows %d", r.name, ev.TimeUS, last)
		}
		last = ev.TimeUS
		if ev.Did != w.did || ev.Kind != models.EventKindCommit {
			continue
		}
		if ev.Commit == nil || ev.Commit.Rev == "" {
			t.Errorf("%s: a commit event without its commit or rev: %+v", r.name, ev)
			continue
		}
		k := commitKey(ev)
		o, ok := wanted[k]
		if !ok {
			t.Errorf("%s: an operation nobody made: %s", r.name, k)
			continue
		}
		count[k]++
		if o.record == nil {
			if len(ev.Commit.Record) != 0 {
				t.Errorf("%s: %s carries a record: %s", r.name, k, ev.Commit.Record)
			}
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(ev.Commit.Record, &got); err != nil {
			t.Errorf("%s: %s: record %s: %v", r.name, k, ev.Commit.Record, err)
			continue
		}
		if !reflect.DeepEqual(got, o.record) {
			t.Errorf("%s: %s: record %s, want %v", r.name, k, ev.Commit.Record, o.record)
		}
	}
	for _, o := range w.ops {
		if n := count[o.key()]; n != 1 {
			t.Errorf("%s: %s arrived %d times, want once", r.name, o.key(), n)
		}
	}
}

func (r *jetstreamReader) report() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d events read", len(r.events))
	for i, ev := range r.events {
		if i == 40 {
			fmt.Fprintf(&b, "\n...")
			break
		}
		js, _ := json.Marshal(ev)
		fmt.Fprintf(&b, "\n%s", js)
	}
	return b.String()
}
