package blobstore

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// ftyp builds the start of an ISO base media file: an ftyp box with the
// given major and compatible brands, then a little of a following box.
func ftyp(major string, compatible ...string) []byte {
	size := 16 + 4*len(compatible)
	b := binary.BigEndian.AppendUint32(nil, uint32(size))
	b = append(b, "ftyp"+major+"\x00\x00\x02\x00"...)
	for _, c := range compatible {
		b = append(b, c...)
	}
	return append(b, "\x00\x00\x00\x08free"...)
}

func TestSniffMIME(t *testing.T) {
	png := []byte("\x89PNG\x0D\x0A\x1A\x0A\x00\x00\x00\x0DIHDR")
	jpeg := []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00")
	gif := []byte("GIF89a\x01\x00\x01\x00")
	webp := []byte("RIFF\x24\x00\x00\x00WEBPVP8 ")
	junk := []byte("\x00\x01\x02\x03\xFE\xED\xFA\xCE binary")
	text := []byte("# A heading\n\nSome words.\n")
	html := []byte("<!DOCTYPE html><html><body>hi</body></html>")
	xml := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`)
	zip := []byte("PK\x03\x04\x14\x00\x00\x00")
	webm := []byte("\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\xF2\x81\x04\x42\xF3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04")
	mkv := []byte("\x1A\x45\xDF\xA3\xA3\x42\x86\x81\x01\x42\xF7\x81\x01\x42\xF2\x81\x04\x42\xF3\x81\x08\x42\x82\x88matroska\x42\x87\x81\x04")
	ebml := []byte("\x1A\x45\xDF\xA3\x80\x00\x00")
	oggPage := "OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xAB\xCD\xEF\x01\x01\x13"
	oggOpus := []byte(oggPage + "OpusHead\x01\x02")
	oggVorbis := []byte(oggPage + "\x01vorbis\x00\x00")
	oggTheora := []byte(oggPage + "\x80theora\x03\x02")
	oggOther := []byte(oggPage + "????????")
	ts := make([]byte, 400)
	ts[0], ts[188], ts[376] = 0x47, 0x47, 0x47

	for _, tc := range []struct {
		name     string
		head     []byte
		declared string
		want     string
	}{
		// Sniffed types win when they are specific.
		{"png as png", png, "image/png", "image/png"},
		{"png declared jpeg", png, "image/jpeg", "image/png"},
		{"jpeg undeclared", jpeg, "", "image/jpeg"},
		{"jpeg as image/jpg", jpeg, "image/jpg", "image/jpeg"},
		{"gif as octet-stream", gif, "application/octet-stream", "image/gif"},
		{"webp", webp, "image/png", "image/webp"},
		{"html declared png", html, "image/png", "text/html; charset=utf-8"},
		{"id3", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), "", "audio/mpeg"},
		{"pdf", []byte("%PDF-1.7\n"), "image/png", "application/pdf"},

		// ISO media by brand.
		{"mp4 isom", ftyp("isom", "isom", "iso2", "avc1", "mp41"), "", "video/mp4"},
		{"mp4 mp42 only", ftyp("mp42", "mp42", "isom"), "video/quicktime", "video/mp4"},
		{"mp4 declared audio", ftyp("isom", "isom", "mp42"), "audio/mp4", "audio/mp4"},
		{"quicktime", ftyp("qt  ", "qt  "), "video/mp4", "video/quicktime"},
		{"m4a", ftyp("M4A ", "M4A ", "mp42", "isom"), "", "audio/mp4"},
		{"3gp", ftyp("3gp4", "isom", "3gp4"), "", "video/3gpp"},
		{"avif", ftyp("avif", "avif", "mif1", "miaf", "MA1B"), "", "image/avif"},
		{"avif with major mif1", ftyp("mif1", "mif1", "avif", "miaf"), "", "image/avif"},
		{"heic", ftyp("heic", "mif1", "heic"), "image/jpeg", "image/heic"},
		{"heic with major mif1", ftyp("mif1", "mif1", "heic"), "", "image/heic"},
		{"heif", ftyp("mif1", "mif1", "miaf"), "", "image/heif"},
		{"heif declared heic", ftyp("mif1", "mif1", "miaf"), "image/heic", "image/heic"},
		{"major brand only", ftyp("qt  ")[:12], "", "video/quicktime"},
		{"unknown brands", ftyp("xxxx", "yyyy"), "video/x-custom", "video/x-custom"},
		{"unknown brands undeclared", ftyp("xxxx", "yyyy"), "", "application/octet-stream"},

		// Other media.
		{"webm", webm, "", "video/webm"},
		{"webm declared audio", webm, "audio/webm", "audio/webm"},
		{"matroska", mkv, "video/webm", "video/x-matroska"},
		{"ebml without doctype", ebml, "", "video/webm"},
		{"ogg opus", oggOpus, "", "audio/ogg"},
		{"ogg opus declared opus", oggOpus, "audio/opus", "audio/opus"},
		{"ogg vorbis", oggVorbis, "application/ogg", "audio/ogg"},
		{"ogg theora", oggTheora, "", "video/ogg"},
		{"ogg other", oggOther, "", "application/ogg"},
		{"ogg other declared", oggOther, "audio/ogg", "audio/ogg"},
		{"flac", []byte("fLaC\x00\x00\x00\x22"), "audio/x-flac", "audio/flac"},
		{"jxl codestream", []byte("\xFF\x0A\xFA\x7F"), "", "image/jxl"},
		{"jxl container", []byte("\x00\x00\x00\x0CJXL \x0D\x0A\x87\x0A\x00\x00\x00\x14ftypjxl "), "", "image/jxl"},
		{"tiff le", []byte("II*\x00\x08\x00\x00\x00"), "", "image/tiff"},
		{"tiff be", []byte("MM\x00*\x00\x00\x00\x08"), "", "image/tiff"},
		{"mpeg ps", []byte("\x00\x00\x01\xBA\x44\x00"), "", "video/mpeg"},
		{"mpeg ts", ts, "", "video/mp2t"},
		{"mpeg ts too short", ts[:300], "", "application/octet-stream"},

		// Containers: the declared type can be the precise name.
		{"xml as svg", xml, "image/svg+xml", "image/svg+xml"},
		{"xml as xml", xml, "application/xml", "application/xml"},
		{"xml undeclared", xml, "", "text/xml; charset=utf-8"},
		{"xml declared png", xml, "image/png", "text/xml; charset=utf-8"},
		{"zip as epub", zip, "application/epub+zip", "application/epub+zip"},
		{"zip as docx", zip, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"zip declared png", zip, "image/png", "application/zip"},
		{"gzip", []byte("\x1F\x8B\x08\x00"), "application/gzip", "application/gzip"},

		// Nothing specific: the declared type, normalized.
		{"text as markdown", text, "text/markdown", "text/markdown"},
		{"text as json", []byte(`{"a": 1}`), "application/json", "application/json"},
		{"text undeclared", text, "", "text/plain; charset=utf-8"},
		{"text declared png", text, "image/png", "image/png"},
		{"junk declared", junk, "application/x-thing", "application/x-thing"},
		{"junk undeclared", junk, "", "application/octet-stream"},
		{"junk upper-case", junk, "Image/PNG", "image/png"},
		{"junk parameters", junk, "text/plain; Charset=UTF-8", "text/plain; charset=UTF-8"},
		{"junk bad parameters", junk, "image/png; ;", "image/png"},
		{"junk wildcard", junk, "*/*", "application/octet-stream"},
		{"junk type only", junk, "image", "application/octet-stream"},
		{"junk garbage", junk, "not a / type", "application/octet-stream"},
		{"junk two slashes", junk, "image/png/x", "application/octet-stream"},
		{"empty undeclared", nil, "", "application/octet-stream"},
		{"empty declared", nil, "image/png", "image/png"},
		{"past the head", append(bytes.Repeat([]byte("a"), HeadSize), 0x00, 0x01), "", "text/plain; charset=utf-8"},
	} {
		if got := SniffMIME(tc.head, tc.declared); got != tc.want {
			t.Errorf("%s: SniffMIME(%q, %q) = %q, want %q", tc.name, truncate(string(tc.head)), tc.declared, got, tc.want)
		}
	}
}
