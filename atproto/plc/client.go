package plc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// DefaultDirectory is the public PLC directory, used when Client.BaseURL is
// empty.
const DefaultDirectory = "https://plc.directory"

// Response size caps: a DID's log is small, an export page holds up to 1000
// operations.
const (
	maxResponseBytes = 8 << 20
	maxExportBytes   = 64 << 20
	maxErrorBytes    = 4 << 10
)

// Client talks to a PLC directory over HTTP. The zero value uses
// DefaultDirectory and http.DefaultClient. A Client is safe for concurrent
// use if its HTTPClient is.
type Client struct {
	// BaseURL is the directory's root URL, such as "https://plc.directory".
	BaseURL string
	// HTTPClient makes the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// UserAgent, if set, is sent with every request.
	UserAgent string
}

func (c *Client) endpoint(did syntax.DID, suffix string) (string, error) {
	if _, err := syntax.ParseDID(string(did)); err != nil {
		return "", err
	}
	return c.base() + "/" + url.PathEscape(string(did)) + suffix, nil
}

func (c *Client) base() string {
	b := c.BaseURL
	if b == "" {
		b = DefaultDirectory
	}
	return strings.TrimRight(b, "/")
}

func (c *Client) do(ctx context.Context, method, u string, body []byte, limit int64) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("plc: building request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("plc: %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return nil, &HTTPError{StatusCode: resp.StatusCode, Message: errorMessage(raw)}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("plc: reading response from %s: %w", u, err)
	}
	if int64(len(raw)) > limit {
		return nil, errf(ErrBadResponse, "response from %s is larger than %d bytes", u, limit)
	}
	return raw, nil
}

// errorMessage pulls the "message" (or "error") field out of a JSON error
// body, falling back to the body text itself.
func errorMessage(raw []byte) string {
	var body struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil {
		if body.Message != "" {
			return body.Message
		}
		if body.Error != "" {
			return body.Error
		}
	}
	s := strings.TrimSpace(string(raw))
	if !utf8.ValidString(s) {
		return ""
	}
	return s
}

func (c *Client) getJSON(ctx context.Context, did syntax.DID, suffix string, v any) error {
	u, err := c.endpoint(did, suffix)
	if err != nil {
		return err
	}
	raw, err := c.do(ctx, http.MethodGet, u, nil, maxResponseBytes)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		if errors.Is(err, ErrMalformedOp) || errors.Is(err, ErrBadResponse) {
			return err
		}
		return fmt.Errorf("%w: %s: %v", ErrBadResponse, u, err)
	}
	return nil
}

// Resolve fetches the DID document (GET /:did). A deactivated or unknown
// DID gives an error matching ErrNotFound.
func (c *Client) Resolve(ctx context.Context, did syntax.DID) (*Document, error) {
	var doc Document
	if err := c.getJSON(ctx, did, "", &doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

// Data fetches the DID's current PLC state (GET /:did/data).
func (c *Client) Data(ctx context.Context, did syntax.DID) (*DocumentData, error) {
	var d DocumentData
	if err := c.getJSON(ctx, did, "/data", &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// opList decodes a JSON array of operations.
type opList []Op

func (l *opList) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return err
	}
	out := make([]Op, len(raws))
	for i, r := range raws {
		op, err := ParseOperationJSON(r)
		if err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
		out[i] = op
	}
	*l = out
	return nil
}

// Log fetches the chain of active operations (GET /:did/log).
func (c *Client) Log(ctx context.Context, did syntax.DID) ([]Op, error) {
	var l opList
	if err := c.getJSON(ctx, did, "/log", &l); err != nil {
		return nil, err
	}
	return l, nil
}

// AuditLog fetches every operation of the DID, nullified ones included
// (GET /:did/log/audit). The log is returned as the directory sent it; use
// ValidateAuditLog to check it.
func (c *Client) AuditLog(ctx context.Context, did syntax.DID) ([]AuditEntry, error) {
	var entries []AuditEntry
	if err := c.getJSON(ctx, did, "/log/audit", &entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// LastOp fetches the DID's latest active operation (GET /:did/log/last).
func (c *Client) LastOp(ctx context.Context, did syntax.DID) (Op, error) {
	u, err := c.endpoint(did, "/log/last")
	if err != nil {
		return nil, err
	}
	raw, err := c.do(ctx, http.MethodGet, u, nil, maxResponseBytes)
	if err != nil {
		return nil, err
	}
	return ParseOperationJSON(raw)
}

// Submit posts a signed operation for did (POST /:did). A refusal comes back
// as *HTTPError carrying the directory's reason.
func (c *Client) Submit(ctx context.Context, did syntax.DID, op Op) error {
	if isNil(op) {
		return errf(ErrMalformedOp, "nil operation")
	}
	if op.Signature() == "" {
		return errf(ErrUnsigned, "refusing to submit an unsigned %s", op.Type())
	}
	body, err := op.MarshalJSON()
	if err != nil {
		return err
	}
	u, err := c.endpoint(did, "")
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, u, body, maxResponseBytes)
	return err
}

// Export fetches one page of the directory's global operation log (GET
// /export). after is the cursor: "" for the first page in the legacy
// format, a sequence number ("0" for the first page) for the sequenced
// format, or a createdAt timestamp for the legacy format. count <= 0 leaves
// the page size to the server (at most 1000).
func (c *Client) Export(ctx context.Context, after string, count int) ([]ExportEntry, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if count > 0 {
		q.Set("count", strconv.Itoa(count))
	}
	u := c.base() + "/export"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	raw, err := c.do(ctx, http.MethodGet, u, nil, maxExportBytes)
	if err != nil {
		return nil, err
	}
	var out []ExportEntry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), maxExportBytes)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var e ExportEntry
		if err := json.Unmarshal(text, &e); err != nil {
			return nil, fmt.Errorf("export line %d: %w", line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: export: %v", ErrBadResponse, err)
	}
	return out, nil
}
