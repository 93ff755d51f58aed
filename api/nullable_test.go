package api_test

import (
	"testing"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// A #commit event keeps the keys the lexicon requires even when they hold
// nothing: since is null on a repository's first commit, an op's cid is
// null on a delete, and blobs is an empty array. Readers that validate
// messages (the reference ones do) refuse the event without them.
func TestRequiredKeysWrittenWhenEmpty(t *testing.T) {
	c := data.CIDForCBOR([]byte{0xa0})
	ev := &atproto.SyncSubscribeRepos_Commit{
		Seq:    1,
		Repo:   "did:plc:wlknfrhs3tst4bcd5efg6hij",
		Commit: c,
		Rev:    "3l3qo2vuowo2b",
		Blocks: data.Bytes{},
		Ops:    []*atproto.SyncSubscribeRepos_RepoOp{{Action: "delete", Path: "app.bsky.feed.post/3l3qo2vuowo2b", Prev: &c}},
		Time:   "2026-11-25T14:03:11.482Z",
	}
	b, err := data.MarshalCBOR(ev)
	if err != nil {
		t.Fatal(err)
	}
	m, err := data.UnmarshalCBOR(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"since", "blobs", "ops"} {
		if _, ok := m[key]; !ok {
			t.Errorf("key %q missing from the encoded event", key)
		}
	}
	if m["since"] != nil {
		t.Errorf("since = %v, want null", m["since"])
	}
	if blobs, ok := m["blobs"].([]any); !ok || len(blobs) != 0 {
		t.Errorf("blobs = %#v, want an empty array", m["blobs"])
	}
	op := m["ops"].([]any)[0].(map[string]any)
	if v, ok := op["cid"]; !ok || v != nil {
		t.Errorf("op cid = %v (present %v), want null", v, ok)
	}

	cat, err := api.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.ValidateMessage(atproto.SyncSubscribeReposNSID, "#commit", m); err != nil {
		t.Errorf("the event does not validate: %v", err)
	}

	var back atproto.SyncSubscribeRepos_Commit
	if err := data.UnmarshalCBORInto(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Since != nil || back.Ops[0].Cid != nil || len(back.Extra) != 0 || len(back.Ops[0].Extra) != 0 {
		t.Errorf("decoded nulls went astray: since %v, cid %v, extra %v / %v", back.Since, back.Ops[0].Cid, back.Extra, back.Ops[0].Extra)
	}
	again, err := data.MarshalCBOR(&back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(b) {
		t.Errorf("re-encoding changed the bytes")
	}
}
