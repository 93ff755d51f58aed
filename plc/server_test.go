package plc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	atplc "github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func TestLifecycle(t *testing.T) {
	d := newTestDir(t, Config{})
	recovery, signer := key(t, 1), key(t, 2)
	rot := didKeys(recovery, signer)
	g := newOp(t, signer, rot, nil, "alice.test")
	did := didOf(t, g)

	if code, _, _ := d.get("/" + string(did)); code != http.StatusNotFound {
		t.Fatalf("unknown DID: %d", code)
	}
	// A genesis posted under another DID is refused.
	other := syntax.DID("did:plc:" + strings.Repeat("a", 24))
	if code, msg := d.submit(other, g); code != http.StatusBadRequest || msg == "" {
		t.Fatalf("genesis under wrong DID: %d %q", code, msg)
	}
	d.mustSubmit(did, g)
	d.clock.Advance(time.Minute)

	code, ctype, body := d.get("/" + string(did))
	if code != http.StatusOK || !strings.HasPrefix(ctype, "application/did+ld+json") {
		t.Fatalf("document: %d %s", code, ctype)
	}
	var doc atplc.Document
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.ID != did || doc.AlsoKnownAs[0] != "at://alice.test" || doc.VerificationMethod[0].Type != "Multikey" {
		t.Fatalf("document: %s", body)
	}

	// Rotate the handle.
	u := newOp(t, signer, rot, cidOf(t, g), "alice2.test")
	d.mustSubmit(did, u)
	d.clock.Advance(time.Minute)

	data, err := d.client().Data(context.Background(), did)
	if err != nil {
		t.Fatal(err)
	}
	if data.AlsoKnownAs[0] != "at://alice2.test" || data.RotationKeys[0] != rot[0] {
		t.Fatalf("data: %+v", data)
	}
	ops, err := d.client().Log(context.Background(), did)
	if err != nil || len(ops) != 2 {
		t.Fatalf("log: %d ops, %v", len(ops), err)
	}
	if _, err := atplc.ValidateOperationLog(did, ops); err != nil {
		t.Fatalf("log does not validate: %v", err)
	}
	audit, err := d.client().AuditLog(context.Background(), did)
	if err != nil || len(audit) != 2 {
		t.Fatalf("audit: %d, %v", len(audit), err)
	}
	if err := atplc.ValidateAuditLog(did, audit); err != nil {
		t.Fatal(err)
	}
	last, err := d.client().LastOp(context.Background(), did)
	if err != nil {
		t.Fatal(err)
	}
	if *cidOf(t, last) != *cidOf(t, u) {
		t.Fatal("last op is not the update")
	}

	// Refusals: each a 400 with a message, none changing the log.
	wrongPrev := cidOf(t, newOp(t, signer, rot, nil, "nowhere.test"))
	highS := newOp(t, signer, rot, cidOf(t, u), "highs.test")
	highS.Sig = flipS(t, highS.Sig)
	badSig := newOp(t, key(t, 9), rot, cidOf(t, u), "mallory.test")
	badSig.VerificationMethods = map[string]string{"atproto": signer.Public().DIDKey()}
	sixKeys := newOp(t, signer, didKeys(key(t, 11), key(t, 12), key(t, 13), key(t, 14), key(t, 15), key(t, 16)), cidOf(t, u), "six.test")
	big := newOp(t, signer, rot, cidOf(t, u), "big.test")
	for i := range 9 {
		big.Services[fmt.Sprintf("svc%d", i)] = atplc.Service{Type: strings.Repeat("T", 250), Endpoint: "https://" + strings.Repeat("e", 500)}
		big.AlsoKnownAs = append(big.AlsoKnownAs, fmt.Sprintf("at://%d%s", i, strings.Repeat("h", 240)))
	}
	if err := big.Sign(signer); err != nil {
		t.Fatal(err)
	}
	bigJSON, _ := big.MarshalJSON()
	refusals := []struct {
		name string
		body []byte
		want string
	}{
		{"wrong prev", mustJSON(t, newOp(t, signer, rot, wrongPrev, "x.test")), "prev"},
		{"bad signature", mustJSON(t, badSig), "signature"},
		{"high-S", mustJSON(t, highS), "high-S"},
		{"too many rotation keys", mustJSON(t, sixKeys), "rotation"},
		{"oversize op", bigJSON, ""},
		{"malformed JSON", []byte(`{"type": "plc_operation", `), ""},
		{"not an object", []byte(`[1,2,3]`), ""},
		{"empty body", nil, ""},
		{"unknown type", []byte(`{"type":"plc_whatever","sig":"x"}`), ""},
		{"legacy create", []byte(`{"type":"create","signingKey":"did:key:zQ3sh","recoveryKey":"did:key:zQ3sh","handle":"a.test","service":"https://a","prev":null,"sig":"AAAA"}`), ""},
		{"body too large", []byte(`{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`), "too large"},
	}
	if len(bigJSON) > MaxBodyBytes {
		t.Fatal("oversize op test body exceeds the body limit")
	}
	for _, r := range refusals {
		code, msg := d.post(did, r.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s)", r.name, code, msg)
			continue
		}
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(r.want)) {
			t.Errorf("%s: message %q does not mention %q", r.name, msg, r.want)
		}
	}
	if audit, _ := d.client().AuditLog(context.Background(), did); len(audit) != 2 {
		t.Fatalf("refused operations changed the log: %d entries", len(audit))
	}

	// Bad DIDs in the path are refused before the store is consulted.
	for _, p := range []string{"/did:web:example.com", "/did:plc:short", "/did:plc:" + strings.Repeat("A", 24), "/notadid", "/did:plc:" + strings.Repeat("1", 24) + "/log"} {
		if code, _, body := d.get(p); code != http.StatusBadRequest || !strings.Contains(string(body), `"message"`) {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}

	// Tombstone: the document and data are gone (410), the log stays.
	ts := &atplc.Tombstone{Prev: *cidOf(t, u)}
	if err := ts.Sign(recovery); err != nil {
		t.Fatal(err)
	}
	d.mustSubmit(did, ts)
	d.clock.Advance(time.Minute)
	for _, p := range []string{"", "/data"} {
		code, _, body := d.get("/" + string(did) + p)
		var e errorBody
		json.Unmarshal(body, &e)
		if code != http.StatusGone || e.Message != "DID not available: "+string(did) {
			t.Fatalf("tombstoned %q: %d %s", p, code, body)
		}
	}
	if _, err := d.client().Resolve(context.Background(), did); err == nil {
		t.Fatal("resolving a tombstoned DID succeeded")
	}
	last, err = d.client().LastOp(context.Background(), did)
	if err != nil || last.Type() != atplc.TypeTombstone {
		t.Fatalf("last op after tombstone: %v %v", last, err)
	}
	after := newOp(t, signer, rot, cidOf(t, ts), "zombie.test")
	if code, msg := d.submit(did, after); code != http.StatusBadRequest {
		t.Fatalf("update after tombstone: %d %s", code, msg)
	}
	audit, err = d.client().AuditLog(context.Background(), did)
	if err != nil || len(audit) != 3 {
		t.Fatalf("audit after tombstone: %d %v", len(audit), err)
	}
	if err := atplc.ValidateAuditLog(did, audit); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, op atplc.Op) []byte {
	t.Helper()
	b, err := op.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipS replaces a k256 signature's s by n - s: mathematically still
// valid, but high-S.
func flipS(t *testing.T, sig string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(raw) != 64 {
		t.Fatalf("signature %q", sig)
	}
	n, _ := new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	s := new(big.Int).SetBytes(raw[32:])
	hi := new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))
	return base64.RawURLEncoding.EncodeToString(append(raw[:32:32], hi...))
}

