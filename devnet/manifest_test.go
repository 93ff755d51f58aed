package devnet

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseManifest(t *testing.T) {
	good := `{"services": {"plc": "http://localhost:2580", "pds": "http://localhost:2581"},
		"accounts": [{"handle": "alice.test", "did": "did:plc:abcdefghijklmnopqrstuvwx", "password": "p"}]}`
	m, err := ParseManifest([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := &Manifest{
		Services: map[string]string{"plc": "http://localhost:2580", "pds": "http://localhost:2581"},
		Accounts: []Account{{Handle: "alice.test", DID: "did:plc:abcdefghijklmnopqrstuvwx", Password: "p"}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v, want %+v", m, want)
	}

	empty, err := ParseManifest([]byte(`{"services": {}, "accounts": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Accounts == nil || len(empty.Accounts) != 0 {
		t.Fatalf("null accounts read as %#v, want an empty list", empty.Accounts)
	}

	bad := []struct{ name, in, want string }{
		{"not JSON", `{`, "manifest"},
		{"trailing data", `{} {}`, "after the JSON object"},
		{"wrong type", `{"accounts": {}}`, "manifest"},
		{"bad URL", `{"services": {"pds": "localhost:2581"}}`, `"pds"`},
		{"bad handle", `{"accounts": [{"handle": "-alice", "did": "did:plc:abc", "password": "p"}]}`, "account 0"},
		{"bad DID", `{"accounts": [{"handle": "alice.test", "did": "plc:abc", "password": "p"}]}`, "alice.test"},
		{"no password", `{"accounts": [{"handle": "alice.test", "did": "did:plc:abc"}]}`, "no password"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ManifestFile)
	if _, err := ReadManifest(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing manifest: error %v, want fs.ErrNotExist", err)
	}
	m := &Manifest{Services: map[string]string{"pds": "http://localhost:1"}, Accounts: []Account{}}
	if err := writeManifest(path, m); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An empty account list is written as [], never null.
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	if l, ok := generic["accounts"].([]any); !ok || len(l) != 0 {
		t.Fatalf("accounts written as %#v, want []", generic["accounts"])
	}
	got, err := ReadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("read back %+v, want %+v", got, m)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("manifest mode %v, want 0600 (it holds passwords)", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("the data dir holds %d files, want only the manifest (no temporary files left)", len(entries))
	}

	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(`{"services": {}, "x": "`+strings.Repeat("a", maxManifestSize)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("oversized manifest: error %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"services": {"plc": "http://localhost:2580"}, "accounts": [{"handle": "alice.test", "did": "did:plc:abc", "password": "p"}]}`))
	f.Add([]byte(`{"services": {}, "accounts": []}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"accounts": [{}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if m.Services == nil || m.Accounts == nil {
			t.Fatal("accepted manifest with nil fields")
		}
		// Whatever is accepted writes back and reads again the same.
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("re-reading %s: %v", out, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %+v to %+v", m, m2)
		}
	})
}
