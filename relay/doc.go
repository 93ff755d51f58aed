// Package relay is Welkin's relay: it subscribes to the
// com.atproto.sync.subscribeRepos streams of PDS hosts, checks every event
// as the sync specification asks, re-sequences the accepted ones into a
// durable log and serves them as its own subscribeRepos stream.
//
// # Ingestion
//
// Each upstream host has a subscriber (ingest.go) that consumes its stream
// with atproto/stream.Subscribe, handling the events of one DID in order
// and different DIDs in parallel. A #commit or #sync is parsed and checked
// with relay/verify against the account's identity (atproto/identity,
// cached; refreshed once when a signature or host check fails) and the
// state the relay keeps for it in relay/store. #identity purges the cached
// identity; #account records the hosting status. Events of accounts that
// are not active are dropped, except #account and #identity, and every
// event must come from the account's current host. Accepted events get
// new seqs and are written, re-encoded with them, to relay/eventlog by one
// sequencer goroutine (group commit), then published to the consumers.
// The host's upstream cursor is saved in the store after its events are
// durable in the log, so that a restart resumes each upstream where it
// stopped; an event replayed after a crash is refused as a duplicate rev.
//
// # Serving
//
// The relay serves subscribeRepos from the log, and from the same log a
// Jetstream-compatible JSON stream at /subscribe (relay/jetstream: one
// JSON event per record operation, filtered by collection and DID, with
// a microsecond time cursor; the log gives each op of a commit a time of
// its own, eventlog.Options.Span). From the store it serves
// com.atproto.sync.listRepos, getRepoStatus, getLatestCommit, listHosts,
// getHostStatus, and requestCrawl, which checks a host (hostname rules,
// SSRF-safe client, a describeServer answer) before subscribing to it.
// Operators add, block and unblock hosts, set a host's limits and list
// every host's state with /admin/ routes under HTTP basic auth
// (admin:PASSWORD), and read counters at /metrics.
//
// # Hosts
//
// Each host has an account limit and an event rate limit (a token
// bucket), set by the host policy (hostpolicy.go): a new host starts at
// the reference relay's numbers and its limits grow in steps with its
// age while few of its events are rejected for its own faults; trusted
// hosts and limits set by the operator win. Each limit carries a reason
// in words. The relay keeps in memory each host's behaviour over the last
// day, its rejections by reason and the latest ones, and its connection;
// it reconnects to a host with a jittered exponential backoff that only a
// healthy connection resets. GET / and GET /status?host=NAME (and
// /status.json) show all of it to the host's operator, without login.
package relay
