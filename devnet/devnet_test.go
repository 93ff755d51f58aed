package devnet

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

// freePortBase finds len(services) consecutive free ports on 127.0.0.1:
// it asks the kernel for a free port and probes the ones after it.
// Another process may still take one before the devnet binds it.
func freePortBase(t *testing.T) int {
	t.Helper()
	n := len(services)
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		held := []net.Listener{l}
		ok := base+n-1 <= 65535
		for i := 1; ok && i < n; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("found no run of free consecutive ports on 127.0.0.1")
	return 0
}

func testConfig(t *testing.T, dir string, base int, seed bool) Config {
	return Config{
		DataDir:  dir,
		PortBase: base,
		Seed:     seed,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func startDevnet(t *testing.T, cfg Config) *Devnet {
	t.Helper()
	d, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func client(host string) *xrpc.Client {
	return &xrpc.Client{Host: host, HTTPClient: loopbackClient(30 * time.Second)}
}

func login(t *testing.T, pdsURL string, a Account) *xrpc.Client {
	t.Helper()
	out, err := atproto.ServerCreateSession(context.Background(), client(pdsURL), &atproto.ServerCreateSession_Input{
		Identifier: string(a.Handle),
		Password:   a.Password,
	})
	if err != nil {
		t.Fatalf("createSession as %s: %v", a.Handle, err)
	}
	if out.Did != string(a.DID) {
		t.Fatalf("createSession as %s: DID %s, want %s", a.Handle, out.Did, a.DID)
	}
	c := client(pdsURL)
	c.Auth = xrpc.NewSessionAuth(out.AccessJwt, out.RefreshJwt)
	return c
}

func getRecord(t *testing.T, pdsURL string, uri syntax.ATURI) map[string]any {
	t.Helper()
	out, err := atproto.RepoGetRecord(context.Background(), client(pdsURL), &atproto.RepoGetRecord_Params{
		Repo:       uri.Authority().String(),
		Collection: uri.Collection().String(),
		Rkey:       uri.RecordKey().String(),
	})
	if err != nil {
		t.Fatalf("getRecord %s: %v", uri, err)
	}
	v, ok := out.Value.(map[string]any)
	if !ok {
		t.Fatalf("getRecord %s: value %T", uri, out.Value)
	}
	return v
}

func TestDevnetSeedPostRestart(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	cfg := testConfig(t, dir, base, true)
	d := startDevnet(t, cfg)

	pdsURL := "http://localhost:" + strconv.Itoa(base+1)
	plcURL := "http://localhost:" + strconv.Itoa(base)
	if d.URL("pds") != pdsURL || d.URL("plc") != plcURL {
		t.Fatalf("URLs %v, want plc %s, pds %s", d.Services(), plcURL, pdsURL)
	}

	// The manifest has exactly the documented shape.
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var shape struct {
		Services map[string]string   `json:"services"`
		Accounts []map[string]string `json:"accounts"`
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	if len(top) != 2 || top["services"] == nil || top["accounts"] == nil {
		t.Fatalf("devnet.json has keys %v, want services and accounts:\n%s", keys(top), raw)
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	relayURL := "http://localhost:" + strconv.Itoa(base+2)
	if want := map[string]string{"plc": plcURL, "pds": pdsURL, "relay": relayURL}; !reflect.DeepEqual(shape.Services, want) {
		t.Fatalf("services %v, want %v", shape.Services, want)
	}
	var handles []string
	for _, a := range shape.Accounts {
		if got := keys(a); !reflect.DeepEqual(got, []string{"did", "handle", "password"}) {
			t.Fatalf("account has keys %v", got)
		}
		handles = append(handles, a["handle"])
	}
	if !reflect.DeepEqual(handles, []string{"alice.test", "bob.test", "carol.test"}) {
		t.Fatalf("accounts %v", handles)
	}
	m, err := ReadManifest(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Accounts, d.Accounts()) {
		t.Fatalf("manifest accounts %v, devnet says %v", m.Accounts, d.Accounts())
	}
	alice, bob := m.Accounts[0], m.Accounts[1]

	// The identities were created in the PLC directory over HTTP and
	// name the PDS.
	doc := getJSON(t, plcURL+"/"+string(alice.DID))
	if !strings.Contains(string(doc), pdsURL) || !strings.Contains(string(doc), "at://alice.test") {
		t.Fatalf("alice's DID document does not name the PDS and the handle:\n%s", doc)
	}

	// The seeded records are there: the profile and a follow of bob.
	prof := getRecord(t, pdsURL, syntax.ATURI("at://"+string(alice.DID)+"/app.bsky.actor.profile/self"))
	if prof["displayName"] != "Alice" {
		t.Fatalf("alice's profile %v", prof)
	}
	follows, err := atproto.RepoListRecords(context.Background(), client(pdsURL), &atproto.RepoListRecords_Params{
		Repo: string(alice.DID), Collection: "app.bsky.graph.follow",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(follows.Records) != 1 || follows.Records[0].Value.(map[string]any)["subject"] != string(bob.DID) {
		t.Fatalf("alice's follows: %+v", follows.Records)
	}

	// Alice logs in with the manifest's password and posts.
	c := login(t, pdsURL, alice)
	const text = "a post written by the devnet test"
	created, err := atproto.RepoCreateRecord(context.Background(), c, &atproto.RepoCreateRecord_Input{
		Repo:       string(alice.DID),
		Collection: "app.bsky.feed.post",
		Record: map[string]any{
			"$type":     "app.bsky.feed.post",
			"text":      text,
			"createdAt": now(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	uri := syntax.ATURI(created.Uri)
	if got := getRecord(t, pdsURL, uri); got["text"] != text {
		t.Fatalf("post read back: %v", got)
	}

	// Stop, and the ports are free again.
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i := range services {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
		if err != nil {
			t.Fatalf("port %d still held after Close: %v", base+i, err)
		}
		l.Close()
	}

	// Restart on the same data: same accounts (never re-created), same
	// passwords, the post is still there.
	d2 := startDevnet(t, cfg)
	if !reflect.DeepEqual(d2.Accounts(), m.Accounts) {
		t.Fatalf("after the restart the accounts are %v, want %v", d2.Accounts(), m.Accounts)
	}
	m2, err := ReadManifest(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m2, m) {
		t.Fatalf("the restart rewrote the manifest as %+v, want %+v", m2, m)
	}
	if got := getRecord(t, pdsURL, uri); got["text"] != text {
		t.Fatalf("post after the restart: %v", got)
	}
	login(t, pdsURL, alice)
	if d2.AdminPassword() != d.AdminPassword() || d.AdminPassword() == "" {
		t.Fatalf("admin password changed across restarts or is empty")
	}
	if err := d2.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestDevnetUnseeded(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	d := startDevnet(t, testConfig(t, dir, base, false))
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	if string(top["accounts"]) != "[]" {
		t.Fatalf("accounts are %s, want []", top["accounts"])
	}
	if len(d.Accounts()) != 0 {
		t.Fatalf("accounts %v", d.Accounts())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Another port base on the same data is refused: the DID documents
	// and the PDS's did:web name the old ports.
	other := freePortBase(t)
	if other == base {
		t.Skip("the kernel handed out the same port again")
	}
	_, err = Start(context.Background(), testConfig(t, dir, other, false))
	if err == nil || !strings.Contains(err.Error(), "--port-base "+strconv.Itoa(base)) {
		t.Fatalf("restart on other ports: error %v", err)
	}
}

func TestDevnetInterruptedSeed(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	cfg := testConfig(t, dir, base, true)
	d := startDevnet(t, cfg)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// As if the first run had stopped after creating the accounts but
	// before writing the manifest: the accounts exist, their passwords
	// are lost, and a new seed must say so rather than fail obscurely.
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "manifest does not list it") {
		t.Fatalf("error %v, want one explaining the interrupted seed", err)
	}
	// The failed start released its ports: a start without seeding works.
	cfg.Seed = false
	d = startDevnet(t, cfg)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDevnetStopsWhenContextEnds(t *testing.T) {
	base := freePortBase(t)
	ctx, cancel := context.WithCancel(context.Background())
	d, err := Start(ctx, testConfig(t, t.TempDir(), base, false))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := healthy(d.URL("pds") + "/xrpc/_health"); err != nil {
		t.Fatalf("pds not healthy after Start: %v", err)
	}
	cancel()
	select {
	case <-d.Done():
	case <-time.After(time.Minute):
		t.Fatal("the devnet did not stop within a minute of its context ending")
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("stopped with %v", err)
	}
}

func TestDevnetPortInUse(t *testing.T) {
	base := freePortBase(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+1)))
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	defer l.Close()
	dir := t.TempDir()
	_, err = Start(context.Background(), testConfig(t, dir, base, false))
	if err == nil || !strings.Contains(err.Error(), "pds") {
		t.Fatalf("error %v, want one naming the pds", err)
	}
	// The PLC port bound before the failure was released.
	l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base)))
	if err != nil {
		t.Fatalf("the plc port is still held: %v", err)
	}
	l2.Close()
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != DefaultDataDir || c.PortBase != DefaultPortBase || c.Logger == nil || c.StartTimeout != DefaultStartTimeout {
		t.Fatalf("defaults %+v", c)
	}
	for _, base := range []int{-1, 65535, 70000} {
		if _, err := (Config{PortBase: base}).withDefaults(); err == nil {
			t.Errorf("port base %d accepted", base)
		}
	}
}

func healthy(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return getOK(ctx, loopbackClient(2*time.Second), u)
}

func getJSON(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := loopbackClient(10 * time.Second).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
