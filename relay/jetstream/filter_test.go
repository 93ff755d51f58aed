package jetstream

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestFilterWants(t *testing.T) {
	const alice, bob = "did:plc:alice0000000000000000000", "did:web:bob.test"
	f, err := NewFilter([]string{"app.bsky.feed.post", "app.bsky.graph.*", "app.bsky.graph.*"}, []string{alice, alice}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		did, collection string
		want            bool
	}{
		{alice, "app.bsky.feed.post", true},
		{alice, "app.bsky.feed.like", false},
		{alice, "app.bsky.graph.follow", true},
		{alice, "app.bsky.graph.list", true},
		{alice, "app.bsky.graphx.follow", false},
		{alice, "app.bsky.graph", false},
		{alice, "", true}, // identity and account events
		{bob, "app.bsky.feed.post", false},
		{bob, "", false},
	} {
		if got := f.Wants(tc.did, tc.collection); got != tc.want {
			t.Errorf("Wants(%s, %q) = %v, want %v", tc.did, tc.collection, got, tc.want)
		}
	}
	var all *Filter
	if !all.Wants(bob, "com.example.thing") || !all.Fits(1<<30) {
		t.Error("a nil Filter does not want everything")
	}
	empty, err := NewFilter(nil, nil, -5)
	if err != nil || !empty.Wants(bob, "com.example.thing") || !empty.Fits(1<<30) {
		t.Errorf("an empty Filter does not want everything (%v)", err)
	}
	sized, _ := NewFilter(nil, nil, 100)
	if !sized.Fits(100) || sized.Fits(101) {
		t.Error("maxMessageSizeBytes 100 is not applied")
	}
	wide, err := NewFilter([]string{"app.*"}, nil, 0)
	if err != nil || !wide.WantsCollection("app.bsky.feed.post") || wide.WantsCollection("com.atproto.x") {
		t.Errorf("app.* does not select app's collections (%v)", err)
	}
}

func TestFilterLimits(t *testing.T) {
	many := func(n int, format string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(format, i)
		}
		return out
	}
	if _, err := NewFilter(many(MaxWantedCollections, "com.example.c%d"), many(MaxWantedDIDs, "did:plc:%024d"), 0); err != nil {
		t.Fatalf("the largest allowed filter: %v", err)
	}
	for name, tc := range map[string]struct {
		collections, dids []string
		msg               string
	}{
		"too many collections": {many(MaxWantedCollections+1, "com.example.c%d"), nil, "invalid subscriber options: too many wanted collections"},
		"too many prefixes":    {many(MaxWantedCollections+1, "com.example%d.*"), nil, "invalid subscriber options: too many wanted collections"},
		"too many DIDs":        {nil, many(MaxWantedDIDs+1, "did:plc:%024d"), "invalid subscriber options: too many wanted DIDs"},
		"bad NSID":             {[]string{"app.bsky.feed.post", "not an nsid"}, nil, "invalid subscriber options: invalid collection: not an nsid"},
		"two segments":         {[]string{"app.bsky"}, nil, "invalid subscriber options: invalid collection: app.bsky"},
		"partial prefix":       {[]string{"app.bsky.feed.po*"}, nil, "invalid subscriber options: invalid collection: app.bsky.feed.po*"},
		"bare star":            {[]string{"*"}, nil, "invalid subscriber options: invalid collection: *"},
		"empty prefix":         {[]string{".*"}, nil, "invalid subscriber options: invalid collection: .*"},
		"bad prefix":           {[]string{"app..*"}, nil, "invalid subscriber options: invalid collection: app..*"},
		"bad DID":              {nil, []string{"alice"}, "invalid subscriber options: invalid DID: alice"},
	} {
		_, err := NewFilter(tc.collections, tc.dids, 0)
		if !errors.Is(err, ErrInvalidOptions) || err.Error() != tc.msg {
			t.Errorf("%s: error %v, want %q", name, err, tc.msg)
		}
	}
}

