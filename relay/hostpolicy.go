package relay

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The host policy decides how many accounts each upstream host may bring
// and how many events a second it may send. A host the relay has just met
// starts small and grows in steps with its age (since its first accepted
// event) as long as few of its events are rejected; the operator can mark
// hosts trusted (--trusted-hosts) or set a host's limits outright, and
// either wins over the steps. Every limit comes with a sentence saying
// why, shown to the host's operator on the status page.
//
// The numbers start where the reference relay (indigo's cmd/relay) keeps a
// host that asked to be crawled: 100 accounts and 50 events a second (its
// per-second limit grows by one per thousand accounts, beside hourly and
// daily caps of 2,500 + accounts and 20,000 + 10 x accounts). Its hosts
// stay there until an operator raises them by hand, which is the most
// common complaint of people who run their own PDS. Here they grow by
// themselves: the base values are Config.AccountLimit, HostEventRate and
// HostEventBurst, multiplied per step:
//
//	step         seen for   accounts   events/s   burst
//	new          -          100        50         500
//	established  24 h       1,000      100        1,000
//	proven       7 days     10,000     250        2,500
//	veteran      30 days    100,000    500        5,000
//	trusted      -          unlimited  5,000      50,000
//
// Behaviour is judged on the host's events of the last 24 hours, once
// there are at least 100 of them: with 1% or more rejected for faults of
// the host (bad signatures, malformed frames; not rate limiting, account
// limits, replays or the relay's own identity look-up failures) a host is
// held one step below its age, with 10% or more at the first step, until
// the share falls again.
type policyStep struct {
	name     string
	minAge   time.Duration
	accounts int64   // times Config.AccountLimit
	rate     float64 // times Config.HostEventRate and HostEventBurst
}

var policySteps = []policyStep{
	{"new", 0, 1, 1},
	{"established", 24 * time.Hour, 10, 2},
	{"proven", 7 * 24 * time.Hour, 100, 5},
	{"veteran", 30 * 24 * time.Hour, 1000, 10},
}

// Behaviour thresholds of the host policy.
const (
	// behaviourWindow is the span a host's behaviour is judged over.
	behaviourWindow = 24 * time.Hour
	// minJudgedEvents: a host with fewer events in the window is not
	// judged (one bad event of three says little).
	minJudgedEvents = 100
	// cleanShare: a host with a smaller share of rejected events grows
	// with its age.
	cleanShare = 0.01
	// badShare: a host with this share or more is held at the first step.
	badShare = 0.10
	// policyInterval: a running host's limits are computed again this
	// often, besides when its first event is accepted, when the operator
	// changes them, and when its status is read.
	policyInterval = time.Minute
)

// stepTrusted is the step name of trusted hosts, beside policySteps'.
const stepTrusted = "trusted"

// hostPolicy holds the base limits the steps multiply.
type hostPolicy struct {
	accounts     int64
	rate         float64
	burst        int
	trustedRate  float64
	trustedBurst int
}

func newHostPolicy(c Config) hostPolicy {
	return hostPolicy{accounts: c.AccountLimit, rate: c.HostEventRate, burst: c.HostEventBurst,
		trustedRate: c.TrustedHostEventRate, trustedBurst: c.TrustedHostEventBurst}
}

// hostFacts is what the policy knows of a host.
type hostFacts struct {
	Now       time.Time
	Trusted   bool
	FirstSeen time.Time // zero: no event accepted yet
	// The operator's overrides; 0 for none.
	AccountLimit int64
	EventRate    float64
	EventBurst   int64
	// The host's events in the behaviour window: accepted plus rejected
	// for its faults, the latter, and the most common fault.
	Events, Faults int64
	TopFault       string
}

// hostLimits are a host's effective limits, each with its reason.
type hostLimits struct {
	Step           string
	Accounts       int64
	AccountsReason string
	Rate           float64
	Burst          int
	RateReason     string
}

