package jetstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Limits on what a subscriber asks for, from Jetstream's documentation.
const (
	// MaxWantedCollections bounds the collections and prefixes of one
	// subscriber: "You can specify at most 100 wanted collections/prefixes".
	MaxWantedCollections = 100
	// MaxWantedDIDs bounds the DIDs of one subscriber: "You can specify at
	// most 10,000 wanted DIDs".
	MaxWantedDIDs = 10_000
	// MaxSubscriberMessage bounds a message a subscriber sends: "the
	// message can be at most 10MB in size".
	MaxSubscriberMessage = 10_000_000
)

// ErrInvalidOptions is wrapped by the errors of subscriber options that
// break the rules; its text is Jetstream's.
var ErrInvalidOptions = errors.New("invalid subscriber options")

// Filter says which events a subscriber wants. The zero Filter (and a nil
// *Filter) wants everything. A Filter is never modified once made, so one
// value may be shared by goroutines.
type Filter struct {
	// collections holds whole NSIDs, prefixes the "app.bsky.feed." of
	// "app.bsky.feed.*"; both nil means every collection.
	collections map[string]struct{}
	prefixes    []string
	dids        map[string]struct{} // nil: every DID
	// maxSize is the largest message to send, 0 for no limit.
	maxSize int
}

// NewFilter checks and compiles subscriber options: collections are NSIDs
// or NSID prefixes ending in ".*" (app.bsky.feed.*; at most
// MaxWantedCollections), dids are DIDs (at most MaxWantedDIDs), and
// messages larger than maxSize bytes are skipped (zero or negative: no
// limit). Duplicates count once. Empty lists want everything.
func NewFilter(collections, dids []string, maxSize int) (*Filter, error) {
	f := &Filter{maxSize: max(maxSize, 0)}
	if len(collections) > 0 {
		f.collections = make(map[string]struct{}, len(collections))
		seen := map[string]struct{}{}
		for _, c := range collections {
			if prefix, ok := strings.CutSuffix(c, ".*"); ok {
				// The part before ".*" must be NSID segments.
				if _, err := syntax.ParseNSID(prefix + ".a.b"); err != nil || prefix == "" {
					return nil, fmt.Errorf("%w: invalid collection: %s", ErrInvalidOptions, c)
				}
				if _, dup := seen[prefix]; !dup {
					seen[prefix] = struct{}{}
					f.prefixes = append(f.prefixes, prefix+".")
				}
				continue
			}
			if _, err := syntax.ParseNSID(c); err != nil {
				return nil, fmt.Errorf("%w: invalid collection: %s", ErrInvalidOptions, c)
			}
			f.collections[c] = struct{}{}
		}
		if len(f.collections)+len(f.prefixes) > MaxWantedCollections {
			return nil, fmt.Errorf("%w: too many wanted collections", ErrInvalidOptions)
		}
	}
	if len(dids) > 0 {
		f.dids = make(map[string]struct{}, min(len(dids), MaxWantedDIDs+1))
		for _, d := range dids {
			if _, err := syntax.ParseDID(d); err != nil {
				return nil, fmt.Errorf("%w: invalid DID: %s", ErrInvalidOptions, d)
			}
			f.dids[d] = struct{}{}
			if len(f.dids) > MaxWantedDIDs {
				return nil, fmt.Errorf("%w: too many wanted DIDs", ErrInvalidOptions)
			}
		}
	}
	return f, nil
}

// WantsDID reports whether events of did pass the DID filter.
func (f *Filter) WantsDID(did string) bool {
	if f == nil || f.dids == nil {
		return true
	}
	_, ok := f.dids[did]
	return ok
}

// WantsCollection reports whether commit events of collection pass the
// collection filter. Identity and account events (collection "") always
// do, as in Jetstream.
func (f *Filter) WantsCollection(collection string) bool {
	if f == nil || collection == "" || f.collections == nil {
		return true
	}
	if _, ok := f.collections[collection]; ok {
		return true
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(collection, p) {
			return true
		}
	}
	return false
}

// Wants reports whether an event of did in collection passes the filter.
func (f *Filter) Wants(did, collection string) bool {
	return f.WantsDID(did) && f.WantsCollection(collection)
}

