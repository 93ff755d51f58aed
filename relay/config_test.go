package relay

import (
	"flag"
	"slices"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"WELKIN_RELAY_PORT":                    "9999",
		"WELKIN_RELAY_HOSTS":                   "a.example.com, b.example.com,",
		"WELKIN_RELAY_TRUSTED_HOSTS":           "t.example.com",
		"WELKIN_RELAY_RETENTION":               "1h",
		"WELKIN_RELAY_ALLOW_INSECURE_HOSTS":    "true",
		"WELKIN_RELAY_ADMIN_PASSWORD":          "pw",
		"WELKIN_RELAY_HOST_EVENT_RATE":         "12.5",
		"WELKIN_RELAY_TRUSTED_HOST_EVENT_RATE": "900",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9999 || !slices.Equal(c.Hosts, []string{"a.example.com", "b.example.com"}) ||
		!slices.Equal(c.TrustedHosts, []string{"t.example.com"}) || c.Retention != time.Hour ||
		!c.AllowInsecureHosts || c.AdminPassword != "pw" || c.DataDir != DefaultDataDir ||
		c.HostEventRate != 12.5 || c.TrustedHostEventRate != 900 {
		t.Fatalf("config = %+v", c)
	}
	for k, v := range map[string]string{"WELKIN_RELAY_PORT": "x", "WELKIN_RELAY_RETENTION": "soon", "WELKIN_RELAY_ALLOW_INSECURE_HOSTS": "maybe",
		"WELKIN_RELAY_HOST_EVENT_RATE": "fast", "WELKIN_RELAY_TRUSTED_HOST_EVENT_RATE": "-1"} {
		if _, err := ConfigFromEnv(func(n string) string {
			if n == k {
				return v
			}
			return ""
		}); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	c := Config{}
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	c.RegisterFlags(fs)
	err := fs.Parse([]string{"--port", "1234", "--hosts", "a.example.com,b.example.com", "--hosts", "c.example.com",
		"--retention", "2h", "--allow-insecure-hosts", "--database-url", "postgres://x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 1234 || len(c.Hosts) != 3 || c.Retention != 2*time.Hour || !c.AllowInsecureHosts || c.DBURL() != "postgres://x" {
		t.Fatalf("config = %+v", c)
	}
	if (Config{DataDir: "/d"}).DBURL() != "/d/relay.db" {
		t.Fatal("DBURL of SQLite")
	}
}
