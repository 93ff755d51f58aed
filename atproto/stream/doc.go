// Package stream implements atproto event streams: the wire format of
// frames, a WebSocket server for one stream endpoint, and a reconnecting
// consumer.
//
// # Frames
//
// Every binary WebSocket message is a frame of two concatenated DAG-CBOR
// objects: a header {op: 1, t: "#commit"} (or {op: -1} for an error) and a
// payload map. EncodeFrame and EncodeErrorFrame write frames; DecodeFrame
// splits one strictly, returning the body as bytes for the caller to decode
// into its own type (data.UnmarshalCBORInto, or generated types).
//
// # Server
//
// A Server serves one endpoint. Events are sequenced and appended to a Log
// (MemLog is an in-memory ring for tests and small services), then handed
// to Publish, encoded once: the same byte slice is queued to every live
// consumer. Each consumer has a bounded queue; one that falls behind is
// sent a ConsumerTooSlow error frame and disconnected, costing nothing but
// its own queue. The events waiting for a consumer go out in one write,
// and with ServerOptions.FlushDelay a consumer lets events gather for that
// long first, trading a little latency for far fewer system calls. The cursor query parameter replays from the Log: events
// with seq greater than the cursor, then live events with no gap or
// duplicate (the connection replays, registers for live events, replays
// again what was logged meanwhile, and skips live events it already sent).
// cursor=0 replays everything retained, an older cursor than the retained
// window gets an #info OutdatedCursor frame first, and a cursor above the
// latest seq gets a FutureCursor error frame. Connections are pinged, and
// Shutdown closes them with status 1001 so consumers reconnect.
//
// # Consumer
//
// Subscribe reads a stream, reconnecting with jittered exponential backoff
// and resuming after the last seq received. OnCursor reports the seq up to
// which every message has been handled, for persistence. With Workers > 1
// a Dispatcher handles messages in parallel across keys (RepoKey: the
// account DID) and in order within one key, as the sync spec asks.
package stream
