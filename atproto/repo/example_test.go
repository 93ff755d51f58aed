package repo_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/welkin-atproto/welkin/atproto/car"
	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/repo"
)

func Example() {
	ctx := context.Background()
	key, err := crypto.GenerateK256()
	if err != nil {
		log.Fatal(err)
	}
	store := repo.NewMemBlockStore()
	r, err := repo.NewRepo("did:plc:ewvi7nxzyoun6zhxrhs64oiz", store)
	if err != nil {
		log.Fatal(err)
	}
	post, err := data.MarshalCBOR(map[string]any{
		"$type":     "app.bsky.feed.post",
		"text":      "hello",
		"createdAt": "2024-01-02T03:04:05.000Z",
	})
	if err != nil {
		log.Fatal(err)
	}
	err = r.Apply(ctx, []repo.RecordWrite{{
		Action: repo.ActionCreate, Collection: "app.bsky.feed.post", RKey: "3kznmn7xqxl22", Value: post,
	}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := r.Commit(ctx, key, repo.NewRevClock(0))
	if err != nil {
		log.Fatal(err)
	}
	for _, op := range res.Ops {
		fmt.Println(op.Action, op.Path)
	}
	// A relay checks the event: the slice's blocks alone undo the ops,
	// giving back the previous data root (the empty tree here).
	_, blocks, err := car.ReadAll(bytes.NewReader(res.CAR), car.CommitLimits())
	if err != nil {
		log.Fatal(err)
	}
	prevData, err := repo.InvertOps(blocks, res.Commit.Data, res.Ops)
	if err != nil {
		log.Fatal(err)
	}
	empty, _ := repo.NewTree().Root()
	fmt.Println("inverts to prevData:", prevData == empty)

	// Export the repository and import it elsewhere, checking the
	// signature.
	var export bytes.Buffer
	if err := r.ExportCAR(ctx, &export); err != nil {
		log.Fatal(err)
	}
	imp, err := repo.ImportCAR(ctx, &export, repo.NewMemBlockStore(), repo.ImportOptions{
		DID: r.DID(), PublicKey: key.Public(),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("imported records:", imp.Records, "same commit:", imp.CommitCID == res.CID)

	// Prove the record to someone holding only the DID's key.
	proof, err := r.RecordProof(ctx, "app.bsky.feed.post", "3kznmn7xqxl22")
	if err != nil {
		log.Fatal(err)
	}
	c, _, err := repo.VerifyRecordProof(proof, r.DID(), key.Public(), "app.bsky.feed.post", "3kznmn7xqxl22")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("proof verified:", *c == *res.Ops[0].CID)
	// Output:
	// create app.bsky.feed.post/3kznmn7xqxl22
	// inverts to prevData: true
	// imported records: 1 same commit: true
	// proof verified: true
}
