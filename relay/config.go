package relay

import (
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultHost    = "127.0.0.1"
	DefaultPort    = 2470
	DefaultDataDir = "./data/relay"
	DefaultPLCURL  = "https://plc.directory"
	// DBFileName is the SQLite file inside DataDir.
	DBFileName = "relay.db"
	// EventsDir is the event log's directory inside DataDir.
	EventsDir = "events"
	// DefaultRetention is how long the relay's own stream can be replayed;
	// the reference relay keeps 72 hours.
	DefaultRetention = 72 * time.Hour
	// DefaultAccountLimit is how many accounts a new host may bring, as
	// the reference relay allows; the host policy (hostpolicy.go) raises
	// it as the host ages, and the operator may set it per host.
	DefaultAccountLimit = 100
	// TrustedAccountLimit is the account limit of --trusted-hosts.
	TrustedAccountLimit = 1 << 40
	// DefaultWorkers is how many DIDs of one host are handled in parallel.
	DefaultWorkers = 4
	// DefaultResyncWorkers is how many repositories are re-synchronized
	// at once.
	DefaultResyncWorkers = 4
	// DefaultMaxRepoSize bounds a repository fetched to re-synchronize
	// an account.
	DefaultMaxRepoSize = 256 << 20
)

// Config is the relay's configuration. The zero value of every field means
// its default.
type Config struct {
	Host string
	Port int
	// DataDir holds the SQLite database (DBFileName, unless DatabaseURL
	// is set) and the event log (EventsDir).
	DataDir string
	// DatabaseURL, a postgres:// URL, keeps host and account state in
	// PostgreSQL instead.
	DatabaseURL string
	// PLCURL is the did:plc directory used to resolve identities.
	PLCURL string
	// Hosts are subscribed to on start, as if they had asked to be
	// crawled; TrustedHosts too, with TrustedAccountLimit.
	Hosts        []string
	TrustedHosts []string
	// Retention is how long events stay in the log for replay.
	Retention time.Duration
	// AdminPassword enables the /admin/ routes (basic auth, user
	// "admin"); empty disables them.
	AdminPassword string
	// AllowInsecureHosts permits upstreams on loopback and private
	// addresses, with ports, over plain http and ws, and identity
	// resolution on private networks. Only for tests and devnet.
	AllowInsecureHosts bool
	// LenientInversion accepts #commit events whose ops fail the sync 1.1
	// inversion check against prevData (or that lack prevData), counting
	// them as accepted with their reason instead of refusing them. Signatures,
	// the authoritative host, the rev chain and the limits are still
	// enforced. Off by default: a relay should only pass on commits it
	// can prove.
	LenientInversion bool
	// AccountLimit is the account limit of new hosts, the base the host
	// policy multiplies as hosts age.
	AccountLimit int64
	// Workers is how many DIDs of one host are handled in parallel.
	Workers int
	// HostEventRate and HostEventBurst bound the events (#commit, #sync,
	// #identity, #account) of each host, as a token bucket: events a
	// second and the most that may come at once. Events over the limit
	// are rejected and counted ("rate-limited"). These are the limits of
	// a new host, which the host policy multiplies as hosts age.
	// TrustedHostEventRate and TrustedHostEventBurst apply to trusted
	// hosts instead. Zero means the Default value.
	HostEventRate         float64
	HostEventBurst        int
	TrustedHostEventRate  float64
	TrustedHostEventBurst int
	// ResyncWorkers is how many desynchronized repositories are fetched
	// at once, and MaxRepoSize the largest accepted (bytes).
	ResyncWorkers int
	MaxRepoSize   int64
	// Version is reported by /xrpc/_health.
	Version string

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// DBURL is the database the relay uses: DatabaseURL, or the SQLite file
// in DataDir.
func (c Config) DBURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	dir := c.DataDir
	if dir == "" {
		dir = DefaultDataDir
	}
	return filepath.Join(dir, DBFileName)
}

// Addr is the listen address.
func (c Config) Addr() string {
	host := c.Host
	if host == "" {
		host = DefaultHost
	}
	return fmt.Sprintf("%s:%d", host, c.Port)
}