// Fits reports whether a message of n bytes is within the size limit.
func (f *Filter) Fits(n int) bool { return f == nil || f.maxSize == 0 || n <= f.maxSize }

// Params are the query parameters (and headers) of a /subscribe request.
type Params struct {
	Filter *Filter
	// HasCursor says Cursor was given: replay from the events at or after
	// that time (Unix microseconds).
	HasCursor bool
	Cursor    int64
	// Compress asks for zstd messages (compress=true, or a Socket-Encoding
	// header naming zstd).
	Compress bool
	// RequireHello holds the stream until the subscriber sends its first
	// options_update.
	RequireHello bool
}

// ParseParams reads a /subscribe request's parameters from its raw query:
// wantedCollections and wantedDids (repeated), maxMessageSizeBytes,
// cursor, compress and requireHello, and the Socket-Encoding header.
// Errors name the bad parameter in Jetstream's words.
func ParseParams(rawQuery string, h http.Header) (Params, error) {
	var p Params
	q, err := parseQuery(rawQuery)
	if err != nil {
		return p, err
	}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return p, fmt.Errorf("invalid cursor: %s", c)
		}
		p.HasCursor, p.Cursor = true, n
	}
	f, err := NewFilter(q["wantedCollections"], q["wantedDids"], parseSize(q.Get("maxMessageSizeBytes")))
	if err != nil {
		return p, err
	}
	p.Filter = f
	p.Compress = q.Get("compress") == "true" || strings.Contains(h.Get("Socket-Encoding"), "zstd")
	p.RequireHello = q.Get("requireHello") == "true"
	return p, nil
}

// parseQuery is url.ParseQuery without its cap on the number of
// parameters, which a list of 10,000 DIDs passes: the request's header
// size limit bounds the work, and NewFilter the lists.
func parseQuery(raw string) (url.Values, error) {
	q := url.Values{}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		if strings.Contains(kv, ";") {
			return nil, fmt.Errorf("invalid query: semicolon in %q", kv)
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("invalid query: %w", err)
		}
		v, err = url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("invalid query: %w", err)
		}
		q[k] = append(q[k], v)
	}
	return q, nil
}

// parseSize reads maxMessageSizeBytes leniently, as Jetstream does: what
// is not a non-negative integer means no limit.
func parseSize(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// Subscriber message types.
const MessageOptionsUpdate = "options_update"

// subscriberMessage is the envelope of a message a subscriber sends.
type subscriberMessage struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// optionsUpdate is the payload of an options_update message.
type optionsUpdate struct {
	WantedCollections   []string `json:"wantedCollections"`
	WantedDIDs          []string `json:"wantedDids"`
	MaxMessageSizeBytes int      `json:"maxMessageSizeBytes"`
}

// ErrUnknownMessage is returned by ParseSubscriberMessage for a well-formed
// message of a type other than options_update, which subscribers may send
// and the server ignores.
var ErrUnknownMessage = errors.New("jetstream: unknown subscriber message type")

// ParseSubscriberMessage reads a message a subscriber sent over the
// socket: an options_update ({"type": "options_update", "payload":
// {"wantedCollections": [...], "wantedDids": [...],
// "maxMessageSizeBytes": n}}) gives the subscriber's new Filter, which
// replaces the old one whole (an empty list wants everything again).
func ParseSubscriberMessage(b []byte) (*Filter, error) {
	if len(b) > MaxSubscriberMessage {
		return nil, fmt.Errorf("subscriber message of %d bytes exceeds the maximum of %d", len(b), MaxSubscriberMessage)
	}
	var m subscriberMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("failed to unmarshal subscriber sourced message: %w", err)
	}
	if m.Type != MessageOptionsUpdate {
		return nil, fmt.Errorf("%w %q", ErrUnknownMessage, m.Type)
	}
	var u optionsUpdate
	if err := json.Unmarshal(m.Payload, &u); err != nil {
		return nil, fmt.Errorf("failed to unmarshal subscriber options update: %w", err)
	}
	f, err := NewFilter(u.WantedCollections, u.WantedDIDs, u.MaxMessageSizeBytes)
	if err != nil {
		return nil, fmt.Errorf("failed to parse subscriber options: %w", err)
	}
	return f, nil
}
