package sequencer

import (
	"errors"
	"fmt"
	"slices"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/actorstore"
)

// Event kinds: the kind of an outbox row or of an Append, which is the
// subscribeRepos message type without its '#'.
const (
	KindCommit   = actorstore.KindCommit // #commit, written by repository writes
	KindSync     = "sync"                // #sync
	KindIdentity = "identity"            // #identity
	KindAccount  = "account"             // #account
)

// ErrInvalidEvent is matched by the errors Append returns for a body that
// is not a valid event of its kind for its account.
var ErrInvalidEvent = errors.New("sequencer: invalid event")

// event is a decoded event body waiting for its seq.
type event interface {
	data.CBORMarshaler
	setSeq(seq int64)
	msgType() string
}

type commitEvent struct {
	atproto.SyncSubscribeRepos_Commit
}
type syncEvent struct {
	atproto.SyncSubscribeRepos_Sync
}
type identityEvent struct {
	atproto.SyncSubscribeRepos_Identity
}
type accountEvent struct {
	atproto.SyncSubscribeRepos_Account
}

func (e *commitEvent) setSeq(seq int64)   { e.Seq = seq }
func (e *syncEvent) setSeq(seq int64)     { e.Seq = seq }
func (e *identityEvent) setSeq(seq int64) { e.Seq = seq }
func (e *accountEvent) setSeq(seq int64)  { e.Seq = seq }

func (*commitEvent) msgType() string   { return "#commit" }
func (*syncEvent) msgType() string     { return "#sync" }
func (*identityEvent) msgType() string { return "#identity" }
func (*accountEvent) msgType() string  { return "#account" }

// decodeEvent decodes body, the DAG-CBOR of the subscribeRepos message of
// kind, and checks that it belongs to did. The payload's $type, which the
// event-stream spec asks payloads to omit (the header carries the type), is
// dropped.
func decodeEvent(did syntax.DID, kind string, body []byte) (event, error) {
	var (
		ev    event
		owner string
		err   error
	)
	switch kind {
	case KindCommit:
		e := new(commitEvent)
		err = data.UnmarshalCBORInto(body, &e.SyncSubscribeRepos_Commit)
		e.LexiconTypeID, owner, ev = "", e.Repo, e
	case KindSync:
		e := new(syncEvent)
		err = data.UnmarshalCBORInto(body, &e.SyncSubscribeRepos_Sync)
		e.LexiconTypeID, owner, ev = "", e.Did, e
	case KindIdentity:
		e := new(identityEvent)
		err = data.UnmarshalCBORInto(body, &e.SyncSubscribeRepos_Identity)
		e.LexiconTypeID, owner, ev = "", e.Did, e
	case KindAccount:
		e := new(accountEvent)
		err = data.UnmarshalCBORInto(body, &e.SyncSubscribeRepos_Account)
		e.LexiconTypeID, owner, ev = "", e.Did, e
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidEvent, kind)
	}
	if err == nil {
		err = checkRequired(body, requiredKeys[kind])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s body: %v", ErrInvalidEvent, kind, err)
	}
	if owner != string(did) {
		return nil, fmt.Errorf("%w: %s event of %q stored for account %s", ErrInvalidEvent, kind, owner, did)
	}
	return ev, nil
}

// requiredKeys are the fields the subscribeRepos lexicon requires of each
// message; the generated decoders leave a missing field at its zero value.
var requiredKeys = map[string][]string{
	KindCommit:   {"blobs", "blocks", "commit", "ops", "rebase", "repo", "rev", "seq", "since", "time", "tooBig"},
	KindSync:     {"blocks", "did", "rev", "seq", "time"},
	KindIdentity: {"did", "seq", "time"},
	KindAccount:  {"active", "did", "seq", "time"},
}

// checkRequired reports the first of keys missing from the top-level map
// of body, which has already been decoded once.
func checkRequired(body []byte, keys []string) error {
	d := data.NewDecoder(body)
	n, err := d.ReadMapHeader()
	if err != nil {
		return err
	}
	found := 0
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return err
		}
		if slices.Contains(keys, string(k)) {
			found++
		}
		if err := d.Skip(); err != nil {
			return err
		}
		prev = k
	}
	if found == len(keys) {
		return nil
	}
	for _, k := range keys {
		if !hasKey(body, k) {
			return fmt.Errorf("required field %q is missing", k)
		}
	}
	return nil
}

func hasKey(body []byte, key string) bool {
	d := data.NewDecoder(body)
	n, err := d.ReadMapHeader()
	if err != nil {
		return false
	}
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return false
		}
		if string(k) == key {
			return true
		}
		if d.Skip() != nil {
			return false
		}
		prev = k
	}
	return false
}

// frame sets the event's seq and encodes its frame.
func frame(ev event, seq int64) ([]byte, error) {
	ev.setSeq(seq)
	f, err := stream.EncodeFrame(ev.msgType(), ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	return f, nil
}

// encodeEvent is decodeEvent followed by frame.
func encodeEvent(did syntax.DID, kind string, body []byte, seq int64) ([]byte, error) {
	ev, err := decodeEvent(did, kind, body)
	if err != nil {
		return nil, err
	}
	return frame(ev, seq)
}
