package blobstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"mime"
	"net/http"
	"strings"
)

const octetStream = "application/octet-stream"

// SniffMIME decides the MIME type to record for a blob, from its first
// bytes (head; bytes past HeadSize are ignored) and the type its uploader
// declared (the upload's Content-Type).
//
// The bytes are sniffed with the signatures of net/http.DetectContentType
// and, before those, signatures for media types that atproto applications
// use and DetectContentType does not know or names only by their container:
// ISO media files by their brands (MP4, QuickTime, M4A, 3GPP, AVIF,
// HEIC/HEIF), Matroska, Ogg audio and video, FLAC, JPEG XL, TIFF and MPEG
// streams. Nothing beyond the signatures is parsed.
//
// The result is the sniffed type when the bytes say something specific,
// and the declared type (normalized: lower-case, parameters in canonical
// form) when they do not: when they look like plain text or unknown binary
// data, or when the declared type is a more precise name for the sniffed
// container (image/svg+xml for XML, audio/webm for WebM, audio/mp4 for an
// MP4 file, application/epub+zip for a ZIP archive, and so on). A missing
// or malformed declared type counts as application/octet-stream. The result
// is never empty.
func SniffMIME(head []byte, declared string) string {
	if len(head) > HeadSize {
		head = head[:HeadSize]
	}
	decl, declBase := parseDeclared(declared)
	sniffed := octetStream // no bytes say nothing (DetectContentType would say text)
	if len(head) > 0 {
		if sniffed = sniffMedia(head); sniffed == "" {
			sniffed = http.DetectContentType(head)
		}
	}
	switch {
	case isGeneric(sniffed):
		if decl != "" {
			return decl
		}
		return sniffed
	case decl != "" && refines(declBase, sniffed):
		return decl
	default:
		return sniffed
	}
}

// parseDeclared normalizes a declared media type. It returns "" for one
// that is missing, malformed or a wildcard, and otherwise the type with its
// parameters and the type alone.
func parseDeclared(s string) (full, base string) {
	mt, params, err := mime.ParseMediaType(s)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return "", ""
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" || strings.ContainsAny(mt, "*") || strings.Count(mt, "/") != 1 {
		return "", ""
	}
	if err != nil { // bad parameters: keep the type alone
		return mt, mt
	}
	if f := mime.FormatMediaType(mt, params); f != "" {
		return f, mt
	}
	return mt, mt
}

// isGeneric reports whether a sniffed type says nothing more than "text"
// or "bytes".
func isGeneric(sniffed string) bool {
	return sniffed == octetStream || strings.HasPrefix(sniffed, "text/plain")
}

// refines reports whether a declared type is a more precise name for what
// the sniffed type found: a format built on the sniffed container, or a
// type the signatures cannot tell apart from it.
func refines(decl, sniffed string) bool {
	if i := strings.IndexByte(sniffed, ';'); i >= 0 {
		sniffed = sniffed[:i]
	}
	if decl == sniffed {
		return false // nothing to refine; the sniffed spelling is as good
	}
	_, sub, _ := strings.Cut(decl, "/")
	switch sniffed {
	case "text/xml":
		return sub == "xml" || strings.HasSuffix(sub, "+xml")
	case "application/zip":
		return strings.HasSuffix(sub, "+zip") || strings.HasPrefix(decl, "application/vnd.") ||
			decl == "application/java-archive" || decl == "application/x-zip-compressed"
	case "application/x-gzip":
		return decl == "application/gzip"
	case "application/ogg":
		return decl == "audio/ogg" || decl == "video/ogg" || decl == "audio/opus" || decl == "audio/vorbis"
	case "audio/ogg":
		return decl == "audio/opus" || decl == "audio/vorbis"
	case "video/mp4":
		return decl == "audio/mp4" || decl == "audio/x-m4a" || decl == "audio/m4a" ||
			decl == "video/x-m4v" || decl == "application/mp4"
	case "video/webm":
		return decl == "audio/webm"
	case "video/x-matroska":
		return decl == "audio/x-matroska"
	case "image/heif":
		return decl == "image/heic"
	case "image/heif-sequence":
		return decl == "image/heic-sequence"
	}
	return false
}

