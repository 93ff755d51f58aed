module github.com/welkin-atproto/welkin

go 1.26

require gitlab.com/yawning/secp256k1-voi v0.0.0-20230925100816-f2616030848b

require (
	gitlab.com/yawning/tuplehash v0.0.0-20230713102510-df83abbf9a02 // indirect
	golang.org/x/crypto v0.11.0 // indirect
	golang.org/x/sys v0.10.0 // indirect
)
