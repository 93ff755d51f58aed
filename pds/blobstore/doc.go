// Package blobstore is where the PDS keeps the bytes of blobs: images,
// video and other media that records reference by CID.
//
// A Store holds bytes only, per account and addressed by CID. Everything
// else about a blob (its MIME type and size as recorded, which records
// reference it, whether it is still temporary) is metadata kept in the
// account's database by the caller.
//
// # Lifecycle
//
// The blob spec's lifecycle maps onto the Store like this:
//
//   - com.atproto.repo.uploadBlob streams the body through PutTemp, which
//     enforces the size limit while reading (a longer body fails with
//     ErrTooLarge and leaves nothing behind), computes the blob's CID
//     (CIDv1, raw codec, sha2-256) on the way, and returns a random,
//     unguessable temporary key with the first HeadSize bytes, from which
//     SniffMIME decides the MIME type to record.
//   - A record write that references the blob calls MakePermanent with the
//     key and the CID. It is idempotent: when the permanent blob already
//     exists (a retry, or the same bytes uploaded twice) it succeeds
//     without change. Calling it before the write is acknowledged makes the
//     blob durable together with the record.
//   - Get and Has serve com.atproto.sync.getBlob; temporary blobs are never
//     reachable through them.
//   - Delete removes blobs no record references any more, DeleteAll an
//     account's every blob, and CleanTemp the uploads no record ever
//     referenced. The spec asks for at least an hour, and recommends
//     several, before an unreferenced upload is collected.
//
// # Implementations
//
// Disk, the default, keeps files under one directory. An upload is written
// to its temporary file and fsynced, with its directory, before PutTemp
// returns; MakePermanent is a rename followed by an fsync of the account's
// directory, so a blob referenced by an acknowledged record survives a
// power loss. All file access goes through an os.Root, and temporary keys
// are checked to be exactly what PutTemp issues (26 lower-case base32
// characters), so neither a key, a DID nor a planted symbolic link can
// reach outside the directory.
//
// S3 keeps objects in an S3-compatible object store (AWS S3, MinIO,
// Cloudflare R2, Backblaze B2 and the like) through the minio-go client,
// with the object layout of the reference PDS. Uploads are sent in parts
// of S3PartSize buffered in memory; MakePermanent is a server-side copy.
package blobstore
