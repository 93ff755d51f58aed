package relay

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	jitter := 0.0
	b := &backoff{min: time.Second, max: time.Minute, healthy: 30 * time.Second, jitter: func() float64 { return jitter }}
	// A host that fails at once, again and again: the delay doubles up
	// to the cap. With no jitter the delay is half the step.
	var got []time.Duration
	for range 9 {
		got = append(got, b.next(0))
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
	// Short connections (garbage after a few frames) do not reset it.
	if d := b.next(29 * time.Second); d != 30*time.Second || b.failures != 10 {
		t.Errorf("after a short connection: %v, %d failures", d, b.failures)
	}
	// A healthy connection does.
	if d := b.next(30 * time.Second); d != 500*time.Millisecond || b.failures != 1 {
		t.Errorf("after a healthy connection: %v, %d failures", d, b.failures)
	}
	// Full jitter reaches the whole step.
	jitter = 0.999999
	if d := b.next(0); d < 1999*time.Millisecond || d > 2*time.Second {
		t.Errorf("jittered second delay = %v, want just under 2s", d)
	}
	// Many failures neither overflow nor pass the cap.
	for range 200 {
		if d := b.next(0); d <= 0 || d > time.Minute {
			t.Fatalf("delay after %d failures = %v", b.failures, d)
		}
	}
	// The defaults.
	d := newBackoff()
	if d.min != reconnectMinDelay || d.max != reconnectMaxDelay || d.healthy != reconnectHealthy {
		t.Errorf("newBackoff = %+v", d)
	}
	if first := d.next(0); first < reconnectMinDelay/2 || first > reconnectMinDelay {
		t.Errorf("first default delay = %v", first)
	}
}

func TestUpgradeWatcher(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			w.WriteHeader(http.StatusSwitchingProtocols)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer ts.Close()
	ups := 0
	c := watchUpgrades(ts.Client(), func() { ups++ })
	for _, path := range []string{"/down", "/up"} {
		resp, err := c.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if ups != 1 {
		t.Errorf("%d upgrades reported, want 1", ups)
	}
	if _, ok := ts.Client().Transport.(upgradeWatcher); ok {
		t.Error("the original client was changed")
	}
}
