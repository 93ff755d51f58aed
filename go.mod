module github.com/welkin-atproto/welkin

go 1.26