func TestHealthAndCORS(t *testing.T) {
	d := newTestDir(t, Config{})
	code, ctype, body := d.get("/_health")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "application/json") || string(body) != `{"version":"test-version"}` {
		t.Fatalf("health: %d %s %s", code, ctype, body)
	}
	resp, err := d.ts.Client().Get(d.ts.URL + "/_health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("no CORS header")
	}
	req, _ := http.NewRequest(http.MethodOptions, d.ts.URL+"/did:plc:"+strings.Repeat("a", 24), nil)
	req.Header.Set("Origin", "https://example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err = d.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestRateLimit(t *testing.T) {
	d := newTestDir(t, Config{OpsPerHour: 3, OpsPerDay: 5, OpsPerWeek: -1})
	k := key(t, 3)
	rot := didKeys(k)
	prev := newOp(t, k, rot, nil, "r0.test")
	did := didOf(t, prev)
	d.mustSubmit(did, prev)
	for i := 1; i < 3; i++ {
		d.clock.Advance(time.Minute)
		op := newOp(t, k, rot, cidOf(t, prev), fmt.Sprintf("r%d.test", i))
		d.mustSubmit(did, op)
		prev = op
	}
	d.clock.Advance(time.Minute)
	op := newOp(t, k, rot, cidOf(t, prev), "r3.test")
	if code, msg := d.submit(did, op); code != http.StatusBadRequest || !strings.Contains(msg, "hour") {
		t.Fatalf("fourth op within the hour: %d %s", code, msg)
	}
	d.clock.Advance(time.Hour)
	d.mustSubmit(did, op)
	prev = op
	d.clock.Advance(2 * time.Hour)
	op = newOp(t, k, rot, cidOf(t, prev), "r4.test")
	d.mustSubmit(did, op)
	d.clock.Advance(2 * time.Hour)
	op2 := newOp(t, k, rot, cidOf(t, op), "r5.test")
	if code, msg := d.submit(did, op2); code != http.StatusBadRequest || !strings.Contains(msg, "day") {
		t.Fatalf("sixth op within the day: %d %s", code, msg)
	}
}

