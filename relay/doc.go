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
// are not active (at their host, or taken down here) are dropped, except
// #account and #identity, and every event must come from the account's
// current host. The events of one account are handled under its lock
// (didlock.go), which its re-sync and its takedown take too.
//
// Accepted events get new seqs and are written, re-encoded with them, to
// relay/eventlog by one sequencer goroutine (group commit); the account
// states they bring are then stored in one transaction with the batch's
// last seq, and only then are the events published to live consumers, so
// that getLatestCommit and getRepoStatus do not lag the live stream. On
// start, the #commit, #sync and #account events logged after that seq (a
// crash between the log and the store) are replayed into the account
// states (recover.go). The host's upstream cursor is saved after its
// events' states are stored, so that a restart resumes each upstream
// where it stopped, and a commit replayed after a crash is refused as a
// duplicate rev instead of being logged twice.
//
// # Re-synchronization
//
// A #commit whose since or prevData does not continue the account's last
// accepted commit, or an authentic one that cannot be applied (its ops do
// not invert to its prevData), is dropped and the account marked
// desynchronized. As the sync specification asks of a repository out of
// sync, its later #commit events are checked and dropped (counted as
// "desynchronized") until a worker (resync.go, resync_fetch.go) has
// fetched its repository with com.atproto.sync.getRepo from the PDS its
// DID document names, within a size limit and a timeout, and verified it
// in full (every block, the commit's DID and signature, the whole tree).
// A repository newer than the account's state becomes the state and is
// announced with a #sync event holding just its signed commit; an older
// one is refused, so a rev never goes back. Fetches are bounded in all
// and per host, hosts take turns, failures are retried with backoff, and
// outcomes are counted. A #sync from the host also ends the
// desynchronization.
//
// # Local takedowns
//
// The operator takes accounts down and restores them with /admin/repos/
// routes (takedown.go). A takedown is stored apart from the host's status,
// so that the host's #account events do not lift it, and announced as
// #account {active: false, status: "takendown"}; the account's #commit and
// #sync events are then dropped. Restoring announces the host's status.
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
// Operators add, block and unblock hosts, set a host's limits, list every
// host's state and take accounts down with /admin/ routes under HTTP
// basic auth (admin:PASSWORD), and read counters at /metrics.
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
