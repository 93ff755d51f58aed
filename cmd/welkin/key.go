package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/welkin-atproto/welkin/atproto/crypto"
)

func runKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		keyUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "generate":
		return runKeyGenerate(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "welkin key: unknown subcommand %q\n", args[0])
		keyUsage(stderr)
		return 2
	}
}

func keyUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: welkin key generate [--type k256|p256] [--jwk]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Generates a key pair and prints the private key (multibase) and the")
	fmt.Fprintln(w, "public key as a did:key. Keep the private key secret.")
}

func runKeyGenerate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("key generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyType := fs.String("type", string(crypto.KeyTypeK256), "curve: k256 (secp256k1) or p256 (NIST P-256)")
	withJWK := fs.Bool("jwk", false, "also print the private key as a JSON Web Key")
	fs.Usage = func() {
		keyUsage(stderr)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExitCode(err)
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "welkin key generate: takes no arguments, got %q\n", fs.Args())
		return 2
	}
	var (
		priv crypto.PrivateKey
		err  error
	)
	switch crypto.KeyType(*keyType) {
	case crypto.KeyTypeK256:
		priv, err = crypto.GenerateK256()
	case crypto.KeyTypeP256:
		priv, err = crypto.GenerateP256()
	default:
		fmt.Fprintf(stderr, "welkin key generate: unknown key type %q; want k256 or p256\n", *keyType)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "welkin key generate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "type: %s\n", priv.KeyType())
	fmt.Fprintf(stdout, "private-key-multibase: %s\n", priv.Multibase())
	fmt.Fprintf(stdout, "public-did-key: %s\n", priv.Public().DIDKey())
	if *withJWK {
		j, err := priv.JWK()
		if err != nil {
			fmt.Fprintf(stderr, "welkin key generate: %v\n", err)
			return 1
		}
		b, err := json.Marshal(j)
		if err != nil {
			fmt.Fprintf(stderr, "welkin key generate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "private-jwk: %s\n", b)
	}
	return 0
}
