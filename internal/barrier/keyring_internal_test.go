package barrier

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestKeyringJSON: the hand-written encoder produces exactly what
// encoding/json would, so the documented JSON is what is stored.
func TestKeyringJSON(t *testing.T) {
	docs := []keyringJSON{
		{Version: 1, ActiveTerm: 1, Terms: []termJSON{{Term: 1, Key: bytes.Repeat([]byte{0xFB}, KeySize), InstallTime: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)}}},
		{Version: 1, ActiveTerm: 4294967295, Terms: []termJSON{
			{Term: 1, Key: bytes.Repeat([]byte{1}, KeySize), InstallTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Encryptions: 3_860_000_000},
			{Term: 4294967295, Key: bytes.Repeat([]byte{0xFF}, KeySize), InstallTime: time.Date(9999, 12, 31, 23, 59, 59, 1, time.FixedZone("x", 3600)), Encryptions: 18446744073709551615},
		}},
		{Version: 1, Terms: []termJSON{}},
	}
	for _, doc := range docs {
		want, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendKeyringJSON(nil, &doc)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("appendKeyringJSON = %s, %v\nwant %s", got, err, want)
		}
	}
	bad := keyringJSON{Version: 1, Terms: []termJSON{{Term: 1, InstallTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	if _, err := appendKeyringJSON(nil, &bad); err == nil {
		t.Error("appendKeyringJSON(year 10000) = nil error")
	}
}
