// Command relayload measures Welkin's relay under the load of simulated
// PDS hosts, and sets indigo's #commit verification path beside Welkin's
// on the same events, in one run.
//
//	cd bench && go run ./relayload [-hosts 10] [-accounts 50] [-events 200] [-readme README.md]
package main
