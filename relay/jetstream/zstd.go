package jetstream

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// dictionary is Jetstream's published zstd dictionary, byte for byte
// (bluesky-social/jetstream, pkg/models/zstd_dictionary).
//
//go:embed zstd_dictionary
var dictionary []byte

// zstdWindow is the window of the compressed messages: Jetstream's, so
// that its clients' decoders need no more memory than they expect.
const zstdWindow = 128 << 10

// Dictionary returns a copy of the zstd dictionary compressed messages
// are written with, which a client needs to read them.
func Dictionary() []byte { return bytes.Clone(dictionary) }

// NewEncoder returns an encoder whose EncodeAll writes a message as one
// zstd frame compressed with the dictionary, as Jetstream sends them. It
// may be used by concurrent goroutines.
func NewEncoder(concurrency int) (*zstd.Encoder, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderDict(dictionary),
		zstd.WithWindowSize(zstdWindow), zstd.WithEncoderConcurrency(max(concurrency, 1)))
	if err != nil {
		return nil, fmt.Errorf("jetstream: zstd encoder: %w", err)
	}
	return enc, nil
}

// NewDecoder returns a decoder whose DecodeAll reads compressed messages.
// Close it when done.
func NewDecoder() (*zstd.Decoder, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDicts(dictionary), zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(zstdWindow), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, fmt.Errorf("jetstream: zstd decoder: %w", err)
	}
	return dec, nil
}
