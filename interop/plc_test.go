package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/identity"
	"github.com/welkin-atproto/welkin/atproto/plc"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// libStep is one operation signed by @did-plc/lib, with what the library
// derives after accepting it.
type libStep struct {
	Op        json.RawMessage `json:"op"`
	CID       string          `json:"cid"`
	Nullifies []string        `json:"nullifies"`
	// Data is the DID's state after this step (null once tombstoned).
	Data json.RawMessage `json:"data"`
	// Document is the library's own DID document rendering (formatDidDoc).
	Document json.RawMessage `json:"document"`
}

// libScenario is one DID's history as "node plc.js ops" prints it.
type libScenario struct {
	DID   string          `json:"did"`
	Steps []libStep       `json:"steps"`
	Log   json.RawMessage `json:"log"` // the active chain after the last step
}

func (s libScenario) final() libStep { return s.Steps[len(s.Steps)-1] }

// libOps has the reference library sign its operation histories.
func libOps(t *testing.T) map[string]libScenario {
	t.Helper()
	out, err := runNode(t, nil, "plc.js", "ops")
	if err != nil {
		t.Fatal(err)
	}
	var scenarios map[string]libScenario
	if err := json.Unmarshal(out, &scenarios); err != nil {
		t.Fatalf("reading the library's ops: %v\n%s", err, out)
	}
	for _, name := range []string{"updates", "recovery", "tombstone"} {
		if len(scenarios[name].Steps) == 0 {
			t.Fatalf("the library printed no %q scenario", name)
		}
	}
	return scenarios
}

// sortedNames gives a stable subtest order.
func sortedNames(m map[string]libScenario) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// jsonEqual compares two JSON texts as values: member order and spacing
// do not matter, array order does.
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

// sameIdentity checks two DID documents describe the same atproto
// identity: DID, handle, signing key and PDS. The library's 0.0.4
// rendering uses the legacy EcdsaSecp256k1VerificationKey2019 form, the
// current directory the Multikey form, so the documents are compared
// through what atproto reads from them rather than byte for byte.
func sameIdentity(t *testing.T, welkinDoc, libDoc []byte) {
	t.Helper()
	w, err := identity.ParseIdentity(welkinDoc)
	if err != nil {
		t.Fatalf("Welkin's DID document does not parse: %v\n%s", err, welkinDoc)
	}
	l, err := identity.ParseIdentity(libDoc)
	if err != nil {
		t.Fatalf("the library's DID document does not parse: %v\n%s", err, libDoc)
	}
	if w.DID != l.DID || w.DeclaredHandle() != l.DeclaredHandle() || !slices.Equal(w.AlsoKnownAs(), l.AlsoKnownAs()) {
		t.Errorf("documents differ: Welkin %s %v, library %s %v", w.DID, w.AlsoKnownAs(), l.DID, l.AlsoKnownAs())
	}
	wk, werr := w.SigningKey()
	lk, lerr := l.SigningKey()
	if werr != nil || lerr != nil || !wk.Equal(lk) {
		t.Errorf("signing keys differ: Welkin %v (%v), library %v (%v)", wk, werr, lk, lerr)
	}
	wp, werr := w.PDSEndpoint()
	lp, lerr := l.PDSEndpoint()
	if werr != nil || lerr != nil || wp != lp {
		t.Errorf("PDS endpoints differ: Welkin %q (%v), library %q (%v)", wp, werr, lp, lerr)
	}
}

