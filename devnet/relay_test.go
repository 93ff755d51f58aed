package devnet

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/stream"
)

// relayWait bounds waiting for the relay to carry the PDS's commits; it
// is a deadline, not a speed requirement.
const relayWait = time.Minute

// relayCommit is a #commit read from the relay's stream.
type relayCommit struct {
	seq int64
	did string
	rev string
}

// latestRevs asks the PDS for each account's current rev.
func latestRevs(t *testing.T, pdsURL string, accts []Account) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range accts {
		c, err := atproto.SyncGetLatestCommit(context.Background(), client(pdsURL), &atproto.SyncGetLatestCommit_Params{Did: string(a.DID)})
		if err != nil {
			t.Fatalf("getLatestCommit of %s on the PDS: %v", a.Handle, err)
		}
		out[string(a.DID)] = c.Rev
	}
	return out
}

// waitRelayCommits reads the relay's subscribeRepos from cursor 0 until,
// for every DID in want, a #commit with the wanted rev has arrived, and
// returns the commits read. It fails the test when the deadline passes,
// seqs do not increase strictly, or an account's revs go back.
func waitRelayCommits(t *testing.T, relayURL string, want map[string]string) []relayCommit {
	t.Helper()
	u, err := url.Parse(relayURL)
	if err != nil {
		t.Fatal(err)
	}
	wsURL := "ws://" + u.Host + "/xrpc/com.atproto.sync.subscribeRepos"
	ctx, cancel := context.WithTimeout(context.Background(), relayWait)
	defer cancel()

	var (
		mu       sync.Mutex
		commits  []relayCommit
		problems []string
		lastSeq  int64
		heads    = map[string]string{}
	)
	done := func() bool {
		for did, rev := range want {
			if heads[did] < rev {
				return false
			}
		}
		return true
	}
	errReached := errors.New("reached every wanted rev")
	handler := func(_ context.Context, m stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Seq <= lastSeq {
			problems = append(problems, fmt.Sprintf("seq %d after %d", m.Seq, lastSeq))
		}
		lastSeq = max(lastSeq, m.Seq)
		if m.Header.T == "#commit" {
			did, _, _ := stream.BodyString(m.Body, "repo")
			rev, _, _ := stream.BodyString(m.Body, "rev")
			if rev <= heads[did] {
				problems = append(problems, fmt.Sprintf("seq %d: %s rev %s after rev %s", m.Seq, did, rev, heads[did]))
			}
			heads[did] = max(heads[did], rev)
			commits = append(commits, relayCommit{seq: m.Seq, did: did, rev: rev})
		}
		if done() {
			return errReached
		}
		return nil
	}
	err = stream.Subscribe(ctx, wsURL, 0, handler, &stream.SubscribeOptions{
		HTTPClient: loopbackClient(0),
		MinBackoff: 50 * time.Millisecond,
	})
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(err, errReached) {
		t.Fatalf("the relay's stream at %s did not carry revs %v within %s: %v (heads %v, %d commits)", wsURL, want, relayWait, err, heads, len(commits))
	}
	for _, p := range problems {
		t.Errorf("relay stream: %s", p)
	}
	return commits
}

// checkRelayCarries requires the relay's stream, from cursor 0, to carry
// every account's commits up to its current rev on the PDS, the seeded
// records' commits among them.
func checkRelayCarries(t *testing.T, d *Devnet, accts []Account) {
	t.Helper()
	want := latestRevs(t, d.URL("pds"), accts)
	commits := waitRelayCommits(t, d.URL("relay"), want)
	per := map[string]int{}
	for _, c := range commits {
		per[c.did]++
	}
	for _, a := range accts {
		// The first commit, a profile, two posts and a follow.
		if n := per[string(a.DID)]; n < 5 {
			t.Errorf("the relay carried %d commits of %s, want at least 5", n, a.Handle)
		}
	}
	// The relay knows the accounts and their revs; it records an
	// account's state just after publishing the event, so poll.
	for _, a := range accts {
		deadline := time.Now().Add(relayWait)
		for {
			c, err := atproto.SyncGetLatestCommit(context.Background(), client(d.URL("relay")), &atproto.SyncGetLatestCommit_Params{Did: string(a.DID)})
			if err == nil && c.Rev == want[string(a.DID)] {
				break
			}
			if time.Now().After(deadline) {
				if err == nil {
					err = fmt.Errorf("rev %s", c.Rev)
				}
				t.Fatalf("getLatestCommit of %s on the relay: %v; the PDS is at rev %s", a.Handle, err, want[string(a.DID)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// checkRequestCrawl asks the relay to crawl the devnet's PDS, as the PDS
// does, naming it as the PDS does ("localhost:PORT"): the relay accepts a
// loopback host and lists it.
func checkRequestCrawl(t *testing.T, d *Devnet) {
	t.Helper()
	u, err := url.Parse(d.URL("pds"))
	if err != nil {
		t.Fatal(err)
	}
	if err := atproto.SyncRequestCrawl(context.Background(), client(d.URL("relay")), &atproto.SyncRequestCrawl_Input{Hostname: u.Host}); err != nil {
		t.Fatalf("requestCrawl of %s: %v", u.Host, err)
	}
	hosts, err := atproto.SyncListHosts(context.Background(), client(d.URL("relay")), &atproto.SyncListHosts_Params{})
	if err != nil {
		t.Fatalf("listHosts on the relay: %v", err)
	}
	var names []string
	for _, h := range hosts.Hosts {
		names = append(names, h.Hostname)
	}
	if len(names) != 1 || names[0] != u.Host {
		t.Fatalf("the relay lists the hosts %v, want only %s", names, u.Host)
	}
}

func TestDevnetRelay(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	cfg := testConfig(t, dir, base, true)
	d := startDevnet(t, cfg)
	if got, want := d.URL("relay"), fmt.Sprintf("http://localhost:%d", base+2); got != want {
		t.Fatalf("relay URL %s, want %s", got, want)
	}
	accts := d.Accounts()
	if len(accts) != 3 {
		t.Fatalf("seeded %d accounts, want 3", len(accts))
	}
	checkRelayCarries(t, d, accts)
	checkRequestCrawl(t, d)

	// A post after the seed reaches the relay too.
	c := login(t, d.URL("pds"), accts[1])
	if _, err := atproto.RepoCreateRecord(context.Background(), c, &atproto.RepoCreateRecord_Input{
		Repo:       string(accts[1].DID),
		Collection: "app.bsky.feed.post",
		Record:     map[string]any{"$type": "app.bsky.feed.post", "text": "through the relay", "createdAt": now()},
	}); err != nil {
		t.Fatal(err)
	}
	checkRelayCarries(t, d, accts)
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	// After a restart the relay serves its log from the start again, and
	// follows the PDS where it stopped: a new post arrives once.
	d2 := startDevnet(t, cfg)
	c = login(t, d2.URL("pds"), accts[2])
	if _, err := atproto.RepoCreateRecord(context.Background(), c, &atproto.RepoCreateRecord_Input{
		Repo:       string(accts[2].DID),
		Collection: "app.bsky.feed.post",
		Record:     map[string]any{"$type": "app.bsky.feed.post", "text": "after the restart", "createdAt": now()},
	}); err != nil {
		t.Fatal(err)
	}
	checkRelayCarries(t, d2, accts)
	if err := d2.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}
