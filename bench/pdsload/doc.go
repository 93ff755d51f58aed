// Command pdsload measures Welkin's PDS beside the reference TypeScript PDS
// under the same write load, on one machine in one run.
//
//	cd bench && go run ./pdsload [-duration 30s] [-accounts 1000] [-readme README.md]
//
// It builds the welkin binary from the repository (or takes -welkin) and
// runs "welkin plc" and "welkin pds" as subprocesses on loopback with
// SQLite in a temporary directory; the reference PLC directory and PDS
// come from the reference stack (../../shared/reference-stack, or
// -reference). Both run at once, but only one is under load at a time:
// they take turns phase by phase, so that a change in the machine's other
// load while the figures are taken falls on both alike. Each gets the same
// treatment:
//
//   - -accounts accounts are created through
//     com.atproto.server.createAccount by 8 concurrent clients, in rounds
//     of 100 (the sign-up rate is reported too);
//   - the resident memory (VmRSS of /proc/PID/status) of the PDS process is
//     read at rest: after the sign-ups and -rest (90 s) without requests,
//     once the count has stopped moving; again right after the load; and
//     once more after -idle (90 s) with no requests;
//   - for each concurrency level (-clients, default 1, 16 and 64) that many
//     clients, each on an account of its own, call
//     com.atproto.repo.createRecord (a small post) back to back for
//     -duration after a short warm-up, and the rate of successful writes
//     and the median and 99th percentile latency are recorded.
//
// The load generator runs in this process, on the same cores as the
// server under test, for both servers alike; -cpuprofile writes its own
// CPU profile, to see what it takes from the server. The table goes to
// stdout and, with -readme, between the pdsload markers of that file.
package main
