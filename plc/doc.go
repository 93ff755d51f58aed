// Package plc is a did:plc directory server: it accepts signed PLC
// operations over HTTP, validates each against the DID's stored audit log
// with the rules of package atproto/plc, keeps the log in a store.Store,
// and serves DID documents, logs and the global export.
//
// The HTTP API follows the reference directory (plc.directory) and the
// did:plc specification v0.3:
//
//	POST /{did}            submit a signed operation (JSON body)
//	GET  /{did}            DID document (application/did+ld+json)
//	GET  /{did}/data       current PLC state
//	GET  /{did}/log        active operations, oldest first
//	GET  /{did}/log/audit  every operation, nullified ones included
//	GET  /{did}/log/last   latest active operation
//	GET  /export           JSON lines; after=<seq> sequenced, else legacy
//	GET  /export/stream    WebSocket stream of sequenced operations
//	GET  /_health          {"version": ...}
//
// Errors are JSON objects {"message": "..."}: 400 for every refused
// operation or bad parameter, 404 for an unknown DID, 410 for a
// tombstoned one, 409 when a concurrent submission for the same DID won.
//
// Submissions for one DID are serialized in-process by a per-DID lock, and
// across processes by the store's conflict check, so a DID's history can
// never fork in storage.
package plc