// TestReferenceOpsWithWelkinLibrary reads the library's operations with
// Welkin's atproto/plc: same DIDs, same CIDs, same states, same
// nullifications. It needs no directory.
func TestReferenceOpsWithWelkinLibrary(t *testing.T) {
	requireNode(t)
	scenarios := libOps(t)
	for _, name := range sortedNames(scenarios) {
		sc := scenarios[name]
		t.Run(name, func(t *testing.T) {
			did, err := syntax.ParseDID(sc.DID)
			if err != nil {
				t.Fatal(err)
			}
			var entries []plc.AuditEntry
			t0 := time.Now().Add(-time.Hour)
			for i, st := range sc.Steps {
				op, err := plc.ParseOperationJSON(st.Op)
				if err != nil {
					t.Fatalf("step %d: Welkin cannot parse the library's op: %v\n%s", i, err, st.Op)
				}
				if i == 0 {
					got, err := plc.DIDForGenesis(op)
					if err != nil || got != did {
						t.Fatalf("genesis derives %s (%v), the library says %s", got, err, did)
					}
				}
				cid, err := op.CID()
				if err != nil || cid.String() != st.CID {
					t.Fatalf("step %d: CID %s (%v), the library says %s", i, cid, err, st.CID)
				}
				if err := plc.CheckNewOpLimits(op); err != nil {
					t.Errorf("step %d: over Welkin's limits for new ops: %v", i, err)
				}
				now := t0.Add(time.Duration(i) * time.Second)
				res, err := plc.AssimilateOp(did, entries, op, now)
				if err != nil {
					t.Fatalf("step %d: Welkin refuses the library's op: %v", i, err)
				}
				var nullified []string
				for _, c := range res.Nullified {
					nullified = append(nullified, c.String())
				}
				if !slices.Equal(nullified, st.Nullifies) {
					t.Errorf("step %d: Welkin nullifies %v, the library %v", i, nullified, st.Nullifies)
				}
				gotData, err := json.Marshal(res.Data)
				if err != nil {
					t.Fatal(err)
				}
				if !jsonEqual(t, gotData, st.Data) {
					t.Errorf("step %d: state differs\nWelkin:  %s\nlibrary: %s", i, gotData, st.Data)
				}
				for j := range entries {
					if slices.Contains(st.Nullifies, entries[j].CID) {
						entries[j].Nullified = true
					}
				}
				entries = append(entries, plc.AuditEntry{DID: did, Operation: op, CID: st.CID, CreatedAt: now})
			}
			if err := plc.ValidateAuditLog(did, entries); err != nil {
				t.Errorf("Welkin rejects the audit log it built: %v", err)
			}

			var raw []json.RawMessage
			if err := json.Unmarshal(sc.Log, &raw); err != nil {
				t.Fatal(err)
			}
			var ops []plc.Op
			for _, r := range raw {
				op, err := plc.ParseOperationJSON(r)
				if err != nil {
					t.Fatal(err)
				}
				ops = append(ops, op)
			}
			data, err := plc.ValidateOperationLog(did, ops)
			if err != nil {
				t.Fatalf("Welkin rejects the library's op log: %v", err)
			}
			gotData, _ := json.Marshal(data)
			if !jsonEqual(t, gotData, sc.final().Data) {
				t.Errorf("final state differs\nWelkin:  %s\nlibrary: %s", gotData, sc.final().Data)
			}
			if data != nil {
				welkinDoc, err := json.Marshal(data.Document())
				if err != nil {
					t.Fatal(err)
				}
				sameIdentity(t, welkinDoc, sc.final().Document)
			}
		})
	}
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// getOK fetches url and fails the test unless it answers 200.
func getOK(t *testing.T, url string) []byte {
	t.Helper()
	status, body := get(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, status, body)
	}
	return body
}

