package pds

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func defaultFlagConfig() Config {
	return Config{
		Host:        DefaultHost,
		Port:        DefaultPort,
		DataDir:     DefaultDataDir,
		PLCURL:      DefaultPLCURL,
		MaxBlobSize: DefaultMaxBlobSize,
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		edit func(*Config)
	}{
		{"empty", nil, func(*Config) {}},
		{"everything", map[string]string{
			"WELKIN_PDS_HOSTNAME":        "pds.example.com",
			"WELKIN_PDS_HOST":            "0.0.0.0",
			"WELKIN_PDS_PORT":            "3000",
			"WELKIN_PDS_PUBLIC_URL":      "https://pds.example.com",
			"WELKIN_PDS_DATA_DIR":        "/var/lib/pds",
			"WELKIN_PDS_DATABASE_URL":    "postgres://db/pds",
			"WELKIN_PDS_PLC_URL":         "http://plc.local",
			"WELKIN_PDS_HANDLE_DOMAINS":  ".example.com, .example.org,,",
			"WELKIN_PDS_RELAY_HOSTS":     "bsky.network",
			"WELKIN_PDS_ADMIN_PASSWORD":  "hunter2",
			"WELKIN_PDS_INVITE_REQUIRED": "true",
			"WELKIN_PDS_MAX_BLOB_SIZE":   "1000",
			"WELKIN_PDS_S3_URL":          "s3://a:b@s3.local/bucket",
			"WELKIN_PDS_SMTP_URL":        "smtp://u:p@mail.local:587",
			"WELKIN_PDS_EMAIL_FROM":      "pds@example.com",
			"WELKIN_PDS_RATE_LIMITS":     "1",
		}, func(c *Config) {
			c.Hostname = "pds.example.com"
			c.Host = "0.0.0.0"
			c.Port = 3000
			c.PublicURL = "https://pds.example.com"
			c.DataDir = "/var/lib/pds"
			c.DatabaseURL = "postgres://db/pds"
			c.PLCURL = "http://plc.local"
			c.HandleDomains = []string{".example.com", ".example.org"}
			c.RelayHosts = []string{"bsky.network"}
			c.AdminPassword = "hunter2"
			c.InviteRequired = true
			c.MaxBlobSize = 1000
			c.S3URL = "s3://a:b@s3.local/bucket"
			c.SMTPURL = "smtp://u:p@mail.local:587"
			c.EmailFrom = "pds@example.com"
			c.RateLimits = true
		}},
		{"explicit false", map[string]string{"WELKIN_PDS_INVITE_REQUIRED": "false", "WELKIN_PDS_RATE_LIMITS": "0"}, func(*Config) {}},
		{"other prefixes ignored", map[string]string{"WELKIN_PLC_PORT": "1", "WELKIN_PDS_PORTS": "2"}, func(*Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(envFrom(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			want := defaultFlagConfig()
			tt.edit(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"PORT", "http"},
		{"MAX_BLOB_SIZE", "5MB"},
		{"MAX_BLOB_SIZE", "-1"},
		{"INVITE_REQUIRED", "yes please"},
		{"RATE_LIMITS", "on"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := ConfigFromEnv(envFrom(map[string]string{EnvPrefix + tt.name: tt.value}))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), EnvPrefix+tt.name) || !strings.Contains(err.Error(), tt.value) {
				t.Fatalf("error %q does not name the variable and its value", err)
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	env := map[string]string{
		"WELKIN_PDS_HOSTNAME":       "env.example.com",
		"WELKIN_PDS_PORT":           "4000",
		"WELKIN_PDS_HANDLE_DOMAINS": ".env.example",
		"WELKIN_PDS_RATE_LIMITS":    "true",
		"WELKIN_PDS_ADMIN_PASSWORD": "from-env",
	}
	tests := []struct {
		name    string
		args    []string
		edit    func(*Config)
		wantErr string
	}{
		{"environment kept without flags", nil, func(*Config) {}, ""},
		{"flags override", []string{
			"--hostname", "flag.example.com",
			"--host", "::1",
			"--port", "5000",
			"--public-url", "https://flag.example.com",
			"--data-dir", "/tmp/x",
			"--database-url", "postgres://flag",
			"--plc-url", "http://plc.flag",
			"--handle-domains", ".a.example,.b.example",
			"--relay-hosts", "relay1.example, relay2.example",
			"--admin-password", "from-flag",
			"--invite-required",
			"--max-blob-size", "42",
			"--s3-url", "s3://k:s@host/b",
			"--smtp-url", "smtp://host",
			"--email-from", "me@flag.example",
			"--rate-limits=false",
		}, func(c *Config) {
			c.Hostname = "flag.example.com"
			c.Host = "::1"
			c.Port = 5000
			c.PublicURL = "https://flag.example.com"
			c.DataDir = "/tmp/x"
			c.DatabaseURL = "postgres://flag"
			c.PLCURL = "http://plc.flag"
			c.HandleDomains = []string{".a.example", ".b.example"}
			c.RelayHosts = []string{"relay1.example", "relay2.example"}
			c.AdminPassword = "from-flag"
			c.InviteRequired = true
			c.MaxBlobSize = 42
			c.S3URL = "s3://k:s@host/b"
			c.SMTPURL = "smtp://host"
			c.EmailFrom = "me@flag.example"
			c.RateLimits = false
		}, ""},
		{"list flag replaces the environment's list", []string{"--handle-domains=.x.example"}, func(c *Config) {
			c.HandleDomains = []string{".x.example"}
		}, ""},
		{"bad size", []string{"--max-blob-size", "big"}, nil, "max-blob-size"},
		{"negative size", []string{"--max-blob-size", "-5"}, nil, "max-blob-size"},
		{"bad port", []string{"--port", "eighty"}, nil, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(envFrom(env))
			if err != nil {
				t.Fatal(err)
			}
			fs := flag.NewFlagSet("pds", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.RegisterFlags(fs)
			err = fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaultFlagConfig()
			want.Hostname = "env.example.com"
			want.Port = 4000
			want.HandleDomains = []string{".env.example"}
			want.RateLimits = true
			want.AdminPassword = "from-env"
			tt.edit(&want)
			if !reflect.DeepEqual(c, want) {
				t.Fatalf("got  %+v\nwant %+v", c, want)
			}
		})
	}
}

func TestRegisterFlagsListsEveryFlag(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("pds", flag.ContinueOnError)
	c.RegisterFlags(fs)
	for _, name := range []string{"hostname", "host", "port", "data-dir", "database-url", "plc-url",
		"handle-domains", "relay-hosts", "admin-password", "invite-required", "max-blob-size",
		"s3-url", "smtp-url", "email-from", "rate-limits", "public-url"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s is not defined", name)
		}
	}
}
