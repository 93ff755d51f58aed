package interop

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/devnet"
)

// TestRelayFirehoseReaders runs a Welkin devnet (PLC directory, PDS and
// the relay following that PDS, in this process, each on its own
// loopback port and talking to the others over HTTP), makes accounts
// write (the scenario of node/pds.js for alice and bob: creates, edits,
// deletes, an applyWrites batch; and carol, written from Go at the same
// time: creates, updates, deletes), and reads the relay's
// subscribeRepos from cursor 0 with the readers of pds_firehose_test.go:
//
//   - indigo: every #commit passes the sync-1.1 checks (signature,
//     inversion of the ops against prevData, rev/since chain, prevData
//     naming the previous commit's data) and seqs increase strictly;
//   - @atproto/sync (node/pds_firehose.js): every op of every commit is
//     emitted, which it does only once the signature and the record's MST
//     proof verify, with the same content indigo saw.
//
// A third reader, indigo again, reads the PDS's own stream, and every
// event the PDS emitted must arrive through the relay, per account in the
// PDS's order with the same commit and ops, except a #sync that repeats
// the rev of the commit before it (the #sync a new account's first commit
// is followed by): the relay drops those as duplicate revs, as the sync
// specification asks.
func TestRelayFirehoseReaders(t *testing.T) {
	requireNode(t)
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
	pdsURL, plcURL := d.URL("pds"), d.URL("plc")
	pdsWS, relayWS := loopbackWS(t, pdsURL), loopbackWS(t, d.URL("relay"))
	const subscribe = "/xrpc/com.atproto.sync.subscribeRepos?cursor=0"

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	upstream := newGoFirehose(plcURL)
	upDone, err := upstream.start(ctx, pdsWS+subscribe)
	if err != nil {
		t.Fatalf("indigo: subscribing to the PDS at %s: %v", pdsWS, err)
	}
	relayed := newGoFirehose(plcURL)
	relayDone, err := relayed.start(ctx, relayWS+subscribe)
	if err != nil {
		t.Fatalf("indigo: subscribing to the relay at %s: %v", relayWS, err)
	}
	node, err := startNodeFirehose(t, relayWS, plcURL)
	if err != nil {
		t.Fatal(err)
	}

	// carol writes from Go while the scenario runs, so that the relay
	// handles several accounts' events at once.
	carol := make(chan carolResult, 1)
	go func() {
		did, rev, commits, err := writeCarol(ctx, pdsURL)
		carol <- carolResult{did, rev, commits, err}
	}()
	doc := runScenario(t, pdsURL)
	cr := <-carol
	if cr.err != nil {
		t.Fatalf("carol's writes: %v", cr.err)
	}
	if len(doc.Meta.Revs) != 2 {
		t.Fatalf("the scenario reported the final revs of %d accounts, want 2: %v", len(doc.Meta.Revs), doc.Meta.Revs)
	}
	revs := map[string]string{cr.did: cr.rev}
	commits := map[string]int{cr.did: cr.commits}
	for did, rev := range doc.Meta.Revs {
		revs[did] = rev
		commits[did] = doc.Meta.Commits[did]
	}

	// Both indigo readers reach every account's last commit; the relay's
	// highest seq then is where the Node reader must get to.
	for _, r := range []struct {
		name string
		g    *goFirehose
		done <-chan error
	}{{"the PDS", upstream, upDone}, {"the relay", relayed, relayDone}} {
		deadline := time.Now().Add(firehoseCatchUp)
		for !r.g.reached(revs) {
			select {
			case err := <-r.done:
				t.Fatalf("indigo on %s: the stream ended before the last commits: %v\n%s", r.name, err, r.g.report())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("indigo on %s: did not see the last commits %v within %s\n%s", r.name, revs, firehoseCatchUp, r.g.report())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	lastSeq := relayed.maxSeq()
	nodeLines := node.finish(t, lastSeq)
	cancel()
	<-upDone
	<-relayDone

	upstream.mu.Lock()
	defer upstream.mu.Unlock()
	relayed.mu.Lock()
	defer relayed.mu.Unlock()
	for _, p := range upstream.problems {
		t.Errorf("indigo on the PDS: %s", p)
	}
	for _, p := range relayed.problems {
		t.Errorf("indigo on the relay: %s", p)
	}
	for did, want := range commits {
		if got := relayed.commits[did]; got != want {
			t.Errorf("indigo saw %d commits of %s on the relay, the accounts made %d", got, did, want)
		}
	}
	checkRelayedAll(t, upstream.events, relayed.events)
	checkNodeFirehose(t, relayed.events, nodeLines, lastSeq)
	t.Logf("the PDS emitted %d events; indigo accepted %d from the relay up to seq %d; @atproto/sync emitted %d lines",
		len(upstream.events), len(relayed.events), lastSeq, len(nodeLines))
}

type carolResult struct {
	did, rev string
	commits  int
	err      error
}

// loopbackWS turns a devnet URL (http://localhost:PORT) into the ws://
// base of the same port on 127.0.0.1, where the devnet listens.
func loopbackWS(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return "ws://127.0.0.1:" + u.Port()
}

// writeCarol creates carol.test on the PDS at pdsURL and writes: posts,
// a profile created and then updated, posts deleted, and a post edited
// with putRecord. It returns the DID, the rev of the last commit and the
// number of commits made (account creation included).
func writeCarol(ctx context.Context, pdsURL string) (did, rev string, commits int, err error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	anon := &xrpc.Client{Host: pdsURL, HTTPClient: hc}
	email, password := "carol@example.test", "carol-password-1"
	acct, err := atproto.ServerCreateAccount(ctx, anon, &atproto.ServerCreateAccount_Input{
		Handle: "carol.test", Email: &email, Password: &password,
	})
	if err != nil {
		return "", "", 0, fmt.Errorf("createAccount carol.test on %s: %w", pdsURL, err)
	}
	did, commits = acct.Did, 1
	c := &xrpc.Client{Host: pdsURL, HTTPClient: hc, Auth: xrpc.NewSessionAuth(acct.AccessJwt, acct.RefreshJwt)}
	const post, profile = "app.bsky.feed.post", "app.bsky.actor.profile"
	at := func(i int) string {
		return time.Date(2026, 2, 1, 0, 0, i, 0, time.UTC).Format("2006-01-02T15:04:05.000Z")
	}
	put := func(collection, rkey string, rec map[string]any) error {
		_, err := atproto.RepoPutRecord(ctx, c, &atproto.RepoPutRecord_Input{Repo: did, Collection: collection, Rkey: rkey, Record: rec})
		if err != nil {
			return fmt.Errorf("carol: putRecord %s/%s: %w", collection, rkey, err)
		}
		commits++
		return nil
	}
	var rkeys []string
	for i := range 6 {
		out, err := atproto.RepoCreateRecord(ctx, c, &atproto.RepoCreateRecord_Input{Repo: did, Collection: post,
			Record: map[string]any{"$type": post, "text": fmt.Sprintf("carol's post %d", i), "createdAt": at(i)}})
		if err != nil {
			return "", "", 0, fmt.Errorf("carol: createRecord post %d: %w", i, err)
		}
		commits++
		rkeys = append(rkeys, out.Uri[strings.LastIndex(out.Uri, "/")+1:])
		switch i {
		case 1:
			if err := put(profile, "self", map[string]any{"$type": profile, "displayName": "Carol"}); err != nil {
				return "", "", 0, err
			}
		case 3:
			if err := put(profile, "self", map[string]any{"$type": profile, "displayName": "Carol C.", "description": "edited"}); err != nil {
				return "", "", 0, err
			}
		}
	}
	if err := put(post, rkeys[2], map[string]any{"$type": post, "text": "carol's post 2, edited", "createdAt": at(2)}); err != nil {
		return "", "", 0, err
	}
	for _, i := range []int{0, 4} {
		if _, err := atproto.RepoDeleteRecord(ctx, c, &atproto.RepoDeleteRecord_Input{Repo: did, Collection: post, Rkey: rkeys[i]}); err != nil {
			return "", "", 0, fmt.Errorf("carol: deleteRecord post %d: %w", i, err)
		}
		commits++
	}
	latest, err := atproto.SyncGetLatestCommit(ctx, anon, &atproto.SyncGetLatestCommit_Params{Did: did})
	if err != nil {
		return "", "", 0, fmt.Errorf("carol: getLatestCommit: %w", err)
	}
	return did, latest.Rev, commits, nil
}

// checkRelayedAll requires every event the PDS emitted to have come
// through the relay, with the same content, in the PDS's order for each
// account, and nothing else; a #sync repeating the rev of the account's
// previous commit is the one event the relay may drop. The caller holds
// both readers' locks.
func checkRelayedAll(t *testing.T, upstream, relayed []goEvent) {
	t.Helper()
	perDID := func(evs []goEvent) map[string][]goEvent {
		out := map[string][]goEvent{}
		for _, e := range evs {
			out[e.did] = append(out[e.did], e)
		}
		return out
	}
	want, got := map[string][]goEvent{}, perDID(relayed)
	dropped := 0
	for did, evs := range perDID(upstream) {
		lastRev := ""
		for _, e := range evs {
			if e.kind == "sync" && e.rev == lastRev {
				dropped++
				continue
			}
			if e.kind == "commit" {
				lastRev = e.rev
			}
			want[did] = append(want[did], e)
		}
	}
	if len(want) == 0 {
		t.Fatal("the PDS emitted no events")
	}
	for did, w := range want {
		g := got[did]
		for i, e := range w {
			if i >= len(g) {
				t.Errorf("%s: the relay carried %d events, the PDS emitted %d (and %d droppable); the first missing is PDS seq %d #%s rev %s",
					did, len(g), len(w), dropped, e.seq, e.kind, e.rev)
				break
			}
			r := g[i]
			if r.kind != e.kind || r.rev != e.rev || r.commit != e.commit || !sameOps(r.ops, e.ops) {
				t.Errorf("%s: event %d: the PDS emitted seq %d #%s rev %s commit %s ops %v; the relay carried seq %d #%s rev %s commit %s ops %v",
					did, i, e.seq, e.kind, e.rev, e.commit, e.ops, r.seq, r.kind, r.rev, r.commit, r.ops)
			}
		}
		if len(g) > len(w) {
			t.Errorf("%s: the relay carried %d events, more than the %d the PDS emitted; the first extra is relay seq %d #%s rev %s",
				did, len(g), len(w), g[len(w)].seq, g[len(w)].kind, g[len(w)].rev)
		}
	}
	for did, g := range got {
		if _, ok := want[did]; !ok {
			t.Errorf("the relay carried %d events of %s, which the PDS never emitted", len(g), did)
		}
	}
	t.Logf("%d accounts; the relay dropped %d duplicate #sync events", len(want), dropped)
}

func sameOps(a, b []tsOp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
