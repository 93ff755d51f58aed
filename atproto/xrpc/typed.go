package xrpc

import (
	"context"
	"io"
	"net/url"
	"strconv"

	"github.com/welkin-atproto/welkin/api/lexutil"
	"github.com/welkin-atproto/welkin/atproto/data"
)

// ParamsPtr is a pointer to a generated _Params type, which reads itself
// from query parameters.
type ParamsPtr[P any] interface {
	*P
	SetValues(url.Values) error
}

// InputPtr is a pointer to a generated _Input type.
type InputPtr[I any] interface {
	*I
	lexutil.Unmarshaler
}

// NoParams stands for the parameters of a method that declares none.
type NoParams struct{}

// SetValues ignores q.
func (*NoParams) SetValues(url.Values) error { return nil }

// NoInput stands for the input of a procedure that takes none; a typed
// handler receives nil.
type NoInput struct{}

// UnmarshalDAGCBOR skips the value.
func (*NoInput) UnmarshalDAGCBOR(d *data.Decoder) error { return d.Skip() }

// NoOutput stands for the output of a method that returns none: the
// response is an empty 200 whatever the handler returns.
type NoOutput struct{}

// HandleQuery registers a typed query handler: the parameters, checked
// against the lexicon, are decoded into a P by its SetValues method, and
// the *O returned (a generated type) is sent as JSON; a nil *O is an empty
// response. The *Request is available through RequestFromContext.
//
//	xrpc.HandleQuery(s, bsky.FeedGetTimelineNSID, h.FeedGetTimeline)
func HandleQuery[P any, PP ParamsPtr[P], O any](s *Server, nsid string, fn func(context.Context, *P) (*O, error)) {
	s.Handle(nsid, Query, func(ctx context.Context, req *Request) (*Response, error) {
		var p P
		if err := PP(&p).SetValues(withDefaults(req.Query, req.Params)); err != nil {
			return nil, &Error{Status: 400, Name: NameInvalidRequest, Message: "invalid parameters: " + err.Error(), Err: err}
		}
		out, err := fn(ctx, &p)
		return typedResponse(out, err)
	})
}

// HandleProcedure registers a typed procedure handler: the JSON input,
// checked against the lexicon, is decoded into an I (a generated type), or
// nil when the request has none; the *O returned is sent as JSON.
func HandleProcedure[I any, IP InputPtr[I], O any](s *Server, nsid string, fn func(context.Context, *I) (*O, error)) {
	s.Handle(nsid, Procedure, func(ctx context.Context, req *Request) (*Response, error) {
		var in *I
		if req.Input != nil {
			b, err := data.MarshalCBOR(req.Input)
			if err != nil {
				return nil, &Error{Status: 400, Name: NameInvalidRequest, Message: "invalid input: " + err.Error(), Err: err}
			}
			in = new(I)
			if err := lexutil.UnmarshalCBOR(b, IP(in)); err != nil {
				return nil, &Error{Status: 400, Name: NameInvalidRequest, Message: "invalid input: " + err.Error(), Err: err}
			}
		}
		out, err := fn(ctx, in)
		return typedResponse(out, err)
	})
}

// HandleRawProcedure registers a procedure whose input is not JSON, such as
// com.atproto.repo.uploadBlob: fn reads the body, limited to the server's
// MaxRawBody (a read past it fails and the call answers 413).
func HandleRawProcedure[O any](s *Server, nsid string, fn func(context.Context, io.Reader) (*O, error)) {
	s.Handle(nsid, Procedure, func(ctx context.Context, req *Request) (*Response, error) {
		body := req.Body
		if body == nil {
			body = http0{}
		}
		out, err := fn(ctx, body)
		return typedResponse(out, err)
	})
}

// http0 is an empty body.
type http0 struct{}

func (http0) Read([]byte) (int, error) { return 0, io.EOF }

func typedResponse[O any](out *O, err error) (*Response, error) {
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, nil
	}
	if _, none := any(out).(*NoOutput); none {
		return nil, nil
	}
	return &Response{Body: out}, nil
}

// withDefaults adds to q the parameters the lexicon gave default values
// (present in the checked params but not in the request).
func withDefaults(q url.Values, params map[string]any) url.Values {
	var out url.Values
	for k, v := range params {
		if _, ok := q[k]; ok {
			continue
		}
		if out == nil {
			out = make(url.Values, len(q)+1)
			for k, vs := range q {
				out[k] = vs
			}
		}
		out[k] = formatParam(v)
	}
	if out == nil {
		return q
	}
	return out
}

func formatParam(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case int64:
		return []string{strconv.FormatInt(v, 10)}
	case bool:
		return []string{strconv.FormatBool(v)}
	case []string:
		return v
	case []int64:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.FormatInt(x, 10)
		}
		return s
	case []bool:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.FormatBool(x)
		}
		return s
	}
	return nil
}