func TestRecovery(t *testing.T) {
	d := newTestDir(t, Config{OpsPerHour: 1})
	recovery, signer := key(t, 4), key(t, 5)
	rot := didKeys(recovery, signer)
	g := newOp(t, signer, rot, nil, "victim.test")
	did := didOf(t, g)
	d.mustSubmit(did, g)
	d.clock.Advance(2 * time.Hour)
	// The lesser key (say, stolen) changes the handle...
	hijack := newOp(t, signer, rot, cidOf(t, g), "hijacked.test")
	d.mustSubmit(did, hijack)
	d.clock.Advance(48 * time.Hour)
	// ...and the recovery key forks from the genesis within 72 hours,
	// rate limit notwithstanding.
	d.clock.Advance(-47 * time.Hour) // one hour after the hijack: rate limit applies to non-recovery ops
	fix := newOp(t, recovery, rot, cidOf(t, g), "victim.test")
	d.mustSubmit(did, fix)
	audit, err := d.client().AuditLog(context.Background(), did)
	if err != nil || len(audit) != 3 {
		t.Fatalf("audit: %d %v", len(audit), err)
	}
	if audit[0].Nullified || !audit[1].Nullified || audit[2].Nullified {
		t.Fatalf("nullified flags: %v %v %v", audit[0].Nullified, audit[1].Nullified, audit[2].Nullified)
	}
	if err := atplc.ValidateAuditLog(did, audit); err != nil {
		t.Fatal(err)
	}
	data, err := d.client().Data(context.Background(), did)
	if err != nil || data.AlsoKnownAs[0] != "at://victim.test" {
		t.Fatalf("data after recovery: %+v %v", data, err)
	}

	// Too late: more than 72 hours after the operation to nullify.
	g2 := newOp(t, signer, rot, nil, "late.test")
	did2 := didOf(t, g2)
	d.mustSubmit(did2, g2)
	d.clock.Advance(2 * time.Hour)
	h2 := newOp(t, signer, rot, cidOf(t, g2), "hijacked2.test")
	d.mustSubmit(did2, h2)
	d.clock.Advance(73 * time.Hour)
	if code, msg := d.submit(did2, newOp(t, recovery, rot, cidOf(t, g2), "late.test")); code != http.StatusBadRequest || !strings.Contains(msg, "72") {
		t.Fatalf("late recovery: %d %s", code, msg)
	}
}

