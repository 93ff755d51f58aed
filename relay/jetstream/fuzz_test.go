package jetstream

import (
	"net/http"
	"testing"
	"time"
)

// FuzzParseParams feeds arbitrary query strings to the parameter parser:
// it must answer with Params or an error, never panic, and a Filter it
// returns must stay within the limits.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{
		"",
		"wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*&wantedDids=did:plc:q6gjnaw2blty4crticxkmujt",
		"cursor=1725519626134432&compress=true&maxMessageSizeBytes=1000&requireHello=true",
		"cursor=-1&wantedCollections=*",
		"wantedCollections=.*&wantedDids=did:",
		"cursor=99999999999999999999",
	} {
		f.Add(s, "zstd")
	}
	f.Fuzz(func(t *testing.T, query, encoding string) {
		h := http.Header{}
		h.Set("Socket-Encoding", encoding)
		p, err := ParseParams(query, h)
		if err != nil {
			return
		}
		fl := p.Filter
		if len(fl.collections)+len(fl.prefixes) > MaxWantedCollections || len(fl.dids) > MaxWantedDIDs || fl.maxSize < 0 {
			t.Fatalf("a filter past the limits: %d collections, %d prefixes, %d DIDs, size %d",
				len(fl.collections), len(fl.prefixes), len(fl.dids), fl.maxSize)
		}
		fl.Wants("did:plc:q6gjnaw2blty4crticxkmujt", "app.bsky.feed.post")
	})
}

// FuzzParseSubscriberMessage feeds arbitrary bytes to the parser of what
// subscribers send over the socket.
func FuzzParseSubscriberMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.post"],"wantedDids":["did:plc:q6gjnaw2blty4crticxkmujt"],"maxMessageSizeBytes":1000000}}`,
		`{"type":"options_update","payload":{}}`,
		`{"type":"other"}`,
		`{"type":"options_update","payload":{"wantedCollections":["app.*","x"]}}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, err := ParseSubscriberMessage(b)
		if err == nil && fl == nil {
			t.Fatal("no error and no filter")
		}
	})
}

// FuzzSpan feeds arbitrary bytes to Span and FromFrame, the readers of
// logged frames: no panic, a span within 1..MaxSpan, and never more
// events than the span allows times for.
func FuzzSpan(f *testing.F) {
	r := newTestRepo(f, testDID)
	commit, _ := r.commit(f, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(f, "x")), put("app.bsky.feed.post", "3l3qo2vutsw2c", post(f, "y")))
	f.Add(commit)
	f.Add(identityFrame(f, testDID, "alice.test", 1))
	f.Add(accountFrame(f, testDID, false, "deleted", 2))
	f.Add([]byte{0xa2, 0x61, 0x74, 0x67, 0x23, 0x63, 0x6f, 0x6d, 0x6d, 0x69, 0x74, 0x62, 0x6f, 0x70, 0x01})
	f.Fuzz(func(t *testing.T, frame []byte) {
		n := Span(frame)
		if n < 1 || n > MaxSpan {
			t.Fatalf("Span = %d", n)
		}
		evs, _ := FromFrame(time.UnixMicro(1_000_000), frame)
		for _, ev := range evs {
			if ev.TimeUS < 1_000_000 || ev.TimeUS >= 1_000_000+int64(n) {
				t.Fatalf("an event at %d, outside the span of %d from 1000000", ev.TimeUS, n)
			}
		}
	})
}
