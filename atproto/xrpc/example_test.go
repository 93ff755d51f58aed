package xrpc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/welkin-atproto/welkin/api"
	"github.com/welkin-atproto/welkin/api/atproto"
	"github.com/welkin-atproto/welkin/atproto/xrpc"
)

func Example() {
	cat, err := api.Catalog()
	if err != nil {
		panic(err)
	}
	s := xrpc.NewServer(cat)
	xrpc.HandleQuery(s, atproto.ServerDescribeServerNSID, func(ctx context.Context, _ *xrpc.NoParams) (*atproto.ServerDescribeServer_Output, error) {
		return &atproto.ServerDescribeServer_Output{
			Did:                  "did:web:pds.example.com",
			AvailableUserDomains: []string{".example.com"},
		}, nil
	})
	ts := httptest.NewServer(s)
	defer ts.Close()

	c := &xrpc.Client{Host: ts.URL}
	out, err := atproto.ServerDescribeServer(context.Background(), c)
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Did, out.AvailableUserDomains)

	// A method the server does not have.
	_, err = atproto.ServerGetSession(context.Background(), c)
	var xe *xrpc.Error
	if errors.As(err, &xe) {
		fmt.Println(xe.Status, xe.Name)
	}
	// Output:
	// did:web:pds.example.com [.example.com]
	// 501 MethodNotImplemented
}
