package relay

import (
	"strings"
	"testing"
	"time"
)

func testPolicy() hostPolicy {
	return newHostPolicy(Config{}.withDefaults())
}

func TestHostPolicySteps(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seen := func(ago time.Duration) time.Time { return now.Add(-ago) }
	day := 24 * time.Hour
	for _, tc := range []struct {
		name       string
		f          hostFacts
		step       string
		accounts   int64
		rate       float64
		burst      int
		accountsIn []string // substrings of the account limit's reason
		rateIn     []string // substrings of the event limit's reason
	}{
		{
			name: "never seen", f: hostFacts{},
			step: "new", accounts: 100, rate: 50, burst: 500,
			accountsIn: []string{"new host (no event accepted yet): 100 accounts", "grows to 1,000 accounts once seen for 24 h with under 1% of its events rejected"},
			rateIn:     []string{"new host (no event accepted yet): 50 events/s (bursts of 500)", "grows to 100 events/s once seen for 24 h"},
		},
		{
			name: "two hours old", f: hostFacts{FirstSeen: seen(2 * time.Hour)},
			step: "new", accounts: 100, rate: 50, burst: 500,
			rateIn: []string{"new host (first seen 2 h ago): 50 events/s"},
		},
		{
			name: "a day old", f: hostFacts{FirstSeen: seen(25 * time.Hour), Events: 5000, Faults: 10},
			step: "established", accounts: 1000, rate: 100, burst: 1000,
			rateIn: []string{"host first seen 25 h ago: 100 events/s (bursts of 1,000)", "grows to 250 events/s once seen for 7 days"},
		},
		{
			name: "eight days old", f: hostFacts{FirstSeen: seen(8 * day)},
			step: "proven", accounts: 10000, rate: 250, burst: 2500,
			accountsIn: []string{"host first seen 8 days ago: 10,000 accounts", "grows to 100,000 accounts once seen for 30 days"},
		},
		{
			name: "a month old", f: hostFacts{FirstSeen: seen(45 * day)},
			step: "veteran", accounts: 100000, rate: 500, burst: 5000,
			rateIn: []string{"500 events/s", "the highest step for hosts that are not trusted"},
		},
		{
			name: "too few events to judge", f: hostFacts{FirstSeen: seen(45 * day), Events: 99, Faults: 50, TopFault: "bad-signature"},
			step: "veteran", accounts: 100000, rate: 500, burst: 5000,
		},
		{
			name: "some faults: one step down", f: hostFacts{FirstSeen: seen(45 * day), Events: 1000, Faults: 20, TopFault: "wrong-key"},
			step: "proven", accounts: 10000, rate: 250, burst: 2500,
			rateIn: []string{"but 2% of its 1,000 events in the last 24 h were rejected (most often wrong-key): 250 events/s", "back to 500 events/s once under 1% of its events are rejected"},
		},
		{
			name: "many faults: back to the first step", f: hostFacts{FirstSeen: seen(45 * day), Events: 1000, Faults: 150, TopFault: "bad-cbor"},
			step: "new", accounts: 100, rate: 50, burst: 500,
			rateIn: []string{"15% of its 1,000 events", "bad-cbor", ": 50 events/s", "back to 500 events/s"},
		},
		{
			name: "a new host with faults", f: hostFacts{FirstSeen: seen(time.Hour), Events: 200, Faults: 100, TopFault: "bad-did"},
			step: "new", accounts: 100, rate: 50, burst: 500,
			rateIn: []string{"50% of its 200 events", "it grows only while under 1% of its events are rejected"},
		},
		{
			name: "trusted", f: hostFacts{Trusted: true, Events: 1000, Faults: 500},
			step: stepTrusted, accounts: TrustedAccountLimit, rate: 5000, burst: 50000,
			accountsIn: []string{"trusted host"}, rateIn: []string{"trusted host (configured by the operator): 5,000 events/s (bursts of 50,000)"},
		},
		{
			name: "set by admin", f: hostFacts{FirstSeen: seen(time.Hour), AccountLimit: 5000, EventRate: 7},
			step: "new", accounts: 5000, rate: 7, burst: 70,
			accountsIn: []string{"set by admin: 5,000 accounts"}, rateIn: []string{"set by admin: 7 events/s (bursts of 70)"},
		},
		{
			name: "admin over trusted", f: hostFacts{Trusted: true, AccountLimit: 3, EventRate: 0.5, EventBurst: 4},
			step: stepTrusted, accounts: 3, rate: 0.5, burst: 4,
			accountsIn: []string{"set by admin: 3 accounts"}, rateIn: []string{"set by admin: 0.5 events/s (bursts of 4, set by admin)"},
		},
		{
			name: "admin burst only", f: hostFacts{FirstSeen: seen(25 * time.Hour), EventBurst: 9},
			step: "established", accounts: 1000, rate: 100, burst: 9,
			rateIn: []string{"100 events/s (bursts of 9, set by admin)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Now = now
			l := testPolicy().limits(tc.f)
			if l.Step != tc.step || l.Accounts != tc.accounts || l.Rate != tc.rate || l.Burst != tc.burst {
				t.Errorf("limits = %s, %d accounts, %v/s, burst %d; want %s, %d, %v, %d",
					l.Step, l.Accounts, l.Rate, l.Burst, tc.step, tc.accounts, tc.rate, tc.burst)
			}
			for _, want := range tc.accountsIn {
				if !strings.Contains(l.AccountsReason, want) {
					t.Errorf("account limit reason %q lacks %q", l.AccountsReason, want)
				}
			}
			for _, want := range tc.rateIn {
				if !strings.Contains(l.RateReason, want) {
					t.Errorf("event limit reason %q lacks %q", l.RateReason, want)
				}
			}
		})
	}
}

