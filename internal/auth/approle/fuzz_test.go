package approle

import (
	"errors"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
)

// FuzzParseMetadata feeds arbitrary strings to the secret ID metadata
// parser (the JSON-in-a-string form the Vault CLI sends; seeded from
// testdata/fuzz): no panics, every failure a 400, and what it accepts is
// within the bounds.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{
		`{"team":"blue"}`, `{}`, `{"a":1}`, `{"role_name":"x"}`, `[]`, `null`, `"x"`, ``, `{"":""}`,
		`{"a":"b","a":"c"}`, `{"a":{"b":"c"}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMetadata(s)
		if err != nil {
			var ire *logical.InvalidRequestError
			if !errors.As(err, &ire) {
				t.Fatalf("parseMetadata(%q) error %T %v, want a 400", s, err, err)
			}
			return
		}
		if len(m) > maxMetadataKeys {
			t.Fatalf("parseMetadata(%q) accepted %d keys", s, len(m))
		}
		for k, v := range m {
			if k == "" || k == "role_name" || len(k) > maxMetadataKeyLen || len(v) > maxMetadataValLen {
				t.Fatalf("parseMetadata(%q) accepted %q=%q", s, k, v)
			}
		}
	})
}
