package interop

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
	"github.com/welkin-atproto/welkin/devnet"
)

// TestRelayFirehoseReaders runs a Welkin relay, follows PDSs with it
// while accounts write, and checks the relay's output with readers that
// no one here wrote. It runs twice:
//
//   - devnet: a Welkin devnet (PLC directory, PDS and the relay following
//     that PDS, in this process, talking to each other over HTTP), whose
//     directory serves DID documents in the current (Multikey) form;
//   - reference: the relay follows two PDSs at once, a Welkin PDS and the
//     reference TypeScript PDS of the reference stack, which joins through
//     requestCrawl. Every DID lives in the reference stack's PLC
//     directory, an old release that serves DID documents in the legacy
//     form (the EcdsaSecp256k1VerificationKey2019 type, a key without a
//     multicodec prefix, relative ids), which the relay must read.
//
// On each PDS, accounts write: the scenario of node/pds.js for alice and
// bob (creates, edits, deletes, applyWrites batches, a profile with an
// uploaded avatar), and one more account written from Go at the same
// time (creates, updates, deletes, a new handle, a deactivation and
// reactivation: #identity and #account events). The relay's
// subscribeRepos, read from cursor 0, is then checked by two readers:
//
//   - indigo: every #commit passes the sync-1.1 checks (signature,
//     inversion of the ops against prevData, rev/since chain, prevData
//     naming the previous commit's data) and seqs increase strictly;
//   - @atproto/sync (node/pds_firehose.js): every op of every commit is
//     emitted, which it does only once the signature and the record's MST
//     proof verify, with the same content indigo saw.
//
// indigo also reads each PDS's own stream, and every event a PDS emitted
// must arrive through the relay, per account in the PDS's order with the
// same commit and ops, except a #sync that repeats the rev of the commit
// before it (PDSs follow a new account's first commit, and a
// reactivation, with one): the relay ignores those as duplicate revs, as
// the sync specification asks. The relay must end up listing every
// account, active at its last rev, recorded on the host it came from, and
// must have refused no other event of any PDS.
func TestRelayFirehoseReaders(t *testing.T) {
	requireNode(t)
	t.Run("devnet", func(t *testing.T) {
		logs := &lockedBuffer{}
		base := freePortBase(t, 3)
		dir := t.TempDir()
		d, err := devnet.Start(t.Context(), devnet.Config{
			DataDir:  dir,
			PortBase: base,
			Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		})
		if err != nil {
			t.Fatalf("starting the devnet on ports %d-%d: %v", base, base+2, err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("devnet logs:\n%s", pdsTail(logs.String(), 12000))
			}
		})
		rl := newTestRelay(t, loopbackURL(t, d.URL("relay")), filepath.Join(dir, "relay"), func() error {
			if err := d.Close(); err != nil {
				return fmt.Errorf("closing the devnet: %w", err)
			}
			return nil
		})
		pdsURL := d.URL("pds")
		checkRelayFirehose(t, d.URL("plc"), rl, []*upstreamPDS{
			{name: "the devnet's PDS", url: pdsURL, ws: "ws" + strings.TrimPrefix(loopbackURL(t, pdsURL), "http"), extra: "carol"},
		})
	})
	t.Run("reference", func(t *testing.T) {
		ref := startReferenceStack(t)
		wk := startWelkinPDSWith(t, ref.plcURL)
		// The relay follows the Welkin PDS as a configured trusted
		// host, and the reference PDS as a host that asked to be
		// crawled.
		rl := startTestRelay(t, ref.plcURL, []string{wk.url}, nil)
		rl.requestCrawl(t, strings.TrimPrefix(ref.pdsURL, "http://"))
		checkRelayFirehose(t, ref.plcURL, rl, []*upstreamPDS{
			{name: "the Welkin PDS", url: wk.url, ws: "ws://" + wk.addr, extra: "carol"},
			{name: "the reference PDS", url: ref.pdsURL, ws: "ws" + strings.TrimPrefix(ref.pdsURL, "http"), extra: "dave"},
		})
	})
}

// upstreamPDS is a PDS the relay follows in TestRelayFirehoseReaders.
type upstreamPDS struct {
	name  string
	url   string // as in its accounts' DID documents
	ws    string // the ws:// base of its stream
	extra string // the name of the account written from Go
	g     *goFirehose
	done  <-chan error
}

