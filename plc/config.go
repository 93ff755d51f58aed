package plc

import (
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultHost    = "127.0.0.1"
	DefaultPort    = 2580
	DefaultDataDir = "./data/plc"
	// DBFileName is the SQLite file inside DataDir.
	DBFileName = "plc.db"
)

// Per-DID operation rate limits of the reference directory
// (packages/server/src/constraints.ts): a new operation is refused when
// the DID already has this many active operations in the window. Recovery
// operations are exempt.
const (
	DefaultOpsPerHour = 10
	DefaultOpsPerDay  = 30
	DefaultOpsPerWeek = 100
)

// Config is the directory's configuration. The zero value of every field
// means its default.
type Config struct {
	Host string
	Port int
	// DataDir holds the SQLite database (DBFileName) unless DatabaseURL
	// is set.
	DataDir string
	// DatabaseURL, a postgres:// URL, selects PostgreSQL instead.
	DatabaseURL string
	// OpsPerHour, OpsPerDay and OpsPerWeek bound the operations one DID
	// may submit; zero means the default, a negative value no limit.
	OpsPerHour int
	OpsPerDay  int
	OpsPerWeek int
	// Version is reported by /_health.
	Version string

	// StreamBuffer is how many events a /export/stream consumer may fall
	// behind before it is dropped (default 500, as the reference).
	StreamBuffer int
	// StreamCatchup is how far back a stream cursor may reach (default 7
	// days, as the reference).
	StreamCatchup time.Duration
	// StreamPoll is how often the stream looks for operations written by
	// other processes sharing the database (default 1s); operations this
	// process accepts are sent at once.
	StreamPoll time.Duration

	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
	// Logger receives the structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// DBURL is the database the directory uses: DatabaseURL, or the SQLite
// file in DataDir.
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
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.OpsPerHour, DefaultOpsPerHour)
	def(&c.OpsPerDay, DefaultOpsPerDay)
	def(&c.OpsPerWeek, DefaultOpsPerWeek)
	def(&c.StreamBuffer, 500)
	if c.StreamCatchup == 0 {
		c.StreamCatchup = 7 * 24 * time.Hour
	}
	if c.StreamPoll == 0 {
		c.StreamPoll = time.Second
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
// reads: WELKIN_PLC_HOST, _PORT, _DATA_DIR, _DATABASE_URL,
// _OPS_PER_HOUR, _OPS_PER_DAY, _OPS_PER_WEEK.
const EnvPrefix = "WELKIN_PLC_"

// ConfigFromEnv returns the defaults overridden by the WELKIN_PLC_*
// variables that getenv (os.Getenv in practice) reports.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Host: DefaultHost, Port: DefaultPort, DataDir: DefaultDataDir}
	str := func(name string, dst *string) {
		if v := getenv(EnvPrefix + name); v != "" {
			*dst = v
		}
	}
	var err error
	num := func(name string, dst *int) {
		v := getenv(EnvPrefix + name)
		if v == "" || err != nil {
			return
		}
		n, perr := strconv.Atoi(v)
		if perr != nil {
			err = fmt.Errorf("%s%s: %q is not an integer", EnvPrefix, name, v)
			return
		}
		*dst = n
	}
	str("HOST", &c.Host)
	num("PORT", &c.Port)
	str("DATA_DIR", &c.DataDir)
	str("DATABASE_URL", &c.DatabaseURL)
	num("OPS_PER_HOUR", &c.OpsPerHour)
	num("OPS_PER_DAY", &c.OpsPerDay)
	num("OPS_PER_WEEK", &c.OpsPerWeek)
	return c, err
}

// RegisterFlags defines the command-line flags on fs, with c's current
// values as defaults, writing into c when fs is parsed.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Host, "host", c.Host, "address to listen on")
	fs.IntVar(&c.Port, "port", c.Port, "port to listen on (0 picks a free one)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the SQLite database")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres:// URL; overrides --data-dir")
	fs.IntVar(&c.OpsPerHour, "ops-per-hour", c.OpsPerHour, "operations one DID may submit per hour (0 default, <0 no limit)")
	fs.IntVar(&c.OpsPerDay, "ops-per-day", c.OpsPerDay, "operations one DID may submit per day (0 default, <0 no limit)")
	fs.IntVar(&c.OpsPerWeek, "ops-per-week", c.OpsPerWeek, "operations one DID may submit per week (0 default, <0 no limit)")
}
