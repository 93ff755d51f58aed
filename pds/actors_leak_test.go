package pds

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestAccountStoresCloseWhenIdle creates accounts through the API and
// checks that nothing keeps their stores borrowed afterwards: once idle,
// every one of them can be closed, so a PDS at rest holds no account
// database open.
func TestAccountStoresCloseWhenIdle(t *testing.T) {
	p := newTestPDS(t, nil)
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := fmt.Sprintf("idle%d.test", i)
			in := map[string]any{"handle": h, "email": h + "@example.com", "password": "idle-password"}
			var out map[string]any
			if status, name := p.call("POST", "com.atproto.server.createAccount", "", nil, in, &out); status != http.StatusOK {
				t.Errorf("createAccount %s: %d %s", h, status, name)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.srv.actors.closeIdle(time.Now().Add(time.Hour))
		n := p.srv.actors.openCount()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d account stores still open (borrowed) after the accounts went idle", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
