package pds

import (
	"errors"
	"testing"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// FuzzPrepareRecord feeds arbitrary records (as a client's JSON) to the
// checks of the write methods: they must refuse with a 400, or produce a
// record the repository accepts, typed with its collection.
func FuzzPrepareRecord(f *testing.F) {
	cat, err := api.Catalog()
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{xrpc: xrpc.NewServer(cat), clock: repo.NewRevClock(0)}
	f.Add("app.bsky.feed.post", "", `{"text":"hi","createdAt":"2024-01-01T00:00:00Z"}`, uint8(0))
	f.Add("app.bsky.actor.profile", "self", `{"avatar":{"$type":"blob","ref":{"$link":"bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},"mimeType":"image/png","size":3}}`, uint8(1))
	f.Add("com.example.thing", "k", `{"$type":"com.example.thing","n":[1,{"$bytes":"aGk"}]}`, uint8(2))
	f.Add("app.bsky.feed.like", "3kaaaaaaaaaaa", `{"subject":{"uri":"at://did:plc:x/a.b.c/d","cid":"x"}}`, uint8(1))
	f.Fuzz(func(t *testing.T, collection, rkey, js string, mode uint8) {
		rec, err := data.ParseJSON([]byte(js))
		if err != nil {
			return
		}
		var validate *bool
		switch mode % 3 {
		case 1:
			v := true
			validate = &v
		case 2:
			v := false
			validate = &v
		}
		w, err := s.prepareRecord(repo.ActionCreate, collection, rkey, rec, validate, "record")
		if err != nil {
			var xe *xrpc.Error
			if !errors.As(err, &xe) || xe.Status != 400 {
				t.Fatalf("prepareRecord(%q, %q, %s): %v, want a 400", collection, rkey, js, err)
			}
			return
		}
		if err := repo.ValidateRecord(w.value); err != nil {
			t.Fatalf("prepared record %x is not one the repository takes: %v", w.value, err)
		}
		if w.cid != data.CIDForCBOR(w.value) {
			t.Fatal("prepared CID does not match the record")
		}
		back, err := data.UnmarshalCBOR(w.value)
		if err != nil || back["$type"] != collection {
			t.Fatalf("prepared record has $type %v (%v), want %s", back["$type"], err, collection)
		}
	})
}
