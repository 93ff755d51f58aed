package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Record collections, and the share of each in the generated writes. The
// shares follow the live network's mix roughly: likes dominate, then
// posts, reposts and follows.
const (
	collLike   = "app.bsky.feed.like"
	collPost   = "app.bsky.feed.post"
	collRepost = "app.bsky.feed.repost"
	collFollow = "app.bsky.graph.follow"
)

// recordGen makes records of realistic shapes and sizes, deterministically
// from its seed.
type recordGen struct {
	rng *rand.Rand
	// others are DIDs that records point at (subjects of likes and
	// follows, authors of liked posts).
	others []syntax.DID
}

func newRecordGen(seed uint64, others []syntax.DID) *recordGen {
	return &recordGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), others: others}
}

// pickCollection draws a collection with the live network's mix.
func (g *recordGen) pickCollection() string {
	switch n := g.rng.IntN(100); {
	case n < 55:
		return collLike
	case n < 75:
		return collPost
	case n < 88:
		return collRepost
	default:
		return collFollow
	}
}

var words = strings.Fields(`the a of to and in is it that for on with this was at be
just like what about people so my your one get all time today new good know think
really more now would some out love day great thanks see night music read
morning coffee weather photo city art book game team work week post thread`)

// text returns a post text: mostly short, some near the 300-grapheme limit.
func (g *recordGen) text() string {
	n := 3 + g.rng.IntN(12)
	if g.rng.IntN(4) == 0 {
		n = 20 + g.rng.IntN(30)
	}
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[g.rng.IntN(len(words))])
	}
	s := b.String()
	if len(s) > 299 {
		s = s[:299]
	}
	return s
}

// fakeCID is the CID of some other record, as a strongRef's string.
func (g *recordGen) fakeCID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return data.CIDForCBOR(b[:]).String()
}

func (g *recordGen) other() syntax.DID { return g.others[g.rng.IntN(len(g.others))] }

// strongRef points at a post of someone else.
func (g *recordGen) strongRef(at time.Time) map[string]any {
	rkey := syntax.NewTID(at.Add(-time.Duration(g.rng.IntN(3600))*time.Second).UnixMicro(), uint(g.rng.IntN(32)))
	return map[string]any{
		"uri": fmt.Sprintf("at://%s/%s/%s", g.other(), collPost, rkey),
		"cid": g.fakeCID(),
	}
}

// record returns the DAG-CBOR of a record of coll created at at.
func (g *recordGen) record(coll string, at time.Time) ([]byte, error) {
	created := syntax.DatetimeFromTime(at).String()
	var rec map[string]any
	switch coll {
	case collLike, collRepost:
		rec = map[string]any{"$type": coll, "subject": g.strongRef(at), "createdAt": created}
	case collFollow:
		rec = map[string]any{"$type": coll, "subject": string(g.other()), "createdAt": created}
	case collPost:
		text := g.text()
		rec = map[string]any{"$type": coll, "text": text, "langs": []any{"en"}, "createdAt": created}
		if g.rng.IntN(3) == 0 {
			// A reply, as about a third of posts are.
			root := g.strongRef(at)
			rec["reply"] = map[string]any{"root": root, "parent": g.strongRef(at)}
		}
		if g.rng.IntN(6) == 0 {
			// A link at the end of the text, with its facet.
			link := fmt.Sprintf("https://example.com/%s/%d", words[g.rng.IntN(len(words))], g.rng.IntN(1_000_000))
			start := len(text) + 1
			text += " " + link
			rec["text"] = text
			rec["facets"] = []any{map[string]any{
				"index":    map[string]any{"byteStart": int64(start), "byteEnd": int64(len(text))},
				"features": []any{map[string]any{"$type": "app.bsky.richtext.facet#link", "uri": link}},
			}}
		}
	default:
		return nil, fmt.Errorf("unknown collection %q", coll)
	}
	return data.MarshalCBOR(rec)
}
