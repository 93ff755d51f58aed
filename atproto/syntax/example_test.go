package syntax_test

import (
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

func ExampleParseATURI() {
	u, err := syntax.ParseATURI("at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3jzfcijpj2z2a")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.Authority().IsDID(), u.Authority())
	fmt.Println(u.Collection().Authority(), u.Collection().Name())
	fmt.Println(u.RecordKey())
	// Output:
	// true did:plc:z72i7hdynmk6r22z27h6tvur
	// feed.bsky.app post
	// 3jzfcijpj2z2a
}

func ExampleParseHandle() {
	h, err := syntax.ParseHandle("Alice.Example.COM")
	fmt.Println(h.Normalize(), h.TLD(), h.AllowedTLD(), err)

	_, err = syntax.ParseHandle("jo_hn.test")
	fmt.Println(err)
	// Output:
	// alice.example.com com true <nil>
	// invalid handle "jo_hn.test": label "jo_hn" contains '_' at offset 2
}

func ExampleNewTID() {
	tid := syntax.NewTID(1700000000000000, 5)
	fmt.Println(tid, tid.Time().Format("2006-01-02T15:04:05Z07:00"), tid.ClockID())
	// Output:
	// 3ke6kg3wk2227 2023-11-14T22:13:20Z 5
}

func ExampleParseDatetimeLenient() {
	d, err := syntax.ParseDatetimeLenient("1985-04-12 23:20:50.123-07:00")
	fmt.Println(d, err)
	// Output:
	// 1985-04-13T06:20:50.123Z <nil>
}
