package pds

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/welkin-atproto/welkin/atproto/syntax"
)

// Defaults for Config fields left zero.
const (
	DefaultHost    = "127.0.0.1"
	DefaultPort    = 2583
	DefaultDataDir = "./data/pds"
	DefaultPLCURL  = "https://plc.directory"
	// DefaultMaxBlobSize bounds one uploaded blob. The reference PDS
	// defaults to 5 MB for images; video needs more, so Welkin allows
	// 50 MB unless configured otherwise.
	DefaultMaxBlobSize = 50 << 20
	// ServiceDBFile is the service database inside DataDir (unless
	// DatabaseURL is set); ActorsDir holds one directory per account;
	// BlobsDir holds blob bytes; SequencerFile is the firehose log.
	ServiceDBFile = "service.sqlite"
	ActorsDir     = "actors"
	BlobsDir      = "blobs"
	SequencerFile = "sequencer.sqlite"
)

// Config is the PDS's configuration. The zero value of every field means
// its default, except Hostname, which is required.
type Config struct {
	// Hostname is the public host name of the PDS ("pds.example.com", or
	// "localhost" for development). Required.
	Hostname string
	// Host and Port are the listen address.
	Host string
	Port int
	// PublicURL is the URL at which clients and other services reach the
	// PDS; it goes into DID documents. Default "https://" + Hostname, or
	// "http://localhost:PORT" when Hostname is localhost.
	PublicURL string
	// ServiceDID is the PDS's own DID; default "did:web:" + Hostname (with
	// the port percent-encoded for localhost).
	ServiceDID string
	// DataDir holds every file of the PDS.
	DataDir string
	// DatabaseURL, a postgres:// URL, puts the service tables (accounts,
	// credentials, tokens) in PostgreSQL instead of DataDir. Repository data
	// always stays in one SQLite file per account.
	DatabaseURL string
	// PLCURL is the PLC directory that creates and resolves did:plc.
	PLCURL string
	// HandleDomains are the suffixes (with a leading dot, ".example.com")
	// under which accounts may take handles. Default "." + Hostname.
	HandleDomains []string
	// RelayHosts are sent com.atproto.sync.requestCrawl on start and when
	// accounts are created ("https://bsky.network" or "bsky.network").
	RelayHosts []string
	// AdminPassword enables the admin API (basic auth "admin:PASSWORD");
	// empty disables it.
	AdminPassword string
	// InviteRequired makes createAccount demand an invite code.
	InviteRequired bool
	// MaxBlobSize bounds one uploaded blob.
	MaxBlobSize int64
	// S3 selects an S3-compatible blob store instead of the disk under
	// DataDir: "s3://ACCESS:SECRET@host[:port]/bucket?region=R&path-style=true".
	S3URL string
	// SMTPURL sends email ("smtp://user:pass@host:port"); when empty the
	// messages (confirmation and reset tokens) are written to the log.
	SMTPURL   string
	EmailFrom string
	// RateLimits turns on the reference PDS's rate limits.
	RateLimits bool
	// AllowPrivateNetworks lets identity resolution and outbound requests
	// reach loopback and private addresses, and allows did:web:localhost.
	// Only for devnet and tests.
	AllowPrivateNetworks bool
	// Version is reported by /xrpc/_health.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Hostname == "" {
		return c, fmt.Errorf("pds: a hostname is required")
	}
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.PLCURL == "" {
		c.PLCURL = DefaultPLCURL
	}
	c.PLCURL = strings.TrimRight(c.PLCURL, "/")
	local := c.Hostname == "localhost"
	if c.PublicURL == "" {
		if local {
			c.PublicURL = "http://localhost:" + strconv.Itoa(c.Port)
		} else {
			c.PublicURL = "https://" + c.Hostname
		}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.ServiceDID == "" {
		if local {
			c.ServiceDID = "did:web:localhost%3A" + strconv.Itoa(c.Port)
		} else {
			c.ServiceDID = "did:web:" + c.Hostname
		}
	}
	if _, err := syntax.ParseDID(c.ServiceDID); err != nil {
		return c, fmt.Errorf("pds: service DID: %w", err)
	}
	if len(c.HandleDomains) == 0 {
		c.HandleDomains = []string{"." + c.Hostname}
	}
	for i, d := range c.HandleDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if !strings.HasPrefix(d, ".") {
			d = "." + d
		}
		c.HandleDomains[i] = d
	}
	if c.MaxBlobSize == 0 {
		c.MaxBlobSize = DefaultMaxBlobSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c, nil
}

// Addr is the listen address.
func (c Config) Addr() string {
	host, port := c.Host, c.Port
	if host == "" {
		host = DefaultHost
	}
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ServiceDBURL is the service database: DatabaseURL, or the SQLite file in
// DataDir.
func (c Config) ServiceDBURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return filepath.Join(c.DataDir, ServiceDBFile)
}
