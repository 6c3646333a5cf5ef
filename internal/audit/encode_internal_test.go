package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// stdJSON is what encoding/json writes for v, without HTML escaping.
func stdJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func TestQuoteMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr", "\x00\x01\x1f\x7f",
		"<html> & 'x'", "héllo wörld ✓ 🎉", "bad \xff utf8 \xc3", "sep \u2028 \u2029",
	} {
		e := &encoder{}
		e.quote(s)
		if got, want := string(e.b), stdJSON(t, s); got != want {
			t.Errorf("quote(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, -0.0, 1, -1.5, 0.1, 1e-7, 1.234e-7, 1e20, 1e21, 1.5e300, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.125} {
		e := &encoder{}
		if err := e.float(f, 64); err != nil {
			t.Fatal(err)
		}
		if got, want := string(e.b), stdJSON(t, f); got != want {
			t.Errorf("float(%v, 64) = %s, want %s", f, got, want)
		}
		e = &encoder{}
		if err := e.float(float64(float32(f)), 32); err != nil {
			if !math.IsInf(float64(float32(f)), 0) {
				t.Fatal(err)
			}
			continue
		}
		if got, want := string(e.b), stdJSON(t, float32(f)); got != want {
			t.Errorf("float(%v, 32) = %s, want %s", float32(f), got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if err := (&encoder{}).float(f, 64); err == nil {
			t.Errorf("float(%v) succeeded, want an error", f)
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "\u2028", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := &encoder{}
		e.quote(s)
		if got, want := string(e.b), stdJSON(t, s); got != want {
			t.Fatalf("quote(%q) = %s, want %s", s, got, want)
		}
		if isJSONNumber(s) != (s != "" && json.Valid([]byte(s)) && s[0] != '"' && s[0] != '[' && s[0] != '{' && s != "true" && s != "false" && s != "null" && s[0] > ' ' && s[len(s)-1] > ' ') {
			t.Fatalf("isJSONNumber(%q) = %v, disagrees with encoding/json", s, isJSONNumber(s))
		}
	})
}
