package data

import "testing"

func TestJSONInteropValid(t *testing.T) {
	for _, v := range loadJSONVectors(t, "data-model-valid.json") {
		m, err := ParseJSON(v.JSON)
		if err != nil {
			t.Errorf("%s: ParseJSON: %v", v.Note, err)
			continue
		}
		out, err := MarshalJSON(m)
		if err != nil {
			t.Errorf("%s: MarshalJSON: %v", v.Note, err)
			continue
		}
		back, err := ParseJSON(out)
		if err != nil || !jsonValueEqual(m, back) {
			t.Errorf("%s: round trip: %v\n%s", v.Note, err, out)
		}
	}
}

func TestJSONInteropInvalid(t *testing.T) {
	for _, v := range loadJSONVectors(t, "data-model-invalid.json") {
		if m, err := ParseJSON(v.JSON); err == nil {
			t.Errorf("%s: ParseJSON accepted %s as %#v", v.Note, v.JSON, m)
		} else {
			t.Logf("%s: %v", v.Note, err)
		}
	}
}