// limits applies the policy to f.
func (p hostPolicy) limits(f hostFacts) hostLimits {
	var l hostLimits
	var age time.Duration
	if !f.FirstSeen.IsZero() {
		age = max(f.Now.Sub(f.FirstSeen), 0)
	}
	ageStep := 0
	for i, s := range policySteps {
		if !f.FirstSeen.IsZero() && age >= s.minAge {
			ageStep = i
		}
	}
	share := 0.0
	judged := f.Events >= minJudgedEvents
	if judged {
		share = float64(f.Faults) / float64(f.Events)
	}
	step := ageStep
	switch {
	case share >= badShare:
		step = 0
	case share >= cleanShare:
		step = max(0, ageStep-1)
	}
	cur := policySteps[step]
	l.Step = cur.name
	if f.Trusted {
		l.Step = stepTrusted
	}

	// Where the host stands, and what would make it grow.
	var who string
	switch {
	case f.FirstSeen.IsZero():
		who = "new host (no event accepted yet)"
	case ageStep == 0:
		who = "new host (first seen " + humanDuration(age) + " ago)"
	default:
		who = "host first seen " + humanDuration(age) + " ago"
	}
	held := ""
	if share >= cleanShare {
		held = fmt.Sprintf(", but %s of its %s events in the last %s were rejected (most often %s)",
			percent(share), groupDigits(f.Events), humanDuration(behaviourWindow), f.TopFault)
	}
	next := func(unit func(policyStep) string) string {
		switch {
		case share >= cleanShare && step < ageStep:
			return fmt.Sprintf("; back to %s once under %s of its events are rejected", unit(policySteps[ageStep]), percent(cleanShare))
		case share >= cleanShare:
			return fmt.Sprintf("; it grows only while under %s of its events are rejected", percent(cleanShare))
		case step+1 < len(policySteps):
			n := policySteps[step+1]
			return fmt.Sprintf("; grows to %s once seen for %s with under %s of its events rejected",
				unit(n), humanDuration(n.minAge), percent(cleanShare))
		default:
			return "; the highest step for hosts that are not trusted"
		}
	}

	// Accounts.
	accounts := func(s policyStep) string { return countOf(p.accounts*s.accounts, "account") }
	switch {
	case f.AccountLimit > 0:
		l.Accounts = f.AccountLimit
		l.AccountsReason = "set by admin: " + countOf(l.Accounts, "account")
	case f.Trusted:
		l.Accounts = TrustedAccountLimit
		l.AccountsReason = "trusted host (configured by the operator): no account limit"
	default:
		l.Accounts = p.accounts * cur.accounts
		l.AccountsReason = who + held + ": " + accounts(cur) + next(accounts)
	}

	// Events.
	rateOf := func(s policyStep) string { return rateText(p.rate * s.rate) }
	burstNote := func(b int) string {
		if f.EventBurst > 0 {
			return " (bursts of " + groupDigits(int64(b)) + ", set by admin)"
		}
		return " (bursts of " + groupDigits(int64(b)) + ")"
	}
	switch {
	case f.EventRate > 0:
		l.Rate = f.EventRate
		l.Burst = max(1, int(min(f.EventRate*float64(p.burst)/p.rate, 1<<31)))
	case f.Trusted:
		l.Rate, l.Burst = p.trustedRate, p.trustedBurst
	default:
		l.Rate = p.rate * cur.rate
		l.Burst = max(1, int(float64(p.burst)*cur.rate))
	}
	if f.EventBurst > 0 {
		l.Burst = int(min(f.EventBurst, 1<<31))
	}
	switch {
	case f.EventRate > 0:
		l.RateReason = "set by admin: " + rateText(l.Rate) + burstNote(l.Burst)
	case f.Trusted:
		l.RateReason = "trusted host (configured by the operator): " + rateText(l.Rate) + burstNote(l.Burst)
	default:
		l.RateReason = who + held + ": " + rateOf(cur) + burstNote(l.Burst) + next(rateOf)
	}
	return l
}

// faultReason reports whether a rejection counts against the host's
// behaviour. Rate limiting and account limits are the policy's own doing,
// a duplicate rev is a replay, an inactive, taken down or desynchronized
// account is the relay's view, and an identity that could not be resolved
// may be the directory's fault; every other rejection is a fault of what
// the host sent.
func faultReason(reason string) bool {
	switch reason {
	case reasonRateLimited, reasonAccountLimit, reasonTakendown, reasonDesynchronized,
		"duplicate-rev", "inactive-account", "no-identity":
		return false
	}
	return true
}

// humanDuration writes d roughly, for people: "40 s", "12 min", "5 h",
// "3 days".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
}

// rateText writes an event rate: "50 events/s", "0.5 events/s".
func rateText(r float64) string {
	if r == float64(int64(r)) && r < 1e15 {
		if r == 1 {
			return "1 event/s"
		}
		return groupDigits(int64(r)) + " events/s"
	}
	return strconv.FormatFloat(r, 'g', 3, 64) + " events/s"
}

// countOf writes "1 account", "1,000 accounts".
func countOf(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return groupDigits(n) + " " + noun + "s"
}

// accountsText writes an account limit; the trusted one is no limit.
func accountsText(n int64) string {
	if n >= TrustedAccountLimit {
		return "unlimited"
	}
	return countOf(n, "account")
}

// percent writes a share as a percentage: "1%", "3.2%", "23%".
func percent(f float64) string {
	p := f * 100
	if p >= 10 {
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
	return strings.TrimSuffix(strconv.FormatFloat(p, 'f', 1, 64), ".0") + "%"
}

// groupDigits writes n with thousands separators: 1234567 -> "1,234,567".
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
