// Package jetstream serves a relay's events as a Jetstream-compatible JSON
// stream (GET /subscribe), for consumers that want neither CBOR nor
// repository proofs. It matches Bluesky's Jetstream on the wire.
//
// # Events
//
// FromFrame turns one event of the relay's log into JSON events: a
// #commit gives one "commit" event per record operation (create, update
// or delete, with the collection, rkey, the commit's rev and, for creates
// and updates, the record in atproto JSON and its CID), an #identity an
// "identity" event and an #account an "account" event; #sync and other
// types give none. Every event has a time_us, its time in Unix
// microseconds, which increases strictly along the stream: the log times
// each record (eventlog.Options.Span, with Span here) so that the i-th op
// of a commit can take the record's time plus i, and the same event gets
// the same time_us on every connection and every replay.
//
// # Subscribing
//
// The query parameters are Jetstream's: wantedCollections (repeated, NSIDs
// or prefixes such as app.bsky.feed.*, at most 100), wantedDids (repeated,
// at most 10,000), maxMessageSizeBytes, cursor (Unix microseconds: replay
// every retained event at or after that time, then go live; a cursor
// older than the log replays all of it, one in the future is live only),
// compress=true or a "Socket-Encoding: zstd" header (each message is then
// one binary zstd frame compressed with Jetstream's published dictionary,
// Dictionary), and requireHello=true (hold the stream until the first
// options_update). Bad parameters are answered 400 with Jetstream's
// messages. Identity and account events pass every collection filter.
// A subscriber may send {"type": "options_update", "payload": {...}} text
// messages to replace its filters; a malformed one closes the connection.
//
// # Serving
//
// One goroutine follows the log (while anyone listens), converts each new
// record once and queues the encoded events to every subscriber that
// wants them; compressed forms are made once, on first need. A subscriber
// whose queue is full is dropped (closed with status 1008,
// ConsumerTooSlow), as subscribeRepos drops one. A replay reads the log
// from the cursor's position (eventlog.Log.SeekTime), registers for live
// events, replays what was logged meanwhile, then goes live, skipping
// what it already sent, so nothing is missed or repeated.
package jetstream
