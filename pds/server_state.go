package pds

import "sync"

// acctState is the state that the account, session, email and rate-limit
// code keeps per Server: the mailer and the in-memory rate limiters.
type acctState struct {
	limits *rateLimits

	mu   sync.Mutex
	mail mailer
}

// mailer returns the mailer in use.
func (a *acctState) mailer() mailer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mail
}

// setMailer replaces the mailer (tests capture messages with it).
func (a *acctState) setMailer(m mailer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mail = m
}

// newAcctState builds the state for a server configured with cfg.
func newAcctState(cfg Config) *acctState {
	return &acctState{
		mail:   newMailer(cfg),
		limits: newRateLimits(cfg.Now),
	}
}

// acctStates holds the acctState of each Server until the Server struct
// carries it as a field of its own (made in New), which is where it
// belongs; the lookup then becomes a field access.
var acctStates sync.Map // *Server -> *acctState

// acct returns the server's account state, creating it on first use.
func (s *Server) acct() *acctState {
	if st, ok := acctStates.Load(s); ok {
		return st.(*acctState)
	}
	st, _ := acctStates.LoadOrStore(s, newAcctState(s.cfg))
	return st.(*acctState)
}
