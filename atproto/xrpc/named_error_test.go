package xrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tokenError stands for an error of another package that knows its XRPC
// name and status, as atproto/auth's do.
type tokenError struct{ name, public, cause string }

func (e *tokenError) Error() string         { return e.name + ": " + e.public + ": " + e.cause }
func (e *tokenError) ErrorName() string     { return e.name }
func (e *tokenError) Status() int           { return http.StatusUnauthorized }
func (e *tokenError) PublicMessage() string { return e.public }

func TestNamedErrorFromAnotherPackage(t *testing.T) {
	s := NewServer(nil)
	s.Handle("com.example.secret", Query, func(_ context.Context, _ *Request) (*Response, error) {
		return nil, fmt.Errorf("checking token: %w", &tokenError{name: "BadJwtSignature", public: "jwt signature does not match jwt issuer", cause: "resolver at 10.1.2.3 said no"})
	})
	s.Handle("com.example.plain", Query, func(_ context.Context, _ *Request) (*Response, error) {
		return nil, errors.New("database at 10.1.2.3 is down")
	})
	ts := httptest.NewServer(s)
	defer ts.Close()

	for _, c := range []struct {
		nsid, name, message string
		status              int
	}{
		{"com.example.secret", "BadJwtSignature", "jwt signature does not match jwt issuer", 401},
		{"com.example.plain", "InternalServerError", "", 500},
	} {
		resp, err := http.Get(ts.URL + "/xrpc/" + c.nsid)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error, Message string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.status || body.Error != c.name {
			t.Errorf("%s: got %d %s, want %d %s", c.nsid, resp.StatusCode, body.Error, c.status, c.name)
		}
		if c.message != "" && body.Message != c.message {
			t.Errorf("%s: message %q, want %q", c.nsid, body.Message, c.message)
		}
		if strings.Contains(body.Message, "10.1.2.3") {
			t.Errorf("%s: the cause leaked into the answer: %q", c.nsid, body.Message)
		}
	}
}