// TestPLCDirectoryWithReferenceOps submits the library's operations to
// "welkin plc" and checks what Welkin serves against what the library
// computes, then has the library validate Welkin's logs.
func TestPLCDirectoryWithReferenceOps(t *testing.T) {
	requireNode(t)
	scenarios := libOps(t)
	base := startPLC(t)

	for _, name := range sortedNames(scenarios) {
		sc := scenarios[name]
		t.Run(name, func(t *testing.T) {
			didURL := base + "/" + sc.DID
			var nullified []string
			for i, st := range sc.Steps {
				resp, err := http.Post(didURL, "application/json", bytes.NewReader(st.Op))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
					t.Fatalf("step %d: POST %s: status %d: %s\nop: %s", i, didURL, resp.StatusCode, body, st.Op)
				}
				nullified = append(nullified, st.Nullifies...)

				// The last operation is served back as the library signed it.
				if last := getOK(t, didURL+"/log/last"); !jsonEqual(t, last, st.Op) {
					t.Errorf("step %d: /log/last\nWelkin:  %s\nlibrary: %s", i, last, st.Op)
				}
				if string(st.Data) == "null" {
					// Tombstoned: the reference directory answers 410 Gone.
					status, body := get(t, didURL)
					if status != http.StatusGone && status != http.StatusNotFound {
						t.Errorf("step %d: GET tombstoned DID: status %d, want 410 (or 404): %s", i, status, body)
					}
					continue
				}
				if data := getOK(t, didURL+"/data"); !jsonEqual(t, data, st.Data) {
					t.Errorf("step %d: /data\nWelkin:  %s\nlibrary: %s", i, data, st.Data)
				}
				sameIdentity(t, getOK(t, didURL), st.Document)
			}

			// The plain log is the active chain, op for op.
			log := getOK(t, didURL+"/log")
			if !jsonEqual(t, log, sc.Log) {
				t.Errorf("/log\nWelkin:  %s\nlibrary: %s", log, sc.Log)
			}
			out, err := runNode(t, log, "plc.js", "validate-log", sc.DID)
			if err != nil {
				t.Fatalf("the library rejects Welkin's /log: %v", err)
			}
			checkValidated(t, "/log", out, sc.final())

			// The audit log has every op, nullified ones marked.
			audit := getOK(t, didURL+"/log/audit")
			out, err = runNode(t, audit, "plc.js", "validate-audit", sc.DID)
			if err != nil {
				t.Fatalf("the library rejects Welkin's /log/audit: %v\naudit log: %s", err, audit)
			}
			checkValidated(t, "/log/audit", out, sc.final())
			var res struct {
				Nullified []string `json:"nullified"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Nullified, nullified) {
				t.Errorf("audit log marks %v nullified, the library nullified %v", res.Nullified, nullified)
			}
		})
	}

	// Every accepted operation appears once in /export, one JSON object a
	// line, in the audit entry form.
	body := getOK(t, base+"/export")
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e plc.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("/export line %q: %v", sc.Text(), err)
		}
		seen[e.CID] = true
	}
	for _, name := range sortedNames(scenarios) {
		for i, st := range scenarios[name].Steps {
			if !seen[st.CID] {
				t.Errorf("/export lacks %s step %d (%s)", name, i, st.CID)
			}
		}
	}
}

// checkValidated compares what the library derived from one of Welkin's
// logs with the state it computed when signing.
func checkValidated(t *testing.T, what string, out []byte, want libStep) {
	t.Helper()
	var res struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("validator output %q: %v", out, err)
	}
	if !jsonEqual(t, res.Data, want.Data) {
		t.Errorf("the library reads Welkin's %s as\n%s\nwant\n%s", what, res.Data, want.Data)
	}
}

// TestPLCDirectoryWithReferenceClient has the library's own HTTP client
// (the one the reference PDS uses) create and update a DID on "welkin plc"
// and read it back through every endpoint it knows.
func TestPLCDirectoryWithReferenceClient(t *testing.T) {
	requireNode(t)
	base := startPLC(t)
	out, err := runNode(t, nil, "plc.js", "client", base)
	if err != nil {
		t.Fatalf("the reference client fails against Welkin: %v", err)
	}
	var res struct {
		DID      string            `json:"did"`
		Health   json.RawMessage   `json:"health"`
		Expected json.RawMessage   `json:"expected"`
		Document json.RawMessage   `json:"document"`
		Data     json.RawMessage   `json:"data"`
		Log      []json.RawMessage `json:"log"`
		LastOp   json.RawMessage   `json:"lastOp"`
		Audit    []plc.AuditEntry  `json:"audit"`
		Export   []plc.AuditEntry  `json:"export"`
		NotFound *struct {
			Status int `json:"status"`
		} `json:"notFound"`
		Refused *struct {
			Status int             `json:"status"`
			Data   json.RawMessage `json:"data"`
		} `json:"refused"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	if !jsonEqual(t, res.Data, res.Expected) {
		t.Errorf("/data\nWelkin:  %s\nlibrary: %s", res.Data, res.Expected)
	}
	var data struct {
		AlsoKnownAs []string `json:"alsoKnownAs"`
	}
	if err := json.Unmarshal(res.Data, &data); err != nil || !slices.Equal(data.AlsoKnownAs, []string{"at://dave2.example.com"}) {
		t.Errorf("the handle update did not land: %s (%v)", res.Data, err)
	}
	doc, err := identity.ParseIdentity(res.Document)
	if err != nil || doc.DID.String() != res.DID || doc.DeclaredHandle() != "dave2.example.com" {
		t.Errorf("document %s (%v) is not dave2.example.com's", res.Document, err)
	} else if pds, err := doc.PDSEndpoint(); err != nil || pds != "https://pds3.example.com" {
		t.Errorf("document PDS %q (%v), want https://pds3.example.com", pds, err)
	}
	if len(res.Log) != 3 || !jsonEqual(t, res.LastOp, res.Log[len(res.Log)-1]) {
		t.Errorf("log has %d ops (want 3) or /log/last %s is not its last", len(res.Log), res.LastOp)
	}
	if len(res.Audit) != 3 {
		t.Errorf("audit log has %d entries, want 3", len(res.Audit))
	}
	did, err := syntax.ParseDID(res.DID)
	if err != nil {
		t.Fatal(err)
	}
	if err := plc.ValidateAuditLog(did, res.Audit); err != nil {
		t.Errorf("Welkin rejects its own audit log: %v", err)
	}
	n := 0
	for _, e := range res.Export {
		if e.DID == did {
			n++
		}
	}
	if n != 3 {
		t.Errorf("the reference client reads %d of the DID's 3 ops from /export", n)
	}
	if res.NotFound == nil || res.NotFound.Status != http.StatusNotFound {
		t.Errorf("unknown DID: %+v, want status 404", res.NotFound)
	}
	if res.Refused == nil || res.Refused.Status != http.StatusBadRequest {
		t.Errorf("op signed by a stranger's key: %+v, want status 400", res.Refused)
	} else if !strings.Contains(strings.ToLower(string(res.Refused.Data)), "signature") {
		t.Errorf("refusal %s does not mention the signature", res.Refused.Data)
	}
	if len(res.Health) == 0 || res.Health[0] != '{' {
		t.Errorf("/_health gave %s to the reference client, want a JSON object", res.Health)
	}
}
