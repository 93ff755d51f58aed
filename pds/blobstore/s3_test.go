package blobstore

import (
	"bytes"
	"io"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/syntax"
)

const testBucket = "welkin-blobs"

// testClock is the fake S3 backend's clock: the real time unless set.
type testClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return time.Now()
	}
	return c.at
}

func (c *testClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.at = t
	c.mu.Unlock()
}

// fakeS3 is an in-process S3 service on a loopback port.
type fakeS3 struct {
	backend *s3mem.Backend
	clock   *testClock
	url     string
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	clock := &testClock{}
	backend := s3mem.New(s3mem.WithTimeSource(clock))
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server()) // binds 127.0.0.1 on a free port
	t.Cleanup(srv.Close)
	return &fakeS3{backend: backend, clock: clock, url: srv.URL}
}

func (f *fakeS3) config(prefix string) S3Config {
	return S3Config{
		Endpoint:  f.url,
		Region:    "us-east-1",
		Bucket:    testBucket,
		AccessKey: "welkin-test",
		SecretKey: "welkin-test-secret",
		PathStyle: true,
		Prefix:    prefix,
	}
}

func (f *fakeS3) store(t *testing.T, prefix string) *S3 {
	t.Helper()
	s, err := NewS3(t.Context(), f.config(prefix))
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}

// keys lists the bucket's object keys under prefix.
func (f *fakeS3) keys(t *testing.T, prefix string) []string {
	t.Helper()
	list, err := f.backend.ListBucket(testBucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: prefix != ""}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

func s3Harness(t *testing.T) *harness {
	f := newFakeS3(t)
	s := f.store(t, "pds")
	return &harness{
		store: s,
		temps: func(t *testing.T) []string {
			t.Helper()
			var keys []string
			for _, k := range f.keys(t, "pds/tmp/") {
				keys = append(keys, path.Base(k))
			}
			return keys
		},
		backdate: func(t *testing.T, did syntax.DID, key string, when time.Time) {
			t.Helper()
			// Write the object again with the clock turned back.
			name := s.tempObject(did, key)
			obj, err := f.backend.GetObject(testBucket, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(obj.Contents)
			obj.Contents.Close()
			if err != nil {
				t.Fatal(err)
			}
			f.clock.set(when)
			defer f.clock.set(time.Time{})
			if _, err := f.backend.PutObject(testBucket, name, map[string]string{}, bytes.NewReader(b), int64(len(b)), nil); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestS3(t *testing.T) {
	runSuite(t, s3Harness)
}

func TestS3Layout(t *testing.T) {
	f := newFakeS3(t)
	s := f.store(t, "pds/")
	tb := putTemp(t, s, didA, []byte("hello"))
	want := "pds/tmp/" + string(didA) + "/" + tb.Key
	if got := f.keys(t, ""); len(got) != 1 || got[0] != want {
		t.Errorf("after PutTemp the bucket holds %q, want [%q]", got, want)
	}
	if err := s.MakePermanent(t.Context(), didA, tb.Key, tb.CID); err != nil {
		t.Fatal(err)
	}
	want = "pds/blocks/" + string(didA) + "/" + tb.CID.String()
	if got := f.keys(t, ""); len(got) != 1 || got[0] != want {
		t.Errorf("after MakePermanent the bucket holds %q, want [%q]", got, want)
	}

	// Another prefix in the same bucket is another store.
	other := f.store(t, "")
	otherTemp := putTemp(t, other, didA, []byte("other"))
	if err := s.CleanTemp(t.Context(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAll(t.Context(), didA); err != nil {
		t.Fatal(err)
	}
	if got, want := f.keys(t, ""), []string{"tmp/" + string(didA) + "/" + otherTemp.Key}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("the bucket holds %q, want %q", got, want)
	}
}

func TestS3ManyDeletes(t *testing.T) {
	// More objects than one multi-object delete takes.
	f := newFakeS3(t)
	s := f.store(t, "")
	const n = 1005
	for i := range n {
		name := s.permObject(didA, data.CIDForRaw([]byte(strconv.Itoa(i))))
		if _, err := f.backend.PutObject(testBucket, name, map[string]string{}, strings.NewReader("x"), 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(f.keys(t, "blocks/")); got != n {
		t.Fatalf("stored %d objects, want %d", got, n)
	}
	if err := s.DeleteAll(t.Context(), didA); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	if got := f.keys(t, ""); len(got) != 0 {
		t.Errorf("%d objects left after DeleteAll", len(got))
	}
}

func TestNewS3Errors(t *testing.T) {
	f := newFakeS3(t)
	for name, mutate := range map[string]func(*S3Config){
		"no bucket":          func(c *S3Config) { c.Bucket = "" },
		"missing bucket":     func(c *S3Config) { c.Bucket = "no-such-bucket" },
		"bad scheme":         func(c *S3Config) { c.Endpoint = "ftp://127.0.0.1:1" },
		"endpoint with path": func(c *S3Config) { c.Endpoint = f.url + "/bucket" },
		"only access key":    func(c *S3Config) { c.SecretKey = "" },
		"only secret key":    func(c *S3Config) { c.AccessKey = "" },
		"absolute prefix":    func(c *S3Config) { c.Prefix = "/pds" },
	} {
		cfg := f.config("")
		mutate(&cfg)
		if _, err := NewS3(t.Context(), cfg); err == nil {
			t.Errorf("%s: NewS3 succeeded", name)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in     string
		host   string
		secure bool
		ok     bool
	}{
		{"", "s3.amazonaws.com", true, true},
		{"https://s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com", true, true},
		{"http://127.0.0.1:9000", "127.0.0.1:9000", false, true},
		{"http://127.0.0.1:9000/", "127.0.0.1:9000", false, true},
		{"minio.example:9000", "minio.example:9000", true, true},
		{"ftp://example", "", false, false},
		{"https://", "", false, false},
		{"https://user:pw@example", "", false, false},
		{"https://example/path", "", false, false},
		{"https://example?x=1", "", false, false},
		{"http://[::1", "", false, false},
	} {
		host, secure, err := parseEndpoint(tc.in)
		if (err == nil) != tc.ok || host != tc.host || secure != tc.secure {
			t.Errorf("parseEndpoint(%q) = %q, %v, %v", tc.in, host, secure, err)
		}
	}
}

func TestReadUpTo(t *testing.T) {
	const max = 100 << 10
	for _, n := range []int{0, 1, max - 1, max, max + 1, 3 * max} {
		b := content(n, uint64(n))
		for name, r := range map[string]io.Reader{
			"whole":    bytes.NewReader(b),
			"one byte": iotest.OneByteReader(bytes.NewReader(b)),
			"data+EOF": iotest.DataErrReader(bytes.NewReader(b)),
		} {
			got, err := readUpTo(r, max)
			want := b[:min(n, max)]
			wantErr := error(nil)
			if n < max {
				wantErr = io.EOF
			}
			if n == max && name == "data+EOF" {
				wantErr = io.EOF // the last bytes came with the end
			}
			if !bytes.Equal(got, want) || err != wantErr {
				t.Errorf("%d bytes, %s: got %d bytes, %v; want %d, %v", n, name, len(got), err, len(want), wantErr)
			}
			if cap(got) > 2*max {
				t.Errorf("%d bytes, %s: buffer grew to %d", n, name, cap(got))
			}
		}
	}
}