func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.PLCURL == "" {
		c.PLCURL = DefaultPLCURL
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.AccountLimit <= 0 {
		c.AccountLimit = DefaultAccountLimit
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.HostEventRate <= 0 {
		c.HostEventRate = DefaultHostEventRate
	}
	if c.HostEventBurst <= 0 {
		c.HostEventBurst = DefaultHostEventBurst
	}
	if c.TrustedHostEventRate <= 0 {
		c.TrustedHostEventRate = DefaultTrustedHostEventRate
	}
	if c.TrustedHostEventBurst <= 0 {
		c.TrustedHostEventBurst = DefaultTrustedHostEventBurst
	}
	if c.ResyncWorkers <= 0 {
		c.ResyncWorkers = DefaultResyncWorkers
	}
	if c.MaxRepoSize <= 0 {
		c.MaxRepoSize = DefaultMaxRepoSize
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// EnvPrefix starts the names of the environment variables ConfigFromEnv
// reads: WELKIN_RELAY_HOST, _PORT, _DATA_DIR, _DATABASE_URL, _PLC_URL,
// _HOSTS, _TRUSTED_HOSTS (comma-separated), _RETENTION (a Go duration),
// _ADMIN_PASSWORD, _ALLOW_INSECURE_HOSTS (true/false), _ACCOUNT_LIMIT,
// _WORKERS.
const EnvPrefix = "WELKIN_RELAY_"

// ConfigFromEnv returns the defaults overridden by the WELKIN_RELAY_*
// variables that getenv (os.Getenv in practice) reports.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Host: DefaultHost, Port: DefaultPort, DataDir: DefaultDataDir, PLCURL: DefaultPLCURL,
		Retention: DefaultRetention, AccountLimit: DefaultAccountLimit, Workers: DefaultWorkers}
	var errs []string
	get := func(name string) (string, bool) {
		v := getenv(EnvPrefix + name)
		return v, v != ""
	}
	str := func(name string, dst *string) {
		if v, ok := get(name); ok {
			*dst = v
		}
	}
	num := func(name string, dst *int64) {
		if v, ok := get(name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s%s: %q is not an integer", EnvPrefix, name, v))
				return
			}
			*dst = n
		}
	}
	port, workers := int64(c.Port), int64(c.Workers)
	str("HOST", &c.Host)
	num("PORT", &port)
	str("DATA_DIR", &c.DataDir)
	str("DATABASE_URL", &c.DatabaseURL)
	str("PLC_URL", &c.PLCURL)
	if v, ok := get("HOSTS"); ok {
		c.Hosts = splitList(v)
	}
	if v, ok := get("TRUSTED_HOSTS"); ok {
		c.TrustedHosts = splitList(v)
	}
	if v, ok := get("RETENTION"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%sRETENTION: %q is not a duration", EnvPrefix, v))
		}
		c.Retention = d
	}
	str("ADMIN_PASSWORD", &c.AdminPassword)
	if v, ok := get("ALLOW_INSECURE_HOSTS"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%sALLOW_INSECURE_HOSTS: %q is not a boolean", EnvPrefix, v))
		}
		c.AllowInsecureHosts = b
	}
	if v, ok := get("LENIENT_INVERSION"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%sLENIENT_INVERSION: %q is not a boolean", EnvPrefix, v))
		}
		c.LenientInversion = b
	}
	num("ACCOUNT_LIMIT", &c.AccountLimit)
	num("WORKERS", &workers)
	rate := func(name string, dst *float64) {
		if v, ok := get(name); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				errs = append(errs, fmt.Sprintf("%s%s: %q is not a rate (events a second)", EnvPrefix, name, v))
				return
			}
			*dst = f
		}
	}
	rate("HOST_EVENT_RATE", &c.HostEventRate)
	rate("TRUSTED_HOST_EVENT_RATE", &c.TrustedHostEventRate)
	c.Port, c.Workers = int(port), int(workers)
	if len(errs) > 0 {
		return c, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return c, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// listFlag is a comma-separated flag.Value.
type listFlag struct{ dst *[]string }

func (f listFlag) String() string {
	if f.dst == nil {
		return ""
	}
	return strings.Join(*f.dst, ",")
}

func (f listFlag) Set(s string) error {
	*f.dst = append(*f.dst, splitList(s)...)
	return nil
}

// RegisterFlags defines the command-line flags on fs, with c's current
// values as defaults, writing into c when fs is parsed.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Host, "host", c.Host, "address to listen on")
	fs.IntVar(&c.Port, "port", c.Port, "port to listen on (0 picks a free one)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the event log and the SQLite database")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres:// URL for host and account state; overrides the SQLite file")
	fs.StringVar(&c.PLCURL, "plc-url", c.PLCURL, "PLC directory for resolving did:plc identities")
	fs.Var(listFlag{&c.Hosts}, "hosts", "comma-separated PDS hosts to subscribe to")
	fs.Var(listFlag{&c.TrustedHosts}, "trusted-hosts", "comma-separated PDS hosts to subscribe to, without an account limit")
	fs.DurationVar(&c.Retention, "retention", c.Retention, "how long events stay replayable from the relay's stream")
	fs.StringVar(&c.AdminPassword, "admin-password", c.AdminPassword, "password of the /admin/ routes (user admin); empty disables them")
	fs.BoolVar(&c.AllowInsecureHosts, "allow-insecure-hosts", c.AllowInsecureHosts, "allow loopback/private upstreams, ports and plain http/ws (tests and devnet only)")
	fs.BoolVar(&c.LenientInversion, "lenient-inversion", c.LenientInversion, "accept commits that fail the sync 1.1 inversion check, counting them (off: refuse them)")
	fs.Int64Var(&c.AccountLimit, "account-limit", c.AccountLimit, "accounts a new host may bring (grows with the host's age)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "DIDs of one host handled in parallel")
	fs.Float64Var(&c.HostEventRate, "host-event-rate", c.HostEventRate, "events a second a new host may send, growing with its age (0: default)")
	fs.Float64Var(&c.TrustedHostEventRate, "trusted-host-event-rate", c.TrustedHostEventRate, "events a second each trusted host may send (0: default)")
	fs.IntVar(&c.ResyncWorkers, "resync-workers", c.ResyncWorkers, "repositories re-synchronized at once (0: default)")
}
