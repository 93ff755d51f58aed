package pds

import (
	"strings"
	"testing"
	"time"

	"github.com/welkin-atproto/welkin/atproto/crypto"
	"github.com/welkin-atproto/welkin/atproto/data"
	"github.com/welkin-atproto/welkin/atproto/plc"
)

func TestWithHandle(t *testing.T) {
	cases := []struct {
		in   []string
		want string
	}{
		{nil, "at://new.test"},
		{[]string{"at://old.test"}, "at://new.test"},
		{[]string{"https://example.com", "at://old.test", "at://older.test"}, "https://example.com at://new.test at://older.test"},
		{[]string{"https://example.com"}, "at://new.test https://example.com"},
	}
	for _, tc := range cases {
		in := append([]string{}, tc.in...)
		got := strings.Join(withHandle(tc.in, "new.test"), " ")
		if got != tc.want {
			t.Errorf("withHandle(%v) = %s, want %s", tc.in, got, tc.want)
		}
		if strings.Join(in, " ") != strings.Join(tc.in, " ") {
			t.Errorf("withHandle changed its input")
		}
	}
}

func TestGenesisOp(t *testing.T) {
	rot, _ := crypto.GenerateK256()
	sig, _ := crypto.GenerateK256()
	s := &Server{cfg: Config{PublicURL: "https://pds.example.com"}, keys: &serverKeys{rotation: rot}}
	op, did, err := s.genesisOp("alice.example.com", sig.Public(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(did), "did:plc:") || len(did) != len("did:plc:")+24 {
		t.Errorf("did %s", did)
	}
	// The directory accepts it as the first operation of did.
	if _, err := plc.AssimilateOp(did, nil, op, time.Now()); err != nil {
		t.Errorf("genesis refused: %v", err)
	}
	if err := plc.CheckNewOpLimits(op); err != nil {
		t.Errorf("genesis over the limits: %v", err)
	}
	d, err := plc.DataForOp(did, op)
	if err != nil {
		t.Fatal(err)
	}
	if d.VerificationMethods["atproto"] != sig.Public().DIDKey() || d.Services["atproto_pds"].Endpoint != "https://pds.example.com" ||
		len(d.RotationKeys) != 1 || d.RotationKeys[0] != rot.Public().DIDKey() || d.AlsoKnownAs[0] != "at://alice.example.com" {
		t.Errorf("genesis data %+v", d)
	}
}

func FuzzPLCOpInputs(f *testing.F) {
	f.Add([]byte(`{"atproto":"did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}`))
	f.Add([]byte(`{"atproto_pds":{"type":"AtprotoPersonalDataServer","endpoint":"https://pds.example.com"}}`))
	f.Add([]byte(`{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null,"sig":"abc"}`))
	f.Add([]byte(`[1,2,{"x":null}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := data.DecodeJSON(b)
		if err != nil {
			return
		}
		if m, err := verificationMethodsValue(v); err == nil {
			for k, key := range m {
				if k == "" || !strings.HasPrefix(key, "did:key:") {
					t.Fatalf("accepted verification method %q: %q", k, key)
				}
			}
		}
		if m, err := servicesValue(v); err == nil {
			for k := range m {
				if k == "" {
					t.Fatal("accepted a service without an id")
				}
			}
		}
		if op, err := parseSubmittedOp(v); err == nil {
			if op.Sig == "" {
				t.Fatal("accepted an unsigned operation")
			}
			if _, err := op.MarshalJSON(); err != nil {
				t.Fatalf("accepted operation does not encode: %v", err)
			}
		}
	})
}
