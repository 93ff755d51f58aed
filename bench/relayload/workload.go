package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Phases of a host's stream. Each host's events of one phase follow those
// of the phase before, with increasing seqs.
const (
	phaseIngest  = iota // the ingest measurement
	phaseFanout         // events relayed to the fan-out consumers
	phaseTracked        // first events of many new accounts
	numPhases
)

// workload sizes the generated events.
type workload struct {
	hosts           int
	accountsPerHost int
	records         int     // records in each account's repository before the events
	events          int     // #commit events per account in the ingest phase
	fanoutEvents    int     // and in the fan-out phase
	tracked         int     // new accounts in the tracked-accounts phase, over all hosts
	p256Share       float64 // share of accounts with P-256 keys; the rest K-256
	seed            uint64
	timeout         time.Duration // longest wait for one phase
}

// genAccount is one simulated account and its repository.
type genAccount struct {
	did   syntax.DID
	key   crypto.PrivateKey
	repo  *repo.Repo
	clock *repo.RevClock
	// at is the account's record clock: rkeys and createdAt follow it.
	at        time.Time
	clockID   uint
	deletable []string // paths of likes, reposts and follows that may be deleted
}

// hostLoad is the generated stream of one simulated host.
type hostLoad struct {
	url    string                // the host's base URL, as DID documents name it
	frames [numPhases][][]byte   // #commit frames by phase, seqs increasing across phases
	docs   map[syntax.DID][]byte // DID documents of its accounts, JSON
}

// plcDID returns a valid-looking did:plc from a name.
func plcDID(name string) syntax.DID {
	sum := sha256.Sum256([]byte(name))
	id := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:24]
	return syntax.DID("did:plc:" + id)
}

// didDocument returns the JSON DID document of an account on pdsURL.
func didDocument(did syntax.DID, key crypto.PublicKey, handle, pdsURL string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"@context":    []string{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"},
		"id":          did,
		"alsoKnownAs": []string{"at://" + handle},
		"verificationMethod": []map[string]string{{
			"id": string(did) + "#atproto", "type": "Multikey", "controller": string(did),
			"publicKeyMultibase": key.Multibase(),
		}},
		"service": []map[string]string{{
			"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pdsURL,
		}},
	})
}

// hostGen generates the stream of one host.
type hostGen struct {
	w     workload
	index int
	rng   *rand.Rand
	recs  *recordGen
	load  *hostLoad
	seq   int64
	now   time.Time
	keys  []crypto.PrivateKey // shared by the tracked-phase accounts
}

// generateHost builds host index's accounts and events. others are DIDs
// that records may point at.
func generateHost(ctx context.Context, w workload, index int, url string, others []syntax.DID) (*hostLoad, error) {
	seed := w.seed + uint64(index)*0x100000001b3
	g := &hostGen{
		w: w, index: index,
		rng:  rand.New(rand.NewPCG(seed, 7)),
		recs: newRecordGen(seed, others),
		load: &hostLoad{url: url, docs: map[syntax.DID][]byte{}},
		now:  time.Now(),
	}
	accounts := make([]*genAccount, w.accountsPerHost)
	for i := range accounts {
		a, err := g.newAccount(ctx, fmt.Sprintf("h%d-a%d", index, i), g.newKey, w.records)
		if err != nil {
			return nil, err
		}
		accounts[i] = a
	}
	for _, p := range []struct {
		phase, rounds int
	}{{phaseIngest, w.events}, {phaseFanout, w.fanoutEvents}} {
		for range p.rounds {
			g.rng.Shuffle(len(accounts), func(i, j int) { accounts[i], accounts[j] = accounts[j], accounts[i] })
			for _, a := range accounts {
				if err := g.emit(ctx, p.phase, a, g.writes(a)); err != nil {
					return nil, err
				}
			}
		}
	}
	// The tracked phase: accounts the relay has not seen, each with a
	// small repository and one event.
	n := w.tracked / w.hosts
	if index < w.tracked%w.hosts {
		n++
	}
	for i := range n {
		a, err := g.newAccount(ctx, fmt.Sprintf("h%d-t%d", index, i), g.pooledKey, 2)
		if err != nil {
			return nil, err
		}
		if err := g.emit(ctx, phaseTracked, a, g.writes(a)); err != nil {
			return nil, err
		}
		a.repo = nil // its events are made; let the blocks go
	}
	return g.load, nil
}

func (g *hostGen) newKey() (crypto.PrivateKey, error) {
	if g.rng.Float64() < g.w.p256Share {
		return crypto.GenerateP256()
	}
	return crypto.GenerateK256()
}

// pooledKey hands out a few keys over and over: the tracked phase has many
// accounts, and generating a key for each would only slow the set-up.
// The relay still resolves and parses each account's key on its own.
func (g *hostGen) pooledKey() (crypto.PrivateKey, error) {
	const poolSize = 32
	if len(g.keys) < poolSize {
		k, err := g.newKey()
		if err != nil {
			return nil, err
		}
		g.keys = append(g.keys, k)
		return k, nil
	}
	return g.keys[g.rng.IntN(len(g.keys))], nil
}

