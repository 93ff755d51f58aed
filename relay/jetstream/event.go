package jetstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/relay/verify"
)

// Kinds of event, the "kind" field.
const (
	KindCommit   = "commit"
	KindIdentity = "identity"
	KindAccount  = "account"
)

// Operations of a commit event, the "operation" field.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Event is one message of the stream, as Jetstream writes it. Exactly one
// of Commit, Identity and Account is set, as Kind says.
type Event struct {
	DID string `json:"did"`
	// TimeUS is the event's time in Unix microseconds; it increases
	// strictly along the stream and is what the cursor parameter takes.
	TimeUS   int64     `json:"time_us"`
	Kind     string    `json:"kind"`
	Commit   *Commit   `json:"commit,omitempty"`
	Identity *Identity `json:"identity,omitempty"`
	Account  *Account  `json:"account,omitempty"`
}

// Commit is one record operation of a repository commit.
type Commit struct {
	Rev        string `json:"rev"`
	Operation  string `json:"operation"`
	Collection string `json:"collection"`
	RKey       string `json:"rkey"`
	// Record is the record in atproto JSON ($link, $bytes and blob
	// objects), for creates and updates.
	Record json.RawMessage `json:"record,omitempty"`
	// CID is the record's CID, for creates and updates.
	CID string `json:"cid,omitempty"`
}

// Identity is the relay's #identity event.
type Identity struct {
	DID    string `json:"did"`
	Handle string `json:"handle,omitempty"`
	Seq    int64  `json:"seq"`
	Time   string `json:"time"`
}

// Account is the relay's #account event.
type Account struct {
	Active bool   `json:"active"`
	DID    string `json:"did"`
	Seq    int64  `json:"seq"`
	Status string `json:"status,omitempty"`
	Time   string `json:"time"`
}

// Collection is the collection of a commit event, "" for other kinds.
func (e *Event) Collection() string {
	if e.Commit == nil {
		return ""
	}
	return e.Commit.Collection
}

// FromFrame converts one event of the relay's log, a subscribeRepos frame
// logged at time t, into the events it yields, in order: one per record
// operation of a #commit, the i-th operation at t plus i microseconds; one
// for an #identity or an #account, at t; none for other types and for a
// commit marked tooBig. An operation that cannot be converted is left out
// and reported in the error, which then comes with the other events; a
// frame that cannot be read at all gives no events and an error.
func FromFrame(t time.Time, frame []byte) ([]Event, error) {
	h, body, err := stream.DecodeFrame(frame)
	if err != nil {
		return nil, fmt.Errorf("jetstream: reading the frame: %w", err)
	}
	if h.Op != stream.OpMessage {
		return nil, nil
	}
	micros := t.UnixMicro()
	switch h.T {
	case "#commit":
		return fromCommit(micros, body)
	case "#identity":
		var ev atproto.SyncSubscribeRepos_Identity
		if err := data.UnmarshalCBORInto(body, &ev); err != nil {
			return nil, fmt.Errorf("jetstream: decoding #identity: %w", err)
		}
		id := &Identity{DID: ev.Did, Seq: ev.Seq, Time: ev.Time}
		if ev.Handle != nil {
			id.Handle = *ev.Handle
		}
		return []Event{{DID: ev.Did, TimeUS: micros, Kind: KindIdentity, Identity: id}}, nil
	case "#account":
		var ev atproto.SyncSubscribeRepos_Account
		if err := data.UnmarshalCBORInto(body, &ev); err != nil {
			return nil, fmt.Errorf("jetstream: decoding #account: %w", err)
		}
		acct := &Account{Active: ev.Active, DID: ev.Did, Seq: ev.Seq, Time: ev.Time}
		if ev.Status != nil {
			acct.Status = *ev.Status
		}
		return []Event{{DID: ev.Did, TimeUS: micros, Kind: KindAccount, Account: acct}}, nil
	}
	return nil, nil
}

func fromCommit(micros int64, body []byte) ([]Event, error) {
	// The relay checked this commit before logging it; parsing it again
	// gives its blocks, each checked against its CID.
	c, _, err := verify.ParseCommit(body, nil)
	if err != nil {
		return nil, fmt.Errorf("jetstream: reading #commit: %w", err)
	}
	ev := c.Event
	if ev.TooBig {
		return nil, nil
	}
	out := make([]Event, 0, len(ev.Ops))
	var errs []error
	for i, op := range ev.Ops {
		collection, rkey, _ := strings.Cut(op.Path, "/")
		cm := &Commit{Rev: ev.Rev, Collection: collection, RKey: rkey}
		switch op.Action {
		case "create", "update":
			cm.Operation = OpCreate
			if op.Action == "update" {
				cm.Operation = OpUpdate
			}
			rec, err := recordJSON(c.Blocks, op.Cid)
			if err != nil {
				errs = append(errs, fmt.Errorf("op %d (%s %s): %w", i, op.Action, op.Path, err))
				continue
			}
			cm.Record, cm.CID = rec, op.Cid.String()
		case "delete":
			cm.Operation = OpDelete
		default:
			errs = append(errs, fmt.Errorf("op %d: unknown action %q", i, op.Action))
			continue
		}
		out = append(out, Event{DID: ev.Repo, TimeUS: micros + int64(i), Kind: KindCommit, Commit: cm})
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("jetstream: #commit of %s rev %s: %w", ev.Repo, ev.Rev, errors.Join(errs...))
	}
	return out, nil
}

// recordJSON returns the record block cid names, from blocks, as atproto
// JSON.
func recordJSON(blocks map[data.CID][]byte, cid *data.CID) ([]byte, error) {
	if cid == nil {
		return nil, errors.New("no record CID")
	}
	b, ok := blocks[*cid]
	if !ok {
		return nil, fmt.Errorf("record block %s is not in the commit", cid)
	}
	rec, err := data.UnmarshalCBOR(b)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", cid, err)
	}
	js, err := data.MarshalJSON(rec)
	if err != nil {
		return nil, fmt.Errorf("record %s as JSON: %w", cid, err)
	}
	return js, nil
}
