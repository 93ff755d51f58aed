package crypto_test

import (
	"encoding/hex"
	"fmt"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

func Example() {
	// A fixed secp256k1 key (from the W3C did:key test vectors), so the
	// output is stable; real code would call crypto.GenerateK256.
	raw, _ := hex.DecodeString("9085d2bef69286a6cbb51623c8fa258629945cd55ca705cc4e66700396894e0c")
	priv, err := crypto.ParsePrivateBytesK256(raw)
	if err != nil {
		panic(err)
	}
	pub := priv.Public()
	fmt.Println(pub.DIDKey())

	msg := []byte("hello atproto")
	sig, err := priv.HashAndSign(msg)
	if err != nil {
		panic(err)
	}

	// Someone holding only the did:key can check the signature.
	verifier, err := crypto.ParsePublicDIDKey(pub.DIDKey())
	if err != nil {
		panic(err)
	}
	fmt.Println("signature valid:", verifier.HashAndVerify(msg, sig) == nil)
	fmt.Println("tampered valid:", verifier.HashAndVerify([]byte("hello atproto!"), sig) == nil)
	// Output:
	// did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme
	// signature valid: true
	// tampered valid: false
}
