package blobstore_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/pds/blobstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "blobs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := blobstore.NewDisk(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ctx := context.Background()
	did := syntax.DID("did:plc:ewvi7nxzyoun6zhxrhs64oiz")

	// uploadBlob: store the body in the temporary area, within the limit.
	body := strings.NewReader("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	tb, err := store.PutTemp(ctx, did, body, 1<<20)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tb.CID, tb.Size, blobstore.SniffMIME(tb.Head, "image/png"))

	// A record references the blob: make it permanent, then serve it.
	if err := store.MakePermanent(ctx, did, tb.Key, tb.CID); err != nil {
		log.Fatal(err)
	}
	rc, size, err := store.Get(ctx, did, tb.CID)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	fmt.Println(size, string(b[:6]))
	// Output:
	// bafkreia7dglq6blm2elkl7r4ajbcyhxbvsbhcnw7i4fvzcnpjetcaujkuq 14 image/gif
	// 14 GIF89a
}
