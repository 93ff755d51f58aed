package data

// Bytes is a byte string of the data model. In JSON it is written as
// {"$bytes": "<base64, no padding>"}; in DAG-CBOR as a byte string.
type Bytes []byte

// Blob is a reference to a blob: its CID (raw codec), MIME type and size.
// In JSON and CBOR it is an object {"$type": "blob", "ref": <link>,
// "mimeType": ..., "size": ...}.
//
// Legacy is set for the older form {"cid": "<cid string>", "mimeType": ...}
// that early records hold; such a blob has no size and is written back in
// the legacy form, so that data passed through is not changed.
type Blob struct {
	Ref      CID
	MimeType string
	Size     int64
	Legacy   bool
}