func TestConcurrentSubmissions(t *testing.T) {
	d := newTestDir(t, Config{Now: time.Now})
	k := key(t, 6)
	rot := didKeys(k)
	g := newOp(t, k, rot, nil, "race.test")
	did := didOf(t, g)
	d.mustSubmit(did, g)

	const n = 16
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[int]int{}
	)
	ops := make([]*atplc.Operation, n)
	for i := range ops {
		ops[i] = newOp(t, k, rot, cidOf(t, g), fmt.Sprintf("racer%d.test", i))
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := d.submit(did, ops[i])
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusOK] != 1 || codes[http.StatusOK]+codes[http.StatusBadRequest]+codes[http.StatusConflict] != n {
		t.Fatalf("status counts: %v", codes)
	}
	audit, err := d.client().AuditLog(context.Background(), did)
	if err != nil || len(audit) != 2 {
		t.Fatalf("audit: %d %v", len(audit), err)
	}
	if err := atplc.ValidateAuditLog(did, audit); err != nil {
		t.Fatal(err)
	}
}

func TestExport(t *testing.T) {
	d := newTestDir(t, Config{})
	var dids []syntax.DID
	for i := range 5 {
		k := key(t, byte(20+i))
		g := newOp(t, k, didKeys(k), nil, "export.test")
		did := didOf(t, g)
		d.mustSubmit(did, g)
		d.clock.Advance(time.Second)
		dids = append(dids, did)
	}

	// Sequenced: after=0 starts at the beginning; seq is the cursor.
	var got []syntax.DID
	after := "0"
	for range 10 {
		code, ctype, body := d.get("/export?count=2&after=" + after)
		if code != http.StatusOK || ctype != "application/jsonlines" {
			t.Fatalf("export: %d %s", code, ctype)
		}
		ls := lines(body)
		if len(ls) == 0 {
			break
		}
		if len(ls) > 2 {
			t.Fatalf("page of %d lines", len(ls))
		}
		for _, l := range ls {
			var e struct {
				Type      string          `json:"type"`
				Seq       *int64          `json:"seq"`
				DID       syntax.DID      `json:"did"`
				Nullified *bool           `json:"nullified"`
				Operation json.RawMessage `json:"operation"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatal(err)
			}
			if e.Type != "sequenced_op" || e.Seq == nil || e.Nullified != nil {
				t.Fatalf("sequenced line: %s", l)
			}
			after = fmt.Sprint(*e.Seq)
			got = append(got, e.DID)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(dids) {
		t.Fatalf("sequenced export: %v, want %v", got, dids)
	}
	// The atproto/plc client reads the same pages.
	page, err := d.client().Export(context.Background(), "0", 3)
	if err != nil || len(page) != 3 || page[0].Seq != 1 || page[0].Type != "sequenced_op" {
		t.Fatalf("client export: %+v %v", page, err)
	}

	// Legacy: no cursor, then the last createdAt.
	got = got[:0]
	cursor := ""
	for range 10 {
		q := "/export?count=2"
		if cursor != "" {
			q += "&after=" + cursor
		}
		code, _, body := d.get(q)
		if code != http.StatusOK {
			t.Fatalf("legacy export: %d", code)
		}
		ls := lines(body)
		if len(ls) == 0 {
			break
		}
		for _, l := range ls {
			var e map[string]any
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatal(err)
			}
			if _, ok := e["type"]; ok {
				t.Fatalf("legacy line with type: %s", l)
			}
			if e["nullified"] != false {
				t.Fatalf("legacy line without nullified: %s", l)
			}
			cursor = e["createdAt"].(string)
			got = append(got, syntax.DID(e["did"].(string)))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(dids) {
		t.Fatalf("legacy export: %v, want %v", got, dids)
	}

	for _, q := range []string{"count=0", "count=-1", "count=abc", "after=yesterday", "after=99999999999999999999999"} {
		code, _, body := d.get("/export?" + q)
		if code != http.StatusBadRequest || !strings.Contains(string(body), "Invalid") {
			t.Errorf("export?%s: %d %s", q, code, body)
		}
	}
	// count is capped, not refused.
	if code, _, body := d.get("/export?after=0&count=5000"); code != http.StatusOK || len(lines(body)) != 5 {
		t.Fatalf("count above the cap: %d, %d lines", code, len(lines(body)))
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	d := newTestDir(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/_health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/_health"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}
