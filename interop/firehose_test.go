package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// This test has the reference TypeScript stream readers consume a
// com.atproto.sync.subscribeRepos stream written by Welkin: #commit events
// made with atproto/repo, an #identity and an #account event, served by
// stream.Server from a MemLog. node/firehose.js reads it twice, with the
// raw Subscription of @atproto/xrpc-server (checking each commit's CAR
// slice and signature itself) and with the Firehose of @atproto/sync
// (which resolves the DID through the PLC directory this test serves and
// verifies every op with MST proofs).

const (
	firehoseDID    = "did:plc:wlknfrhs3tst4bcd5efg6hij"
	firehoseHandle = "firehose.welkin.example"
	// firehoseTimeout bounds the readers inside firehose.js; runNode's
	// own limit is longer, so a stall reports what was seen.
	firehoseTimeout = 30 * time.Second
)

// firehoseKey is a fixed secp256k1 key, so that runs are reproducible.
func firehoseKey(t *testing.T) crypto.PrivateKey {
	t.Helper()
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(0x40 + i)
	}
	k, err := crypto.ParsePrivateBytesK256(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// wantEvent is one event of the stream as the test wrote it.
type wantEvent struct {
	seq    int64
	typ    string // "#commit", "#identity" or "#account"
	commit *repo.CommitResult
}

// fhLine is one line firehose.js prints: a message of the Subscription
// reader or an event of the Firehose reader.
type fhLine struct {
	Reader string `json:"reader"`
	Error  string `json:"error"`
	Seq    int64  `json:"seq"`

	// Subscription messages.
	Type           string   `json:"type"`
	Repo           string   `json:"repo"`
	Commit         string   `json:"commit"`
	Rev            string   `json:"rev"`
	Since          *string  `json:"since"`
	PrevData       *string  `json:"prevData"`
	Rebase         bool     `json:"rebase"`
	TooBig         bool     `json:"tooBig"`
	Blobs          int      `json:"blobs"`
	Time           string   `json:"time"`
	Ops            []tsOp   `json:"ops"`
	CARRoot        string   `json:"carRoot"`
	CommitDID      string   `json:"commitDid"`
	CommitRev      string   `json:"commitRev"`
	CommitVersion  int      `json:"commitVersion"`
	SigValid       bool     `json:"sigValid"`
	MissingRecords []string `json:"missingRecords"`
	DID            string   `json:"did"`
	Handle         string   `json:"handle"`
	Active         *bool    `json:"active"`
	Status         *string  `json:"status"`

	// Firehose events.
	Event       string `json:"event"`
	Path        string `json:"path"`
	CID         string `json:"cid"`
	RecordType  string `json:"recordType"`
	DIDDocument string `json:"didDocument"`
}

// cidLink is a CID for a map body: the link, or nil (DAG-CBOR null).
func cidLink(c *data.CID) any {
	if c == nil {
		return nil
	}
	return *c
}

func firehoseRecord(t *testing.T, collection string, i int) []byte {
	t.Helper()
	createdAt := fmt.Sprintf("2026-02-01T00:00:%02d.000Z", i)
	var rec map[string]any
	switch collection {
	case "app.bsky.feed.post":
		rec = map[string]any{"$type": collection, "text": fmt.Sprintf("firehose post %d", i), "createdAt": createdAt}
	case "app.bsky.feed.like":
		rec = map[string]any{"$type": collection, "createdAt": createdAt, "subject": map[string]any{
			"uri": "at://" + firehoseDID + "/app.bsky.feed.post/3lfirehose00a",
			"cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
		}}
	default:
		rec = map[string]any{"$type": collection, "createdAt": createdAt, "subject": fmt.Sprintf("did:plc:follow%06d", i)}
	}
	b, err := data.MarshalCBOR(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildFirehose makes five commits (creates, updates and deletes across
// three collections) and the identity and account events, and appends
// them in order to log.
func buildFirehose(t *testing.T, key crypto.PrivateKey, log *stream.MemLog) []wantEvent {
	t.Helper()
	ctx := context.Background()
	r, err := repo.NewRepo(firehoseDID, repo.NewMemBlockStore())
	if err != nil {
		t.Fatal(err)
	}
	clock := repo.NewRevClock(7)
	w := func(action, collection, rkey string, i int) repo.RecordWrite {
		rw := repo.RecordWrite{Action: action, Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey)}
		if action != repo.ActionDelete {
			rw.Value = firehoseRecord(t, collection, i)
		}
		return rw
	}
	const post, like, follow = "app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"
	batches := [][]repo.RecordWrite{
		{w("create", post, "3lfirehose00a", 0), w("create", post, "3lfirehose00b", 1), w("create", post, "3lfirehose00c", 2)},
		{w("create", like, "3lfirehose00d", 3), w("update", post, "3lfirehose00a", 4)},
		{w("delete", post, "3lfirehose00b", 0)},
		{w("update", like, "3lfirehose00d", 5), w("create", follow, "3lfirehose00e", 6)},
		{w("delete", follow, "3lfirehose00e", 0), w("create", post, "3lfirehose00f", 7)},
	}

	var events []wantEvent
	seq := int64(0)
	appendEvent := func(typ string, body map[string]any, c *repo.CommitResult) {
		seq++
		body["seq"] = seq
		body["time"] = time.Date(2026, 2, 1, 0, 0, int(seq), 0, time.UTC).Format("2006-01-02T15:04:05.000Z")
		frame, err := stream.EncodeFrame(typ, body)
		if err != nil {
			t.Fatalf("encoding %s: %v", typ, err)
		}
		if err := log.Append(stream.Event{Seq: seq, Frame: frame}); err != nil {
			t.Fatal(err)
		}
		events = append(events, wantEvent{seq: seq, typ: typ, commit: c})
	}
	for i, b := range batches {
		if err := r.Apply(ctx, b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		c, err := r.Commit(ctx, key, clock)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		ops := make([]any, 0, len(c.Ops))
		for _, op := range c.Ops {
			m := map[string]any{"action": op.Action, "path": op.Path, "cid": cidLink(op.CID)}
			if op.Prev != nil {
				m["prev"] = *op.Prev
			}
			ops = append(ops, m)
		}
		var since any
		if c.Since != "" {
			since = string(c.Since)
		}
		body := map[string]any{
			"rebase": false,
			"tooBig": false,
			"repo":   firehoseDID,
			"commit": c.CID,
			"rev":    string(c.Rev),
			"since":  since,
			"blocks": data.Bytes(c.CAR),
			"ops":    ops,
			"blobs":  []any{},
		}
		if c.PrevData != nil {
			body["prevData"] = *c.PrevData
		}
		appendEvent("#commit", body, c)
		switch i {
		case 1:
			appendEvent("#identity", map[string]any{"did": firehoseDID, "handle": firehoseHandle}, nil)
		case 2:
			appendEvent("#account", map[string]any{"did": firehoseDID, "active": false, "status": "deactivated"}, nil)
		}
	}
	return events
}

// servePLC answers GET /{did} as a PLC directory would, with a DID
// document holding the key as Multikey.
func servePLC(t *testing.T, key crypto.PublicKey, pds *string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || strings.TrimPrefix(r.URL.Path, "/") != firehoseDID {
			http.NotFound(w, r)
			return
		}
		doc := map[string]any{
			"@context": []string{
				"https://www.w3.org/ns/did/v1",
				"https://w3id.org/security/multikey/v1",
				"https://w3id.org/security/suites/secp256k1-2019/v1",
			},
			"id": firehoseDID,
			"verificationMethod": []any{map[string]any{
				"id":                 firehoseDID + "#atproto",
				"type":               "Multikey",
				"controller":         firehoseDID,
				"publicKeyMultibase": key.Multibase(),
			}},
			"service": []any{map[string]any{
				"id":              "#atproto_pds",
				"type":            "AtprotoPersonalDataServer",
				"serviceEndpoint": *pds,
			}},
		}
		w.Header().Set("Content-Type", "application/did+ld+json")
		if err := json.NewEncoder(w).Encode(doc); err != nil {
			t.Errorf("writing the DID document: %v", err)
		}
	}
}

// TestTypeScriptFirehoseReader has the reference TypeScript readers
// consume a firehose written by Welkin: every message arrives in order,
// passes the published lexicon, carries the ops and revs written, and
// every commit's CAR slice and signature verify; @atproto/sync's Firehose
// verifies each op by MST proof and emits the create, update and delete
// events.
func TestTypeScriptFirehoseReader(t *testing.T) {
	requireNode(t)
	key := firehoseKey(t)
	log := stream.NewMemLog(64)
	events := buildFirehose(t, key, log)
	last := events[len(events)-1].seq

	srv := stream.NewServer(log, nil)
	var pds string
	mux := http.NewServeMux()
	mux.Handle("/xrpc/com.atproto.sync.subscribeRepos", srv)
	mux.Handle("/", servePLC(t, key.Public(), &pds))
	hs := httptest.NewServer(mux)
	pds = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})

	in, err := json.Marshal(map[string]any{
		"service":   "ws" + strings.TrimPrefix(hs.URL, "http"),
		"plcUrl":    hs.URL,
		"did":       firehoseDID,
		"didKey":    key.Public().DIDKey(),
		"lastSeq":   last,
		"timeoutMs": firehoseTimeout.Milliseconds(),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := runNode(t, in, "firehose.js")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("firehose.js:\n%s", out)
	var subLines, fhLines []fhLine
	for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var line fhLine
		if err := json.Unmarshal(l, &line); err != nil {
			t.Fatalf("reading firehose.js output: %v\n%s", err, l)
		}
		if line.Error != "" {
			t.Errorf("%s reader: %s", line.Reader, line.Error)
			continue
		}
		switch line.Reader {
		case "subscription":
			subLines = append(subLines, line)
		case "firehose":
			fhLines = append(fhLines, line)
		default:
			t.Fatalf("line from unknown reader: %s", l)
		}
	}

	t.Run("Subscription", func(t *testing.T) {
		checkSubscription(t, key, events, subLines)
	})
	t.Run("Firehose", func(t *testing.T) {
		checkFirehose(t, events, fhLines)
	})
}

func checkSubscription(t *testing.T, key crypto.PrivateKey, events []wantEvent, got []fhLine) {
	if len(got) != len(events) {
		t.Errorf("the reader saw %d messages, want %d", len(got), len(events))
	}
	for i, want := range events {
		if i >= len(got) {
			break
		}
		g := got[i]
		if g.Seq != want.seq || g.Type != want.typ {
			t.Errorf("message %d: seq %d %s, want seq %d %s", i, g.Seq, g.Type, want.seq, want.typ)
			continue
		}
		switch want.typ {
		case "#identity":
			if g.DID != firehoseDID || g.Handle != firehoseHandle {
				t.Errorf("seq %d: identity did %q handle %q", g.Seq, g.DID, g.Handle)
			}
		case "#account":
			if g.DID != firehoseDID || g.Active == nil || *g.Active || g.Status == nil || *g.Status != "deactivated" {
				t.Errorf("seq %d: account %+v", g.Seq, g)
			}
		case "#commit":
			c := want.commit
			if !g.SigValid {
				t.Errorf("seq %d: verifyCommitSig refused the commit with %s", g.Seq, key.Public().DIDKey())
			}
			if g.Repo != firehoseDID || g.CommitDID != firehoseDID {
				t.Errorf("seq %d: repo %q, commit block did %q", g.Seq, g.Repo, g.CommitDID)
			}
			if g.Commit != c.CID.String() || g.CARRoot != c.CID.String() {
				t.Errorf("seq %d: commit %s, CAR root %s, want %s", g.Seq, g.Commit, g.CARRoot, c.CID)
			}
			if g.Rev != string(c.Rev) || g.CommitRev != string(c.Rev) || g.CommitVersion != repo.CommitVersion {
				t.Errorf("seq %d: rev %q, commit block rev %q version %d, want %q version %d",
					g.Seq, g.Rev, g.CommitRev, g.CommitVersion, c.Rev, repo.CommitVersion)
			}
			switch {
			case c.Since == "" && g.Since != nil:
				t.Errorf("seq %d: since %q, want null", g.Seq, *g.Since)
			case c.Since != "" && (g.Since == nil || *g.Since != string(c.Since)):
				t.Errorf("seq %d: since %v, want %q", g.Seq, g.Since, c.Since)
			}
			switch {
			case c.PrevData == nil && g.PrevData != nil:
				t.Errorf("seq %d: prevData %s, want none", g.Seq, *g.PrevData)
			case c.PrevData != nil && (g.PrevData == nil || *g.PrevData != c.PrevData.String()):
				t.Errorf("seq %d: prevData %v, want %s", g.Seq, g.PrevData, c.PrevData)
			}
			if g.Rebase || g.TooBig || g.Blobs != 0 {
				t.Errorf("seq %d: rebase %v tooBig %v blobs %d", g.Seq, g.Rebase, g.TooBig, g.Blobs)
			}
			if len(g.MissingRecords) != 0 {
				t.Errorf("seq %d: records missing from the CAR slice: %v", g.Seq, g.MissingRecords)
			}
			if len(g.Ops) != len(c.Ops) {
				t.Errorf("seq %d: %d ops, want %d: %+v", g.Seq, len(g.Ops), len(c.Ops), g.Ops)
				continue
			}
			for j, op := range c.Ops {
				wantOp := tsOp{Action: op.Action, Path: op.Path}
				if op.CID != nil {
					wantOp.CID = op.CID.String()
				}
				if op.Prev != nil {
					wantOp.Prev = op.Prev.String()
				}
				if g.Ops[j] != wantOp {
					t.Errorf("seq %d op %d: %+v, want %+v", g.Seq, j, g.Ops[j], wantOp)
				}
			}
		}
	}
}

func checkFirehose(t *testing.T, events []wantEvent, got []fhLine) {
	// The Firehose emits one event per op of a commit (in op order) and
	// one per identity or account message.
	type fhWant struct {
		seq        int64
		event      string
		path, cid  string
		rev        string
		commit     string
		recordType string
	}
	var want []fhWant
	for _, e := range events {
		switch e.typ {
		case "#identity":
			want = append(want, fhWant{seq: e.seq, event: "identity"})
		case "#account":
			want = append(want, fhWant{seq: e.seq, event: "account"})
		case "#commit":
			for _, op := range e.commit.Ops {
				w := fhWant{seq: e.seq, event: op.Action, path: op.Path, rev: string(e.commit.Rev), commit: e.commit.CID.String()}
				if op.CID != nil {
					w.cid = op.CID.String()
					w.recordType, _, _ = strings.Cut(op.Path, "/")
				}
				want = append(want, w)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("the Firehose emitted %d events, want %d", len(got), len(want))
	}
	seen := map[string]int{}
	for i, w := range want {
		if i >= len(got) {
			break
		}
		g := got[i]
		seen[g.Event]++
		if g.Seq != w.seq || g.Event != w.event || g.DID != firehoseDID {
			t.Errorf("event %d: seq %d %s %s, want seq %d %s %s", i, g.Seq, g.Event, g.DID, w.seq, w.event, firehoseDID)
			continue
		}
		switch w.event {
		case "identity":
			if g.DIDDocument != firehoseDID {
				t.Errorf("seq %d: identity event resolved DID document %q", g.Seq, g.DIDDocument)
			}
		case "account":
			if g.Active == nil || *g.Active || g.Status == nil || *g.Status != "deactivated" {
				t.Errorf("seq %d: account event %+v", g.Seq, g)
			}
		default:
			if g.Path != w.path || g.CID != w.cid || g.Rev != w.rev || g.Commit != w.commit || g.RecordType != w.recordType {
				t.Errorf("seq %d: %s %s cid %q rev %s commit %s $type %q, want %s cid %q rev %s commit %s $type %q",
					g.Seq, g.Event, g.Path, g.CID, g.Rev, g.Commit, g.RecordType, w.path, w.cid, w.rev, w.commit, w.recordType)
			}
		}
	}
	for _, ev := range []string{"create", "update", "delete", "identity", "account"} {
		if seen[ev] == 0 {
			t.Errorf("the Firehose emitted no %s event", ev)
		}
	}
}
