package relay_test

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// metricValue reads the value of the first line of the relay's /metrics
// that starts with prefix and contains labels.
func metricValue(t *testing.T, base, prefix, labels string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix) && strings.Contains(line, labels) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// resyncsCounted reads welkin_relay_resyncs_total{outcome}.
func resyncsCounted(t *testing.T, base, outcome string) float64 {
	t.Helper()
	return metricValue(t, base, "welkin_relay_resyncs_total{", `outcome="`+outcome+`"`)
}

// checkSyncEvent checks a relayed #sync: its blocks are a CAR holding
// just the account's signed commit at rev.
func checkSyncEvent(t *testing.T, m stream.Message, a *fakeAccount, rev string) {
	t.Helper()
	if m.Header.T != "#sync" {
		t.Fatalf("event %d is %s, want #sync", m.Seq, m.Header.T)
	}
	sy, reason, err := verify.ParseSync(m.Body, nil)
	if err != nil {
		t.Fatalf("relayed #sync: %s: %v", reason, err)
	}
	if sy.DID() != a.did || string(sy.Rev()) != rev {
		t.Fatalf("#sync of %s at %s, want %s at %s", sy.DID(), sy.Rev(), a.did, rev)
	}
	roots, blocks, err := car.ReadAll(bytes.NewReader(sy.Event.Blocks), car.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || len(blocks) != 1 || blocks[roots[0]] == nil {
		t.Fatalf("#sync blocks: roots %v, %d blocks; want the commit alone", roots, len(blocks))
	}
	if err := sy.Commit.Verify(a.key.Public()); err != nil {
		t.Fatalf("#sync commit does not verify: %v", err)
	}
}

// TestResync breaks the commit chains of four accounts of one host and
// checks the re-synchronization of each: the commit that shows the gap is
// dropped and the account flagged; the repository is fetched with getRepo
// and verified, a refused or failed fetch is retried, commits that come
// while the account is out of sync are dropped; and a #sync with just the
// signed commit announces the new state, after which the chain goes on.
func TestResync(t *testing.T) {
	plcURL := startPLC(t)
	home := newUpstream(t)
	plain := newFakeAccount(t, plcURL, home.host)    // fetched at once
	flaky := newFakeAccount(t, plcURL, home.host)    // 500 first; commits meanwhile
	stale := newFakeAccount(t, plcURL, home.host)    // an older repository first
	forged := newFakeAccount(t, plcURL, home.host)   // another account's repository first
	imposter := newFakeAccount(t, plcURL, home.host) // whose repository forged is served

	type want struct{ commits, syncs []string }
	expect := map[syntax.DID]*want{}
	for _, a := range []*fakeAccount{plain, flaky, stale, forged} {
		expect[a.did] = &want{}
	}
	sendOK := func(a *fakeAccount) {
		c := a.commit(t)
		home.send(t, commitFrame(t, c))
		expect[a.did].commits = append(expect[a.did].commits, c.Rev)
	}

	// Each account: a commit relayed, one that never comes, one that
	// shows the gap.
	var olderCAR []byte
	for _, a := range []*fakeAccount{plain, flaky, stale, forged} {
		sendOK(a)
		if a == stale {
			// getRepo first serves the repository from before the
			// second commit, which the relay holds.
			olderCAR = a.exportCAR(t)
			sendOK(a)
		}
		a.commit(t)
		home.send(t, commitFrame(t, a.commit(t)))
	}
	imposter.commit(t)
	home.serveRepo(plain.did, http.StatusOK, plain.exportCAR(t))
	home.serveRepo(flaky.did, http.StatusInternalServerError, nil)
	home.serveRepo(forged.did, http.StatusOK, imposter.exportCAR(t))
	home.serveRepo(stale.did, http.StatusOK, staleCAR(t, stale, olderCAR))

	r := startRelay(t, t.TempDir(), plcURL, home.host)
	waitFor(t, "the plain account re-synchronized", func() bool { return resyncsCounted(t, r.url, "synced") >= 1 })

	// While flaky's first fetch failed, it commits again: dropped.
	waitFor(t, "flaky's first fetch", func() bool { return home.getRepoCalls(flaky.did) >= 1 })
	home.send(t, commitFrame(t, flaky.commit(t)))
	waitFor(t, "the commit of an out-of-sync account dropped", func() bool {
		return countedReason(t, r.url, "#commit", "rejected", "desynchronized") == 1
	})
	home.serveRepo(flaky.did, http.StatusOK, flaky.exportCAR(t))
	waitFor(t, "the stale and forged repositories refused", func() bool {
		return resyncsCounted(t, r.url, "stale") >= 1 && resyncsCounted(t, r.url, "invalid-repo") >= 1
	})
	home.serveRepo(stale.did, http.StatusOK, stale.exportCAR(t))
	home.serveRepo(forged.did, http.StatusOK, forged.exportCAR(t))
	waitFor(t, "every account re-synchronized", func() bool { return resyncsCounted(t, r.url, "synced") == 4 })
	for _, a := range []*fakeAccount{plain, flaky, stale, forged} {
		expect[a.did].syncs = append(expect[a.did].syncs, string(a.repo.Rev()))
	}
	// The chains go on from the re-synchronized commits.
	for _, a := range []*fakeAccount{plain, flaky, stale, forged} {
		sendOK(a)
	}
	waitFor(t, "the host's events handled", func() bool { return hostSeq(t, r.url, home.host) == home.seq })

	if got := resyncsCounted(t, r.url, "fetch-failed"); got < 1 {
		t.Errorf("failed fetches = %v, want at least 1", got)
	}
	if got := resyncsCounted(t, r.url, "gave-up"); got != 0 {
		t.Errorf("gave up %v times", got)
	}
	if got := countedReason(t, r.url, "#commit", "rejected", "since-gap"); got != 4 {
		t.Errorf("since-gap rejections = %v, want 4", got)
	}

	relayed := follow(t, r.url, 0)
	total := 0
	for _, w := range expect {
		total += len(w.commits) + len(w.syncs)
	}
	waitFor(t, "the relay's stream", func() bool { return len(relayed.snapshot()) >= total })
	got := relayed.snapshot()
	if len(got) != total {
		t.Fatalf("relayed %d events, want %d", len(got), total)
	}
	// Per account: its commits before the gap, the #sync, the commit after.
	seen := map[syntax.DID][]string{}
	byDID := map[syntax.DID]*fakeAccount{plain.did: plain, flaky.did: flaky, stale.did: stale, forged.did: forged}
	for i, m := range got {
		if m.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, m.Seq)
		}
		var did string
		if m.Header.T == "#sync" {
			did, _, _ = stream.BodyString(m.Body, "did")
		} else {
			did, _, _ = stream.BodyString(m.Body, "repo")
		}
		rev, _, _ := stream.BodyString(m.Body, "rev")
		a := byDID[syntax.DID(did)]
		if a == nil {
			t.Fatalf("event %d of an unknown account %s", i, did)
		}
		if m.Header.T == "#sync" {
			checkSyncEvent(t, m, a, rev)
		}
		seen[a.did] = append(seen[a.did], m.Header.T+" "+rev)
	}
	for did, w := range expect {
		n := len(w.commits) - 1
		var wantSeq []string
		for _, rev := range w.commits[:n] {
			wantSeq = append(wantSeq, "#commit "+rev)
		}
		wantSeq = append(wantSeq, "#sync "+w.syncs[0], "#commit "+w.commits[n])
		if len(seen[did]) != len(wantSeq) {
			t.Errorf("%s: relayed %v, want %v", did, seen[did], wantSeq)
			continue
		}
		for i := range wantSeq {
			if seen[did][i] != wantSeq[i] {
				t.Errorf("%s: relayed %v, want %v", did, seen[did], wantSeq)
				break
			}
		}
		var rs atproto.SyncGetRepoStatus_Output
		getJSON(t, r.url+"/xrpc/com.atproto.sync.getRepoStatus?did="+string(did), &rs)
		if !rs.Active || rs.Status != nil || rs.Rev == nil || *rs.Rev != w.commits[n] {
			t.Errorf("%s: getRepoStatus = %+v", did, rs)
		}
	}
}

// staleCAR is the export held in old, checked to be a valid repository
// of a at a rev below its current one.
func staleCAR(t *testing.T, a *fakeAccount, old []byte) []byte {
	t.Helper()
	res, err := repo.ImportCAR(t.Context(), bytes.NewReader(old), repo.NewMemBlockStore(), repo.ImportOptions{DID: a.did, PublicKey: a.key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit.Rev >= a.repo.Rev() {
		t.Fatalf("the old repository is at %s, not below %s", res.Commit.Rev, a.repo.Rev())
	}
	return old
}