func TestParseParams(t *testing.T) {
	q := url.Values{
		"wantedCollections":   {"app.bsky.feed.post", "app.bsky.graph.*"},
		"wantedDids":          {"did:plc:q6gjnaw2blty4crticxkmujt"},
		"cursor":              {"1725519626134432"},
		"maxMessageSizeBytes": {"1000"},
		"requireHello":        {"true"},
	}
	p, err := ParseParams(q.Encode(), http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasCursor || p.Cursor != 1725519626134432 || p.Compress || !p.RequireHello ||
		!p.Filter.Wants("did:plc:q6gjnaw2blty4crticxkmujt", "app.bsky.graph.follow") || p.Filter.Fits(1001) {
		t.Fatalf("ParseParams = %+v", p)
	}
	for _, tc := range []struct {
		q    string
		h    string
		want bool
	}{
		{"compress=true", "", true},
		{"compress=false", "", false},
		{"", "zstd", true},
		{"", "gzip, zstd", true},
		{"", "gzip", false},
	} {
		h := http.Header{}
		if tc.h != "" {
			h.Set("Socket-Encoding", tc.h)
		}
		if p, err := ParseParams(tc.q, h); err != nil || p.Compress != tc.want {
			t.Errorf("query %q, Socket-Encoding %q: Compress %v, %v; want %v", tc.q, tc.h, p.Compress, err, tc.want)
		}
	}
	if p, err := ParseParams("maxMessageSizeBytes=lots", nil); err != nil || !p.Filter.Fits(1<<30) {
		t.Errorf("an unreadable maxMessageSizeBytes is not taken as no limit: %v", err)
	}
	for q, msg := range map[string]string{
		"cursor=yesterday":             "invalid cursor: yesterday",
		"cursor=1.5":                   "invalid cursor: 1.5",
		"wantedCollections=app.bsky.*": "", // valid
		"wantedCollections=app.bsky":   "invalid subscriber options: invalid collection: app.bsky",
		"wantedDids=did:plc":           "invalid subscriber options: invalid DID: did:plc",
		"wantedDids=%zz":               `invalid query: invalid URL escape "%zz"`,
		"compress=true;cursor=1":       `invalid query: semicolon in "compress=true;cursor=1"`,
		"&&compress=true&":             "",
	} {
		_, err := ParseParams(q, nil)
		if msg == "" && err != nil || msg != "" && (err == nil || err.Error() != msg) {
			t.Errorf("%s: error %v, want %q", q, err, msg)
		}
	}
}

func TestParseSubscriberMessage(t *testing.T) {
	f, err := ParseSubscriberMessage([]byte(`{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.post"],` +
		`"wantedDids":["did:plc:q6gjnaw2blty4crticxkmujt"],"maxMessageSizeBytes":1000000}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Wants("did:plc:q6gjnaw2blty4crticxkmujt", "app.bsky.feed.post") || f.Wants("did:plc:q6gjnaw2blty4crticxkmujt", "app.bsky.feed.like") ||
		!f.Fits(1000000) || f.Fits(1000001) {
		t.Fatalf("options_update not applied: %+v", f)
	}
	f, err = ParseSubscriberMessage([]byte(`{"type":"options_update","payload":{}}`))
	if err != nil || !f.Wants("did:web:x.test", "com.example.x") {
		t.Fatalf("an empty options_update does not clear the filters: %v", err)
	}
	if _, err := ParseSubscriberMessage([]byte(`{"type":"hello","payload":{}}`)); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("an unknown type: %v, want ErrUnknownMessage", err)
	}
	for name, msg := range map[string]string{
		"not JSON":        `options_update`,
		"no payload":      `{"type":"options_update"}`,
		"payload type":    `{"type":"options_update","payload":[]}`,
		"collections":     `{"type":"options_update","payload":{"wantedCollections":"app.bsky.feed.post"}}`,
		"bad collection":  `{"type":"options_update","payload":{"wantedCollections":["app"]}}`,
		"bad DID":         `{"type":"options_update","payload":{"wantedDids":["bob"]}}`,
		"size not number": `{"type":"options_update","payload":{"maxMessageSizeBytes":"big"}}`,
	} {
		if _, err := ParseSubscriberMessage([]byte(msg)); err == nil || errors.Is(err, ErrUnknownMessage) {
			t.Errorf("%s: error %v, want a parse error", name, err)
		}
	}
	big := `{"type":"options_update","payload":{"x":"` + strings.Repeat("a", MaxSubscriberMessage) + `"}}`
	if _, err := ParseSubscriberMessage([]byte(big)); err == nil {
		t.Error("an oversized message was accepted")
	}
}
