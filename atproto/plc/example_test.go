package plc_test

import (
	"encoding/json"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/plc"
)

// A real genesis operation from the public directory, in the legacy
// "create" format: its DID and CID follow from its DAG-CBOR encoding, and
// its data is the normalized, modern form.
func Example() {
	genesis := []byte(`{
		"type": "create",
		"signingKey": "did:key:zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ",
		"recoveryKey": "did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg",
		"handle": "dan.bsky.social",
		"service": "https://bsky.social",
		"prev": null,
		"sig": "7QTzqO1BcL3eDzP4P_YBxMmv5U4brHzAItkM9w5o8gZA7ElZkrVYEwsfQCfk5EoWLk58Z1y6fyNP9x1pthJnlw"
	}`)
	op, err := plc.ParseOperationJSON(genesis)
	if err != nil {
		fmt.Println(err)
		return
	}
	did, err := plc.DIDForGenesis(op)
	if err != nil {
		fmt.Println(err)
		return
	}
	cid, _ := op.CID()
	fmt.Println(did)
	fmt.Println(cid)

	data, err := plc.ValidateOperationLog(did, []plc.Op{op})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(data.AlsoKnownAs[0], data.Services["atproto_pds"].Endpoint)
	doc, _ := json.Marshal(data.Document().VerificationMethod)
	fmt.Println(string(doc))
	// Output:
	// did:plc:yk4dd2qkboz2yv6tpubpc6co
	// bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq
	// at://dan.bsky.social https://bsky.social
	// [{"id":"did:plc:yk4dd2qkboz2yv6tpubpc6co#atproto","type":"Multikey","controller":"did:plc:yk4dd2qkboz2yv6tpubpc6co","publicKeyMultibase":"zQ3shP5TBe1sQfSttXty15FAEHV1DZgcxRZNxvEWnPfLFwLxJ"}]
}