// sniffMedia matches the signatures SniffMIME adds to DetectContentType's;
// it returns "" when none matches.
func sniffMedia(b []byte) string {
	switch {
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return sniffFtyp(b)
	case bytes.HasPrefix(b, []byte("\x1A\x45\xDF\xA3")):
		return sniffEBML(b)
	case bytes.HasPrefix(b, []byte("OggS\x00")):
		return sniffOgg(b)
	case bytes.HasPrefix(b, []byte("fLaC")):
		return "audio/flac"
	case bytes.HasPrefix(b, []byte("\xFF\x0A")),
		bytes.HasPrefix(b, []byte("\x00\x00\x00\x0CJXL \x0D\x0A\x87\x0A")):
		return "image/jxl"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "image/tiff"
	case bytes.HasPrefix(b, []byte("\x00\x00\x01\xBA")), bytes.HasPrefix(b, []byte("\x00\x00\x01\xB3")):
		return "video/mpeg"
	case len(b) > 2*188 && b[0] == 0x47 && b[188] == 0x47 && b[2*188] == 0x47:
		return "video/mp2t" // MPEG transport stream: a sync byte every 188
	}
	return ""
}

// ftypBrands ranks the ISO base media file format brands SniffMIME knows:
// a file takes the type of its best-ranked brand, major or compatible, so
// that an AVIF that also lists the generic HEIF brand is still an AVIF.
var ftypBrands = []struct {
	brand string // a whole brand, or its first three characters if it ends in '*'
	mime  string
}{
	{"avif", "image/avif"},
	{"avis", "image/avif"},
	{"heic", "image/heic"},
	{"heix", "image/heic"},
	{"heim", "image/heic"},
	{"heis", "image/heic"},
	{"hevc", "image/heic-sequence"},
	{"hevx", "image/heic-sequence"},
	{"mif1", "image/heif"},
	{"msf1", "image/heif-sequence"},
	{"qt  ", "video/quicktime"},
	{"M4A ", "audio/mp4"},
	{"M4B ", "audio/mp4"},
	{"M4V ", "video/mp4"},
	{"3g2*", "video/3gpp2"},
	{"3gp*", "video/3gpp"},
	{"3ge*", "video/3gpp"},
	{"3gg*", "video/3gpp"},
	{"3gs*", "video/3gpp"},
	{"mp4*", "video/mp4"},
	{"iso*", "video/mp4"},
	{"avc1", "video/mp4"},
	{"dash", "video/mp4"},
	{"mmp4", "video/mp4"},
	{"f4v ", "video/mp4"},
}

// sniffFtyp names an ISO base media file by the brands in its ftyp box.
func sniffFtyp(b []byte) string {
	size := int(binary.BigEndian.Uint32(b[:4]))
	if size < 16 {
		size = 12 // no room for compatible brands; the major brand is all there is
	}
	end := min(size, len(b))
	best := len(ftypBrands)
	rank := func(brand []byte) {
		for i := 0; i < best; i++ {
			p := ftypBrands[i].brand
			if p[3] == '*' && string(brand[:3]) == p[:3] || string(brand) == p {
				best = i
				return
			}
		}
	}
	rank(b[8:12])
	for off := 16; off+4 <= end; off += 4 {
		rank(b[off : off+4])
	}
	if best < len(ftypBrands) {
		return ftypBrands[best].mime
	}
	return ""
}

// sniffEBML tells WebM from other Matroska files by the DocType element
// near the start of the EBML header.
func sniffEBML(b []byte) string {
	h := b[:min(len(b), 64)]
	switch {
	case bytes.Contains(h, []byte("\x42\x82\x84webm")):
		return "video/webm"
	case bytes.Contains(h, []byte("\x42\x82\x88matroska")):
		return "video/x-matroska"
	}
	return "" // DetectContentType's guess, video/webm
}

// sniffOgg names an Ogg file by the codec of its first packet, which
// starts after the first page's header.
func sniffOgg(b []byte) string {
	h := b[:min(len(b), 96)]
	switch {
	case bytes.Contains(h, []byte("OpusHead")),
		bytes.Contains(h, []byte("\x01vorbis")),
		bytes.Contains(h, []byte("\x7FFLAC")),
		bytes.Contains(h, []byte("Speex   ")):
		return "audio/ogg"
	case bytes.Contains(h, []byte("\x80theora")):
		return "video/ogg"
	}
	return "" // DetectContentType's answer, application/ogg
}
