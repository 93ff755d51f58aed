package car_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/data"
)

func Example() {
	// Two blocks: a record and a raw blob.
	rec, err := data.MarshalCBOR(map[string]any{"$type": "app.bsky.feed.post", "text": "hello"})
	if err != nil {
		log.Fatal(err)
	}
	recCID := data.CIDForCBOR(rec)
	blob := []byte("some bytes")
	blobCID := data.CIDForRaw(blob)

	// Write a CAR file with the record as its root.
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, recCID)
	if err != nil {
		log.Fatal(err)
	}
	if err := w.WriteBlock(recCID, rec); err != nil {
		log.Fatal(err)
	}
	if err := w.WriteBlock(blobCID, blob); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	// Read it back, block by block, with the limits of a #commit event.
	r, err := car.NewReader(&buf, car.CommitLimits())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("root is the record:", r.Roots()[0] == recCID)
	for {
		c, b, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("codec 0x%x, %d bytes\n", c.Codec(), len(b))
	}
	// Output:
	// root is the record: true
	// codec 0x71, 37 bytes
	// codec 0x55, 10 bytes
}
