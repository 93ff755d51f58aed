package relay

import (
	"testing"
)

// FuzzParseLimitsRequest: any body gives a checked request or an error,
// and a checked request holds only limits the store accepts.
func FuzzParseLimitsRequest(f *testing.F) {
	for _, s := range []string{
		`{"hostname": "pds.example.com", "accountLimit": 5}`,
		`{"hostname": "pds.example.com", "eventRate": 2.5, "eventBurst": 10}`,
		`{"hostname": "x", "eventRate": -1}`,
		`{"hostname": "x", "eventRate": 1e400}`,
		`{"hostname": "x", "accountLimit": 1} {}`,
		`{"hostname": "x", "nope": 1}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseLimitsRequest(body)
		if err != nil {
			return
		}
		if req.Hostname == "" || (req.AccountLimit == nil && req.EventRate == nil && req.EventBurst == nil) {
			t.Fatalf("accepted an empty request: %+v", req)
		}
		if req.AccountLimit != nil && *req.AccountLimit < 0 {
			t.Fatalf("accepted account limit %d", *req.AccountLimit)
		}
		if req.EventRate != nil && (!(*req.EventRate >= 0) || *req.EventRate > maxEventRate) {
			t.Fatalf("accepted event rate %v", *req.EventRate)
		}
		if req.EventBurst != nil && (*req.EventBurst < 0 || *req.EventBurst > 1<<31) {
			t.Fatalf("accepted event burst %d", *req.EventBurst)
		}
	})
}
