package data_test

import (
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
)

func Example() {
	record, err := data.ParseJSON([]byte(`{
		"$type": "app.bsky.feed.like",
		"subject": {
			"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3l3qo2vuowo2b",
			"cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a"
		},
		"createdAt": "2026-11-25T14:03:11.482Z"
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	block, err := data.MarshalCBOR(record)
	if err != nil {
		fmt.Println(err)
		return
	}
	back, err := data.UnmarshalCBOR(block)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(block), "bytes of DAG-CBOR")
	fmt.Println(data.CIDForCBOR(block))
	fmt.Println(back["$type"])

	_, err = data.ParseJSON([]byte(`{"score": 1.5}`))
	fmt.Println(err)
	// Output:
	// 212 bytes of DAG-CBOR
	// bafyreiddnpfdbyiximworiing62kujkbddwsw5uhiupovw5y7jixsunoxu
	// app.bsky.feed.like
	// data: json at $.score: number 1.5 is not an integer (the data model has no floats)
}
