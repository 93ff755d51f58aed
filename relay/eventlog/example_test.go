package eventlog_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/welkin-atproto/welkin/atproto/stream"
	"github.com/welkin-atproto/welkin/atproto/syntax"
	"github.com/welkin-atproto/welkin/relay/eventlog"
)

func Example() {
	dir, err := os.MkdirTemp("", "eventlog")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	l, err := eventlog.Open(eventlog.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// Sequence two events: each frame carries the seq the log gives it.
	dids := []syntax.DID{"did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com"}
	first, err := l.AppendBatch(len(dids), func(i int, seq int64) ([]byte, syntax.DID, error) {
		f, err := stream.EncodeFrame("#identity", map[string]any{
			"seq": seq, "did": string(dids[i]), "time": "2026-03-01T12:00:00.000Z",
		})
		return f, dids[i], err
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first seq:", first)

	// Replay from a cursor, as the stream server does.
	evs, err := l.Since(context.Background(), 0, 100)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range evs {
		did, _, _ := stream.BodyString(bodyOf(ev.Frame), "did")
		fmt.Println(ev.Seq, did)
	}
	// Output:
	// first seq: 1
	// 1 did:plc:ewvi7nxzyoun6zhxrhs64oiz
	// 2 did:web:example.com
}

func bodyOf(frame []byte) []byte {
	_, body, err := stream.DecodeFrame(frame)
	if err != nil {
		log.Fatal(err)
	}
	return body
}
