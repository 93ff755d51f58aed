package pds

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// EnvPrefix starts the names of the environment variables ConfigFromEnv
// reads: WELKIN_PDS_HOSTNAME, _HOST, _PORT, _PUBLIC_URL, _DATA_DIR,
// _DATABASE_URL, _PLC_URL, _HANDLE_DOMAINS, _RELAY_HOSTS, _ADMIN_PASSWORD,
// _INVITE_REQUIRED, _MAX_BLOB_SIZE, _S3_URL, _SMTP_URL, _EMAIL_FROM and
// _RATE_LIMITS.
const EnvPrefix = "WELKIN_PDS_"

// ConfigFromEnv returns the defaults overridden by the WELKIN_PDS_*
// variables that getenv (os.Getenv in practice) reports. Lists
// (_HANDLE_DOMAINS, _RELAY_HOSTS) are comma-separated; booleans
// (_INVITE_REQUIRED, _RATE_LIMITS) take the forms strconv.ParseBool
// accepts ("1", "true", "0", "false", ...). The first malformed value is
// reported by name.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Host:        DefaultHost,
		Port:        DefaultPort,
		DataDir:     DefaultDataDir,
		PLCURL:      DefaultPLCURL,
		MaxBlobSize: DefaultMaxBlobSize,
	}
	var err error
	fail := func(name, v, want string) {
		if err == nil {
			err = fmt.Errorf("%s%s: %q is not %s", EnvPrefix, name, v, want)
		}
	}
	str := func(name string, dst *string) {
		if v := getenv(EnvPrefix + name); v != "" {
			*dst = v
		}
	}
	list := func(name string, dst *[]string) {
		if v := getenv(EnvPrefix + name); v != "" {
			*dst = splitList(v)
		}
	}
	num := func(name string, dst *int) {
		v := getenv(EnvPrefix + name)
		if v == "" {
			return
		}
		n, perr := strconv.Atoi(strings.TrimSpace(v))
		if perr != nil {
			fail(name, v, "an integer")
			return
		}
		*dst = n
	}
	num64 := func(name string, dst *int64) {
		v := getenv(EnvPrefix + name)
		if v == "" {
			return
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if perr != nil || n < 0 {
			fail(name, v, "a non-negative integer")
			return
		}
		*dst = n
	}
	boolean := func(name string, dst *bool) {
		v := getenv(EnvPrefix + name)
		if v == "" {
			return
		}
		b, perr := strconv.ParseBool(strings.TrimSpace(v))
		if perr != nil {
			fail(name, v, "a boolean (true or false)")
			return
		}
		*dst = b
	}
	str("HOSTNAME", &c.Hostname)
	str("HOST", &c.Host)
	num("PORT", &c.Port)
	str("PUBLIC_URL", &c.PublicURL)
	str("DATA_DIR", &c.DataDir)
	str("DATABASE_URL", &c.DatabaseURL)
	str("PLC_URL", &c.PLCURL)
	list("HANDLE_DOMAINS", &c.HandleDomains)
	list("RELAY_HOSTS", &c.RelayHosts)
	str("ADMIN_PASSWORD", &c.AdminPassword)
	boolean("INVITE_REQUIRED", &c.InviteRequired)
	num64("MAX_BLOB_SIZE", &c.MaxBlobSize)
	str("S3_URL", &c.S3URL)
	str("SMTP_URL", &c.SMTPURL)
	str("EMAIL_FROM", &c.EmailFrom)
	boolean("RATE_LIMITS", &c.RateLimits)
	return c, err
}

// RegisterFlags defines the command-line flags on fs, with c's current
// values as defaults, writing into c when fs is parsed. Calling
// ConfigFromEnv first and RegisterFlags on its result makes flags override
// the environment.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Hostname, "hostname", c.Hostname, "public host name of the PDS (required), such as pds.example.com or localhost")
	fs.StringVar(&c.Host, "host", c.Host, "address to listen on")
	fs.IntVar(&c.Port, "port", c.Port, "port to listen on")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "URL clients reach the PDS at (default https://HOSTNAME, or http://localhost:PORT)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the PDS's files")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres:// URL for the account tables (repositories stay in --data-dir)")
	fs.StringVar(&c.PLCURL, "plc-url", c.PLCURL, "PLC directory URL")
	fs.Var((*listFlag)(&c.HandleDomains), "handle-domains", "comma-separated `list` of handle suffixes offered to new accounts (default .HOSTNAME)")
	fs.Var((*listFlag)(&c.RelayHosts), "relay-hosts", "comma-separated `list` of relays asked to crawl this PDS")
	fs.StringVar(&c.AdminPassword, "admin-password", c.AdminPassword, "password of the admin API; empty disables it (prefer the environment variable)")
	fs.BoolVar(&c.InviteRequired, "invite-required", c.InviteRequired, "require an invite code to create an account")
	fs.Var((*sizeFlag)(&c.MaxBlobSize), "max-blob-size", "largest blob an account may upload, in `bytes`")
	fs.StringVar(&c.S3URL, "s3-url", c.S3URL, "s3://ACCESS:SECRET@host/bucket to keep blobs in S3 instead of --data-dir")
	fs.StringVar(&c.SMTPURL, "smtp-url", c.SMTPURL, "smtp://user:pass@host:port for email; empty writes messages to the log")
	fs.StringVar(&c.EmailFrom, "email-from", c.EmailFrom, "sender address of emails")
	fs.BoolVar(&c.RateLimits, "rate-limits", c.RateLimits, "apply the reference PDS's rate limits")
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// listFlag is a comma-separated list flag. Setting it replaces the list,
// so a flag overrides the environment rather than adding to it.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listFlag) Set(s string) error {
	*l = splitList(s)
	return nil
}

// sizeFlag is a non-negative byte count.
type sizeFlag int64

func (s *sizeFlag) String() string {
	if s == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*s), 10)
}

func (s *sizeFlag) Set(v string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a non-negative number of bytes", v)
	}
	*s = sizeFlag(n)
	return nil
}
