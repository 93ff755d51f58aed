package jetstream

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
)

const testDID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"

// richRecord uses every atproto JSON special form: a blob, a link and
// bytes.
const richRecord = `{"$type":"app.bsky.feed.post","createdAt":"2026-03-01T12:00:00.000Z",` +
	`"embed":{"$type":"app.bsky.embed.images","images":[{"alt":"a cat","image":{"$type":"blob",` +
	`"mimeType":"image/jpeg","ref":{"$link":"bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},"size":1234}}]},` +
	`"raw":{"$bytes":"AAECAwQ"},"ref":{"$link":"bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"},"text":"hello <&> world"}`

// TestFromFrameGolden checks the JSON of each kind of event against the
// form Jetstream writes.
func TestFromFrameGolden(t *testing.T) {
	r := newTestRepo(t, testDID)
	at := time.UnixMicro(1_772_366_400_000_000)
	rich := recordFromJSON(t, richRecord)
	richCID := data.CIDForCBOR(rich).String()
	first := post(t, "first")
	firstCID := data.CIDForCBOR(first).String()
	edited := post(t, "edited")
	editedCID := data.CIDForCBOR(edited).String()

	createFrame, rev1 := r.commit(t, put("app.bsky.feed.post", "3l3qo2vutsw2b", rich), put("app.bsky.feed.like", "3l3qo2vuowo2b", first))
	changeFrame, rev2 := r.commit(t, update("app.bsky.feed.like", "3l3qo2vuowo2b", edited), del("app.bsky.feed.post", "3l3qo2vutsw2b"))

	cases := []struct {
		name  string
		frame []byte
		want  []string
	}{
		{"create", createFrame, []string{
			`{"did":"` + testDID + `","time_us":1772366400000000,"kind":"commit","commit":{"rev":"` + rev1 +
				`","operation":"create","collection":"app.bsky.feed.post","rkey":"3l3qo2vutsw2b","record":` + richRecord +
				`,"cid":"` + richCID + `"}}`,
			`{"did":"` + testDID + `","time_us":1772366400000001,"kind":"commit","commit":{"rev":"` + rev1 +
				`","operation":"create","collection":"app.bsky.feed.like","rkey":"3l3qo2vuowo2b","record":` +
				`{"$type":"app.bsky.feed.post","createdAt":"2026-03-01T12:00:00.000Z","text":"first"}` +
				`,"cid":"` + firstCID + `"}}`,
		}},
		{"update and delete", changeFrame, []string{
			`{"did":"` + testDID + `","time_us":1772366400000000,"kind":"commit","commit":{"rev":"` + rev2 +
				`","operation":"update","collection":"app.bsky.feed.like","rkey":"3l3qo2vuowo2b","record":` +
				`{"$type":"app.bsky.feed.post","createdAt":"2026-03-01T12:00:00.000Z","text":"edited"}` +
				`,"cid":"` + editedCID + `"}}`,
			`{"did":"` + testDID + `","time_us":1772366400000001,"kind":"commit","commit":{"rev":"` + rev2 +
				`","operation":"delete","collection":"app.bsky.feed.post","rkey":"3l3qo2vutsw2b"}}`,
		}},
		{"identity", identityFrame(t, testDID, "alice.test", 42), []string{
			`{"did":"` + testDID + `","time_us":1772366400000000,"kind":"identity","identity":{"did":"` + testDID +
				`","handle":"alice.test","seq":42,"time":"2026-03-01T12:00:01.000Z"}}`,
		}},
		{"identity without handle", identityFrame(t, testDID, "", 43), []string{
			`{"did":"` + testDID + `","time_us":1772366400000000,"kind":"identity","identity":{"did":"` + testDID +
				`","seq":43,"time":"2026-03-01T12:00:01.000Z"}}`,
		}},
		{"account active", accountFrame(t, testDID, true, "", 44), []string{
			`{"did":"` + testDID + `","time_us":1772366400000000,"kind":"account","account":{"active":true,"did":"` + testDID +
				`","seq":44,"time":"2026-03-01T12:00:02.000Z"}}`,
		}},
		{"account takendown", accountFrame(t, testDID, false, "takendown", 45), []string{
			`{"did":"` + testDID + `","time_us":1772366400000000,"kind":"account","account":{"active":false,"did":"` + testDID +
				`","seq":45,"status":"takendown","time":"2026-03-01T12:00:02.000Z"}}`,
		}},
		{"info", encodeFrame(t, "#info", map[string]any{"name": "OutdatedCursor"}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := FromFrame(at, tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(tc.want) {
				t.Fatalf("%d events, want %d", len(evs), len(tc.want))
			}
			for i, ev := range evs {
				got, err := json.Marshal(&ev)
				if err != nil {
					t.Fatal(err)
				}
				if !jsonEqual(t, got, []byte(tc.want[i])) {
					t.Errorf("event %d:\n got %s\nwant %s", i, got, tc.want[i])
				}
			}
			if got, want := Span(tc.frame), max(len(tc.want), 1); got != want {
				t.Errorf("Span = %d, want %d", got, want)
			}
		})
	}
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

// TestFromFrameTooBig checks that a commit marked tooBig yields nothing,
// as in Jetstream.
func TestFromFrameTooBig(t *testing.T) {
	r := newTestRepo(t, testDID)
	frame, _ := r.commit(t, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(t, "x")))
	// Flip the tooBig flag: "tooBig" then false (0xf4) becomes true (0xf5).
	key := []byte("ftooBig\xf4")
	i := strings.Index(string(frame), string(key))
	if i < 0 {
		t.Fatal("no tooBig field in the frame")
	}
	frame[i+len(key)-1] = 0xf5
	evs, err := FromFrame(time.Now(), frame)
	if err != nil || len(evs) != 0 {
		t.Fatalf("FromFrame = %d events, %v; want none", len(evs), err)
	}
}

// TestFromFrameBad checks that unreadable frames give clear errors.
func TestFromFrameBad(t *testing.T) {
	r := newTestRepo(t, testDID)
	good, _ := r.commit(t, put("app.bsky.feed.post", "3l3qo2vutsw2b", post(t, "x")))
	for name, frame := range map[string][]byte{
		"empty":           nil,
		"not cbor":        []byte("hello"),
		"truncated":       good[:len(good)/2],
		"bad identity":    encodeFrame(t, "#identity", map[string]any{"did": 7}),
		"bad account":     encodeFrame(t, "#account", map[string]any{"active": "yes"}),
		"commit no ops":   encodeFrame(t, "#commit", map[string]any{"repo": testDID}),
		"commit bad body": append(encodeFrame(t, "#commit", map[string]any{}), 0),
	} {
		evs, err := FromFrame(time.Now(), frame)
		if err == nil || len(evs) != 0 {
			t.Errorf("%s: FromFrame = %d events, %v; want an error", name, len(evs), err)
		}
	}
}
