package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// fakeAccount is an account whose DID, registered in the PLC directory,
// names a fake upstream as its PDS, with a repository in memory.
type fakeAccount struct {
	did   syntax.DID
	key   crypto.PrivateKey
	repo  *repo.Repo
	clock *repo.RevClock
	n     int
}

func newFakeAccount(t *testing.T, plcURL, pdsHost string) *fakeAccount {
	t.Helper()
	key, err := crypto.GenerateK256()
	if err != nil {
		t.Fatal(err)
	}
	op := &plc.Operation{
		RotationKeys:        []string{key.Public().DIDKey()},
		VerificationMethods: map[string]string{"atproto": key.Public().DIDKey()},
		AlsoKnownAs:         []string{"at://fake.test"},
		Services:            map[string]plc.Service{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "http://" + pdsHost}},
	}
	if err := op.Sign(key); err != nil {
		t.Fatal(err)
	}
	did, err := plc.DIDForGenesis(op)
	if err != nil {
		t.Fatal(err)
	}
	c := &plc.Client{BaseURL: plcURL, HTTPClient: http.DefaultClient}
	if err := c.Submit(context.Background(), did, op); err != nil {
		t.Fatalf("registering %s: %v", did, err)
	}
	r, err := repo.NewRepo(did, repo.NewMemBlockStore())
	if err != nil {
		t.Fatal(err)
	}
	return &fakeAccount{did: did, key: key, repo: r, clock: repo.NewRevClock(1)}
}

// commit writes one post and returns its #commit event (seq unset).
func (a *fakeAccount) commit(t *testing.T) *atproto.SyncSubscribeRepos_Commit {
	t.Helper()
	ctx := context.Background()
	a.n++
	rec, err := data.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprintf("post %d", a.n), "createdAt": "2026-03-01T12:00:00.000Z"})
	if err != nil {
		t.Fatal(err)
	}
	w := repo.RecordWrite{Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: syntax.RecordKey(fmt.Sprintf("post%04d", a.n)), Value: rec}
	if err := a.repo.Apply(ctx, []repo.RecordWrite{w}); err != nil {
		t.Fatal(err)
	}
	res, err := a.repo.Commit(ctx, a.key, a.clock)
	if err != nil {
		t.Fatal(err)
	}
	ev := &atproto.SyncSubscribeRepos_Commit{
		Repo: string(a.did), Commit: res.CID, Rev: string(res.Rev), Blocks: bytes.Clone(res.CAR),
		Blobs: []data.CID{}, Time: syntax.DatetimeFromTime(time.Now()).String(), PrevData: res.PrevData,
	}
	if res.Since != "" {
		s := string(res.Since)
		ev.Since = &s
	}
	for _, op := range res.Ops {
		ev.Ops = append(ev.Ops, &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev})
	}
	return ev
}

// exportCAR returns the repository's full export, as getRepo serves it.
func (a *fakeAccount) exportCAR(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := a.repo.ExportCAR(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func commitFrame(t *testing.T, ev *atproto.SyncSubscribeRepos_Commit) func(int64) []byte {
	return func(seq int64) []byte {
		e := *ev
		e.Seq = seq
		f, err := stream.EncodeFrame("#commit", &e)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

func accountFrame(t *testing.T, did syntax.DID, active bool, status string) func(int64) []byte {
	return func(seq int64) []byte {
		ev := &atproto.SyncSubscribeRepos_Account{Seq: seq, Did: string(did), Active: active, Time: syntax.DatetimeFromTime(time.Now()).String()}
		if status != "" {
			ev.Status = &status
		}
		f, err := stream.EncodeFrame("#account", ev)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

func hostSeq(t *testing.T, base, host string) int64 {
	t.Helper()
	var hs atproto.SyncGetHostStatus_Output
	getJSON(t, base+"/xrpc/com.atproto.sync.getHostStatus?hostname="+host, &hs)
	if hs.Seq == nil {
		return -1
	}
	return *hs.Seq
}

// TestAccountRules checks the rules beyond a single commit: events of an
// inactive account are dropped while #account passes; an account's events
// are accepted only from its own host; a commit that skips one the relay
// did not accept is dropped and marks the repository desynchronized (its
// host serves no getRepo, so it stays so).
func TestAccountRules(t *testing.T) {
	plcURL := startPLC(t)
	home, other := newUpstream(t), newUpstream(t)
	acct := newFakeAccount(t, plcURL, home.host)

	c1 := acct.commit(t)
	home.send(t, commitFrame(t, c1))                              // 1: accepted
	home.send(t, accountFrame(t, acct.did, false, "deactivated")) // 2: passes
	home.send(t, commitFrame(t, acct.commit(t)))                  // 3: dropped, inactive
	home.send(t, accountFrame(t, acct.did, true, ""))             // 4: passes
	c3 := acct.commit(t)
	home.send(t, commitFrame(t, c3))  // 5: dropped, chain broken
	other.send(t, commitFrame(t, c1)) // not the account's host

	r := startRelay(t, t.TempDir(), plcURL, home.host, other.host)
	waitFor(t, "both hosts handled", func() bool {
		return hostSeq(t, r.url, home.host) == 5 && hostSeq(t, r.url, other.host) == 1
	})
	relayed := follow(t, r.url, 0)
	waitFor(t, "three events relayed", func() bool { return len(relayed.snapshot()) >= 3 })
	got := relayed.snapshot()
	want := []string{"#commit " + c1.Rev, "#account " + string(acct.did), "#account " + string(acct.did)}
	if len(got) != len(want) {
		t.Fatalf("relayed %d events, want %d", len(got), len(want))
	}
	for i, m := range got {
		if k := eventKey(t, m); k != want[i] || m.Seq != int64(i+1) {
			t.Errorf("event %d: %s seq %d, want %s seq %d", i, k, m.Seq, want[i], i+1)
		}
	}
	if n := counted(t, r.url, "rejected", "#commit"); n != 3 {
		t.Errorf("rejected commits = %v, want 3 (inactive account, since gap, wrong host)", n)
	}
	var rs atproto.SyncGetRepoStatus_Output
	getJSON(t, r.url+"/xrpc/com.atproto.sync.getRepoStatus?did="+string(acct.did), &rs)
	if !rs.Active || rs.Rev == nil || *rs.Rev != c1.Rev || rs.Status == nil || *rs.Status != "desynchronized" {
		t.Errorf("getRepoStatus = %+v", rs)
	}
	var hs atproto.SyncGetHostStatus_Output
	getJSON(t, r.url+"/xrpc/com.atproto.sync.getHostStatus?hostname="+other.host, &hs)
	if hs.AccountCount == nil || *hs.AccountCount != 0 {
		t.Errorf("the other host has %v accounts, want 0", hs.AccountCount)
	}
}
