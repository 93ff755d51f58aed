package store

import (
	"errors"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// ErrNotFound is returned for a host or account the store does not hold.
var ErrNotFound = errors.New("relay store: not found")

// ErrInvalidCursor is returned for a listing cursor the store did not give.
var ErrInvalidCursor = errors.New("relay store: invalid cursor")

// Host statuses (com.atproto.sync.defs#hostStatus, as far as a relay sets
// them itself).
const (
	HostActive    = "active"
	HostBlocked   = "blocked"
	HostThrottled = "throttled"
	HostIdle      = "idle"
	HostOffline   = "offline"
)

// ValidHostStatus reports whether s is a host status the store accepts.
func ValidHostStatus(s string) bool {
	switch s {
	case HostActive, HostBlocked, HostThrottled, HostIdle, HostOffline:
		return true
	}
	return false
}

// Account statuses (the "status" of #account events; StatusActive for an
// active account).
const (
	StatusActive      = "active"
	StatusDeactivated = "deactivated"
	StatusTakendown   = "takendown"
	StatusSuspended   = "suspended"
	StatusDeleted     = "deleted"
)

// Listing bounds.
const (
	DefaultListLimit = 500
	MaxListLimit     = 1000
)

// Host is one upstream host.
type Host struct {
	// ID orders hosts by when they were added; listings page by it.
	ID       int64
	Hostname string
	// NoTLS marks a development host reached over plain http and ws.
	NoTLS bool
	// Trusted hosts were configured by the operator (--trusted-hosts).
	Trusted bool
	Status  string
	// Cursor is the last upstream seq whose outcome is durable at the
	// relay; a restart resumes after it. 0 before the first event.
	Cursor int64
	// Accepted and Rejected count the host's events passed on and
	// refused.
	Accepted int64
	Rejected int64
	// AccountLimit, EventRate (events a second) and EventBurst are the
	// operator's limits for the host; 0 leaves each to the relay's host
	// policy, which grows them with the host's age and behaviour.
	AccountLimit int64
	EventRate    float64
	EventBurst   int64
	// FirstSeen is when the relay first accepted an event of the host;
	// zero before that.
	FirstSeen time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Account is one repository the relay has seen.
type Account struct {
	DID  syntax.DID
	Host string
	// Status is StatusActive or another account status.
	Status string
	// Rev, Data and Commit describe the last accepted commit; empty
	// before the first.
	Rev    string
	Data   string
	Commit string
	// Desync is set when the chain of commits broke and the repository
	// was not re-synchronized since.
	Desync bool
	// TakenDown marks a takedown by the relay's operator, kept apart
	// from Status, which is what the account's host says: an upstream
	// #account event does not lift it.
	TakenDown bool
	UpdatedAt time.Time
}

// Active reports whether the account's events may be passed on: it is
// not taken down here and its host says it is active.
func (a *Account) Active() bool {
	return !a.TakenDown && (a.Status == "" || a.Status == StatusActive)
}

// HostingStatus is the status the relay reports for the account:
// StatusTakendown for a local takedown, else the host's status.
func (a *Account) HostingStatus() string {
	switch {
	case a.TakenDown:
		return StatusTakendown
	case a.Status == "":
		return StatusActive
	}
	return a.Status
}
