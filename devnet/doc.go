// Package devnet runs a whole atproto network on loopback, in one process:
// Welkin's PLC directory, a PDS and a relay following that PDS today, the
// AppView when it arrives. It is what "welkin devnet" runs, and what tests use when they
// need a network to talk to.
//
// # Design
//
//   - Services talk to each other only over HTTP, by URL, exactly as
//     independent hosts would: the PDS creates did:plc identities by
//     posting to the PLC directory's URL, never through a Go call. What
//     works on the devnet therefore works across machines.
//   - Each service has a fixed place in a list (its name, its port offset
//     from Config.PortBase, its health path and how to start it), so a new
//     service is one more entry. Service i listens on 127.0.0.1 at
//     PortBase+offset and is published as http://localhost:PORT; the PDS's
//     hostname is "localhost" and its accounts take handles under ".test".
//   - Everything lives in Config.DataDir: one subdirectory per service, the
//     generated admin password of the PDS, and the manifest, devnet.json.
//     A restart with the same data directory and port base continues where
//     the last run stopped. Since the DID documents of the accounts name the
//     PDS's URL, a restart with another port base is refused.
//   - The manifest ({"services": {name: URL}, "accounts": [{"handle",
//     "did", "password"}]}) is written atomically once every service
//     answers its health check, so a script that sees it may use the
//     network. Seed creates alice.test, bob.test and carol.test, with
//     random passwords, through the PDS's public XRPC API as any client
//     would, and gives each a profile, two posts and a follow; the
//     accounts are created once, and later runs keep the manifest's list.
//   - The relay (PortBase+2) follows the PDS from its first event and
//     serves the network's firehose, verified and re-sequenced; it runs
//     with AllowInsecureHosts, since its upstream and the identities are
//     on loopback over plain HTTP. The PDS names it in RelayHosts, so it
//     also asks the relay to crawl it, as a PDS asks bsky.network.
//   - Start returns once the network is healthy (and seeded); it runs until
//     the context passed to Start is done or Close is called, then stops
//     serving and closes every store, services in reverse order.
package devnet