// checkRelayFirehose subscribes the readers, makes the accounts of every
// upstream PDS write, and checks what the readers and the relay saw, as
// TestRelayFirehoseReaders says.
func checkRelayFirehose(t *testing.T, plcURL string, rl *testRelay, ups []*upstreamPDS) {
	const subscribe = "/xrpc/com.atproto.sync.subscribeRepos?cursor=0"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, u := range ups {
		u.g = newGoFirehose(plcURL)
		done, err := u.g.start(ctx, u.ws+subscribe)
		if err != nil {
			t.Fatalf("indigo: subscribing to %s at %s: %v", u.name, u.ws, err)
		}
		u.done = done
	}
	relayed := newGoFirehose(plcURL)
	relayDone, err := relayed.start(ctx, rl.ws+subscribe)
	if err != nil {
		t.Fatalf("indigo: subscribing to the relay at %s: %v", rl.ws, err)
	}
	node, err := startNodeFirehose(t, rl.ws, plcURL)
	if err != nil {
		t.Fatal(err)
	}

	// The PDSs are written at once, each by the scenario and by one
	// account written from Go, so that the relay handles several hosts'
	// and accounts' events together.
	type written struct {
		revs    map[string]string // DID -> rev of the last commit
		commits map[string]int    // DID -> commits made
		err     error
	}
	results := make([]chan written, len(ups))
	for i, u := range ups {
		results[i] = make(chan written, 1)
		go func() {
			w := written{revs: map[string]string{}, commits: map[string]int{}}
			extra := make(chan writerResult, 1)
			go func() {
				did, rev, commits, err := writeAccount(ctx, u.url, u.extra)
				extra <- writerResult{did, rev, commits, err}
			}()
			doc, err := scenario(ctx, u.url)
			wr := <-extra
			switch {
			case err != nil:
				w.err = err
			case wr.err != nil:
				w.err = wr.err
			case len(doc.Meta.Revs) != 2:
				w.err = fmt.Errorf("the scenario reported the final revs of %d accounts, want 2: %v", len(doc.Meta.Revs), doc.Meta.Revs)
			default:
				w.revs[wr.did], w.commits[wr.did] = wr.rev, wr.commits
				for did, rev := range doc.Meta.Revs {
					w.revs[did], w.commits[did] = rev, doc.Meta.Commits[did]
				}
			}
			results[i] <- w
		}()
	}
	revs, commits := map[string]string{}, map[string]int{}
	perHost := make([]map[string]string, len(ups))
	for i, u := range ups {
		w := <-results[i]
		if w.err != nil {
			t.Fatalf("writing to %s: %v", u.name, w.err)
		}
		perHost[i] = w.revs
		maps.Copy(revs, w.revs)
		maps.Copy(commits, w.commits)
	}

	// Every indigo reader reaches the last commits of its accounts; the
	// relay's highest seq then is where the Node reader must get to.
	waitReached := func(name string, g *goFirehose, done <-chan error, revs map[string]string) {
		deadline := time.Now().Add(firehoseCatchUp)
		for !g.reached(revs) {
			select {
			case err := <-done:
				t.Fatalf("indigo on %s: the stream ended before the last commits: %v\n%s", name, err, g.report())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("indigo on %s: did not see the last commits %v within %s\n%s", name, revs, firehoseCatchUp, g.report())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, u := range ups {
		waitReached(u.name, u.g, u.done, perHost[i])
	}
	waitReached("the relay", relayed, relayDone, revs)
	lastSeq := relayed.maxSeq()
	nodeLines := node.finish(t, lastSeq)
	cancel()
	for _, u := range ups {
		<-u.done
	}
	<-relayDone

	var upstreamEvents []goEvent
	for _, u := range ups {
		u.g.mu.Lock()
		defer u.g.mu.Unlock()
		for _, p := range u.g.problems {
			t.Errorf("indigo on %s: %s", u.name, p)
		}
		upstreamEvents = append(upstreamEvents, u.g.events...)
	}
	relayed.mu.Lock()
	defer relayed.mu.Unlock()
	for _, p := range relayed.problems {
		t.Errorf("indigo on the relay: %s", p)
	}
	for did, want := range commits {
		if got := relayed.commits[did]; got != want {
			t.Errorf("indigo saw %d commits of %s on the relay, the accounts made %d", got, did, want)
		}
	}
	dropped := checkRelayedAll(t, upstreamEvents, relayed.events)
	checkNodeFirehose(t, relayed.events, nodeLines, lastSeq)

	// The relay lists every account, active, at its last commit; it
	// refused nothing, and ignored only the duplicate #sync ones.
	repos := rl.listRepos(t)
	for did, rev := range revs {
		switch r := repos[did]; {
		case r == nil:
			t.Errorf("the relay's listRepos lacks %s", did)
		case r.Rev != rev || (r.Active != nil && !*r.Active):
			t.Errorf("the relay's listRepos has %s at rev %s, active %v; want rev %s, active", did, r.Rev, r.Active, rev)
		}
	}
	totalDrops := 0
	for _, n := range dropped {
		totalDrops += n
	}
	for what, n := range rl.eventCounts(t, "rejected") {
		t.Errorf("the relay rejected %v upstream events as %q", n, what)
	}
	ignored := rl.eventCounts(t, "ignored")
	for what, n := range ignored {
		if what != "#sync duplicate-rev" {
			t.Errorf("the relay ignored %v upstream events as %q", n, what)
		}
	}
	if n := ignored["#sync duplicate-rev"]; n != float64(totalDrops) {
		t.Errorf("the relay ignored %v #sync events as duplicate revs; the PDSs emitted %d of them", n, totalDrops)
	}

	// What the relay recorded per host, read from its store once it has
	// stopped and saved every host's counts.
	hosts := rl.stopAndRead(t)
	for i, u := range ups {
		h, ok := hosts[strings.TrimPrefix(u.url, "http://")]
		if !ok {
			t.Errorf("the relay has no host %s (%s); it has %v", u.url, u.name, slices.Collect(maps.Keys(hosts)))
			continue
		}
		for did := range perHost[i] {
			if got := h.accounts[did]; got != "active" {
				t.Errorf("the relay records %s of %s as %q, want an active account of that host", did, u.name, got)
			}
		}
		if len(h.accounts) != len(perHost[i]) {
			t.Errorf("the relay records %d accounts on %s, which has %d: %v", len(h.accounts), u.name, len(perHost[i]), h.accounts)
		}
		// The relay refuses nothing; it ignores the duplicate #sync
		// events, which are not counted against the host.
		drops := int64(0)
		for did := range perHost[i] {
			drops += int64(dropped[did])
		}
		if emitted := int64(len(u.g.events)); h.accepted != emitted-drops || h.rejected != 0 {
			t.Errorf("the relay counted %d events of %s accepted and %d rejected; it emitted %d, of which %d duplicate #sync events to ignore; see the relay's logs",
				h.accepted, u.name, h.rejected, emitted, drops)
		}
		t.Logf("%s: %d accounts, %d events accepted, %d rejected", u.name, len(h.accounts), h.accepted, h.rejected)
	}
	t.Logf("the PDSs emitted %d events; indigo accepted %d from the relay up to seq %d; @atproto/sync emitted %d lines",
		len(upstreamEvents), len(relayed.events), lastSeq, len(nodeLines))
}

// loopbackURL turns a devnet URL (http://localhost:PORT) into the same
// port on 127.0.0.1, where the devnet listens.
func loopbackURL(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return "http://127.0.0.1:" + u.Port()
}

type writerResult struct {
	did, rev string
	commits  int
	err      error
}

// writeAccount creates the account NAME.test on the PDS at pdsURL and
// writes: posts, a profile created and then updated, posts deleted, and a
// post edited with putRecord; it then changes the account's handle,
// deactivates and activates it, and posts once more. It returns the DID, the rev of the last
// commit and the number of commits made (account creation included).
func writeAccount(ctx context.Context, pdsURL, name string) (did, rev string, commits int, err error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	anon := &xrpc.Client{Host: pdsURL, HTTPClient: hc}
	handle, email, password := name+".test", name+"@example.test", name+"-password-1"
	acct, err := atproto.ServerCreateAccount(ctx, anon, &atproto.ServerCreateAccount_Input{
		Handle: handle, Email: &email, Password: &password,
	})
	if err != nil {
		return "", "", 0, fmt.Errorf("createAccount %s on %s: %w", handle, pdsURL, err)
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
			return fmt.Errorf(name+": putRecord %s/%s: %w", collection, rkey, err)
		}
		commits++
		return nil
	}
	var rkeys []string
	for i := range 6 {
		out, err := atproto.RepoCreateRecord(ctx, c, &atproto.RepoCreateRecord_Input{Repo: did, Collection: post,
			Record: map[string]any{"$type": post, "text": fmt.Sprintf("%s's post %d", name, i), "createdAt": at(i)}})
		if err != nil {
			return "", "", 0, fmt.Errorf(name+": createRecord post %d: %w", i, err)
		}
		commits++
		rkeys = append(rkeys, out.Uri[strings.LastIndex(out.Uri, "/")+1:])
		switch i {
		case 1:
			if err := put(profile, "self", map[string]any{"$type": profile, "displayName": name}); err != nil {
				return "", "", 0, err
			}
		case 3:
			if err := put(profile, "self", map[string]any{"$type": profile, "displayName": name + " (edited)", "description": "edited"}); err != nil {
				return "", "", 0, err
			}
		}
	}
	if err := put(post, rkeys[2], map[string]any{"$type": post, "text": name + "'s post 2, edited", "createdAt": at(2)}); err != nil {
		return "", "", 0, err
	}
	for _, i := range []int{0, 4} {
		if _, err := atproto.RepoDeleteRecord(ctx, c, &atproto.RepoDeleteRecord_Input{Repo: did, Collection: post, Rkey: rkeys[i]}); err != nil {
			return "", "", 0, fmt.Errorf(name+": deleteRecord post %d: %w", i, err)
		}
		commits++
	}
	// A new handle (an #identity event, after a PLC operation), then a
	// pause of the account (#account events), and one more post once it
	// is active again.
	if err := atproto.IdentityUpdateHandle(ctx, c, &atproto.IdentityUpdateHandle_Input{Handle: name + "-renamed.test"}); err != nil {
		return "", "", 0, fmt.Errorf(name+": updateHandle: %w", err)
	}
	if err := atproto.ServerDeactivateAccount(ctx, c, &atproto.ServerDeactivateAccount_Input{}); err != nil {
		return "", "", 0, fmt.Errorf(name+": deactivateAccount: %w", err)
	}
	if err := atproto.ServerActivateAccount(ctx, c); err != nil {
		return "", "", 0, fmt.Errorf(name+": activateAccount: %w", err)
	}
	if _, err := atproto.RepoCreateRecord(ctx, c, &atproto.RepoCreateRecord_Input{Repo: did, Collection: post,
		Record: map[string]any{"$type": post, "text": name + "'s post after a pause", "createdAt": at(9)}}); err != nil {
		return "", "", 0, fmt.Errorf(name+": createRecord after activateAccount: %w", err)
	}
	commits++
	latest, err := atproto.SyncGetLatestCommit(ctx, anon, &atproto.SyncGetLatestCommit_Params{Did: did})
	if err != nil {
		return "", "", 0, fmt.Errorf(name+": getLatestCommit: %w", err)
	}
	return did, latest.Rev, commits, nil
}

// checkRelayedAll requires every event the PDSs emitted to have come
// through the relay, with the same content, in the PDS's order for each
// account, and nothing else; a #sync repeating the rev of the account's
// previous commit is the one event the relay may drop. It returns the
// number of those per DID. The caller holds the readers' locks.
func checkRelayedAll(t *testing.T, upstream, relayed []goEvent) map[string]int {
	t.Helper()
	perDID := func(evs []goEvent) map[string][]goEvent {
		out := map[string][]goEvent{}
		for _, e := range evs {
			out[e.did] = append(out[e.did], e)
		}
		return out
	}
	want, got := map[string][]goEvent{}, perDID(relayed)
	drops, dropped := map[string]int{}, 0
	for did, evs := range perDID(upstream) {
		lastRev := ""
		for _, e := range evs {
			if e.kind == "sync" && e.rev == lastRev {
				drops[did]++
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
		t.Fatal("the PDSs emitted no events")
	}
	for did, w := range want {
		g := got[did]
		for i, e := range w {
			if i >= len(g) {
				t.Errorf("%s: the relay carried %d events, the PDS emitted %d (and %d droppable); the first missing is PDS seq %d #%s rev %s",
					did, len(g), len(w), drops[did], e.seq, e.kind, e.rev)
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
	return drops
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