// newAccount makes an account whose repository holds records records,
// written a year to a day ago, committed without events.
func (g *hostGen) newAccount(ctx context.Context, name string, key func() (crypto.PrivateKey, error), records int) (*genAccount, error) {
	k, err := key()
	if err != nil {
		return nil, err
	}
	did := plcDID(fmt.Sprintf("%d-%s", g.w.seed, name))
	r, err := repo.NewRepo(did, repo.NewMemBlockStore())
	if err != nil {
		return nil, err
	}
	a := &genAccount{did: did, key: k, repo: r, clock: repo.NewRevClock(uint(g.index % 1024)),
		at: g.now.Add(-365 * 24 * time.Hour), clockID: uint(g.rng.IntN(1024))}
	doc, err := didDocument(did, k.Public(), name+".relayload.test", g.load.url)
	if err != nil {
		return nil, err
	}
	g.load.docs[did] = doc
	step := 364 * 24 * time.Hour / time.Duration(max(records, 1))
	for done := 0; done < records; {
		n := min(records-done, repo.MaxCommitOps)
		writes := make([]repo.RecordWrite, 0, n)
		for range n {
			a.at = a.at.Add(step)
			w, err := g.create(a, g.recs.pickCollection())
			if err != nil {
				return nil, err
			}
			writes = append(writes, w)
		}
		if err := r.Apply(ctx, writes); err != nil {
			return nil, err
		}
		if _, err := r.Commit(ctx, k, a.clock); err != nil {
			return nil, err
		}
		done += n
	}
	a.at = g.now.Add(-time.Hour)
	return a, nil
}

// create makes a write creating a record of coll at the account's clock.
func (g *hostGen) create(a *genAccount, coll string) (repo.RecordWrite, error) {
	rec, err := g.recs.record(coll, a.at)
	if err != nil {
		return repo.RecordWrite{}, err
	}
	rkey := syntax.NewTID(a.at.UnixMicro(), a.clockID)
	if coll != collPost {
		a.deletable = append(a.deletable, coll+"/"+string(rkey))
	}
	return repo.RecordWrite{Action: repo.ActionCreate, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey), Value: rec}, nil
}

// writes picks the writes of the account's next commit: one record
// created, mostly; some deletes (an unlike, an unfollow); now and then a
// batch of three, as a thread or an import makes.
func (g *hostGen) writes(a *genAccount) []repo.RecordWrite {
	a.at = a.at.Add(time.Duration(1+g.rng.IntN(5000)) * time.Millisecond)
	n := g.rng.IntN(100)
	if n < 6 && len(a.deletable) > 0 {
		i := g.rng.IntN(len(a.deletable))
		path := a.deletable[i]
		a.deletable = append(a.deletable[:i], a.deletable[i+1:]...)
		coll, rkey, _ := strings.Cut(path, "/")
		return []repo.RecordWrite{{Action: repo.ActionDelete, Collection: syntax.NSID(coll), RKey: syntax.RecordKey(rkey)}}
	}
	count := 1
	if n >= 97 {
		count = 3
	}
	out := make([]repo.RecordWrite, 0, count)
	for range count {
		a.at = a.at.Add(time.Millisecond)
		w, err := g.create(a, g.recs.pickCollection())
		if err != nil {
			panic(err) // records of the known collections always encode
		}
		out = append(out, w)
	}
	return out
}

// emit commits writes on the account and appends the #commit frame to the
// phase's stream.
func (g *hostGen) emit(ctx context.Context, phase int, a *genAccount, writes []repo.RecordWrite) error {
	if err := a.repo.Apply(ctx, writes); err != nil {
		return fmt.Errorf("%s: %w", a.did, err)
	}
	res, err := a.repo.Commit(ctx, a.key, a.clock)
	if err != nil {
		return fmt.Errorf("%s: %w", a.did, err)
	}
	g.seq++
	ev := &atproto.SyncSubscribeRepos_Commit{
		Seq: g.seq, Repo: string(a.did), Commit: res.CID, Rev: string(res.Rev),
		Blocks: bytes.Clone(res.CAR), Blobs: []data.CID{}, PrevData: res.PrevData,
		Time: syntax.DatetimeFromTime(time.Now()).String(),
	}
	if res.Since != "" {
		s := string(res.Since)
		ev.Since = &s
	}
	for _, op := range res.Ops {
		ev.Ops = append(ev.Ops, &atproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: op.Path, Cid: op.CID, Prev: op.Prev})
	}
	f, err := stream.EncodeFrame("#commit", ev)
	if err != nil {
		return err
	}
	g.load.frames[phase] = append(g.load.frames[phase], f)
	return nil
}
