package lexicon_test

import (
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/lexicon"
)

func Example() {
	sf, err := lexicon.ParseSchemaFile([]byte(`{
	  "lexicon": 1,
	  "id": "com.example.status",
	  "defs": {
	    "main": {
	      "type": "record",
	      "key": "literal:self",
	      "record": {
	        "type": "object",
	        "required": ["text", "createdAt"],
	        "properties": {
	          "text": {"type": "string", "maxGraphemes": 10, "maxLength": 100},
	          "createdAt": {"type": "string", "format": "datetime"}
	        }
	      }
	    }
	  }
	}`))
	if err != nil {
		panic(err)
	}
	cat := lexicon.NewCatalog()
	if err := cat.Add(sf); err != nil {
		panic(err)
	}

	ok, _ := data.ParseJSON([]byte(`{"$type": "com.example.status", "text": "🏳️‍🌈 hello", "createdAt": "2024-05-06T07:08:09.123Z"}`))
	fmt.Println(cat.ValidateRecord("com.example.status", ok))

	bad, _ := data.ParseJSON([]byte(`{"$type": "com.example.status", "text": "hello", "createdAt": "yesterday"}`))
	fmt.Println(cat.ValidateRecord("com.example.status", bad))
	// Output:
	// <nil>
	// createdAt: invalid datetime: "yesterday": expected a digit at offset 0, found 'y'
}