// TestHostPolicyGrows follows one clean host through its first month:
// its limits never shrink and reach the top step.
func TestHostPolicyGrows(t *testing.T) {
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := testPolicy()
	var last hostLimits
	steps := map[string]bool{}
	for h := 0; h <= 31*24; h++ {
		l := p.limits(hostFacts{Now: first.Add(time.Duration(h) * time.Hour), FirstSeen: first, Events: 10000, Faults: 50})
		if l.Rate < last.Rate || l.Accounts < last.Accounts || l.Burst < last.Burst {
			t.Fatalf("hour %d: limits shrank from %+v to %+v", h, last, l)
		}
		steps[l.Step] = true
		last = l
	}
	for _, s := range policySteps {
		if !steps[s.name] {
			t.Errorf("step %s never reached", s.name)
		}
	}
	if last.Step != "veteran" {
		t.Errorf("after a month the step is %s", last.Step)
	}
}

// TestHostPolicyBase: the steps multiply the configured base values.
func TestHostPolicyBase(t *testing.T) {
	p := newHostPolicy(Config{AccountLimit: 10, HostEventRate: 2, HostEventBurst: 3}.withDefaults())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := p.limits(hostFacts{Now: now, FirstSeen: now.Add(-8 * 24 * time.Hour)})
	if l.Accounts != 1000 || l.Rate != 10 || l.Burst != 15 {
		t.Errorf("proven step with base 10/2/3 = %d, %v, %d; want 1000, 10, 15", l.Accounts, l.Rate, l.Burst)
	}
	// A first seen time ahead of the clock counts as just seen.
	l = p.limits(hostFacts{Now: now, FirstSeen: now.Add(time.Hour)})
	if l.Step != "new" || !strings.Contains(l.RateReason, "first seen 0 s ago") {
		t.Errorf("future first seen: %s, %q", l.Step, l.RateReason)
	}
}

func TestFaultReason(t *testing.T) {
	for reason, want := range map[string]bool{
		reasonRateLimited: false, reasonAccountLimit: false, "duplicate-rev": false, "inactive-account": false,
		"no-identity": false, "bad-signature": true, "wrong-key": true, reasonBadFrame: true, "frame-too-large": true,
	} {
		if got := faultReason(reason); got != want {
			t.Errorf("faultReason(%q) = %v", reason, got)
		}
	}
}

func TestPolicyText(t *testing.T) {
	for got, want := range map[string]string{
		groupDigits(0):                    "0",
		groupDigits(999):                  "999",
		groupDigits(1000):                 "1,000",
		groupDigits(-1234567):             "-1,234,567",
		humanDuration(30 * time.Second):   "30 s",
		humanDuration(59 * time.Minute):   "59 min",
		humanDuration(47 * time.Hour):     "47 h",
		humanDuration(72 * time.Hour):     "3 days",
		percent(0.01):                     "1%",
		percent(0.0325):                   "3.2%",
		percent(0.5):                      "50%",
		rateText(1):                       "1 event/s",
		rateText(5000):                    "5,000 events/s",
		rateText(0.25):                    "0.25 events/s",
		countOf(1, "account"):             "1 account",
		countOf(100000, "account"):        "100,000 accounts",
		truncate("short", 10):             "short",
		truncate("ééééé", 6):              "é…",
		truncate("abcdefghijkl", 8):       "abcde…",
		accountsText(TrustedAccountLimit): "unlimited",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
