package fileenc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

// benchYAML is a 10,000-value YAML file: 100 services of 100 settings,
// each service with a comment.
func benchYAML() string {
	var b strings.Builder
	for s := range 100 {
		fmt.Fprintf(&b, "service%03d:\n    # settings for service %d\n", s, s)
		for k := range 100 {
			fmt.Fprintf(&b, "    key%03d: value-%d-%d-%s\n", k, s, k, strings.Repeat("y", 5+(s*k)%25))
		}
	}
	return b.String()
}

// benchJSON is a JSON file of about 5 MB: users with strings, numbers,
// booleans and lists.
func benchJSON() string {
	var b strings.Builder
	b.WriteString("{\n  \"users\": {")
	for i := 0; b.Len() < 5_000_000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n    \"user%06d\": {\n      \"id\": %d,\n      \"name\": \"Name %d %s\",\n      \"email\": \"user%d@example.com\",\n      \"active\": %t,\n      \"score\": %g,\n      \"tags\": [\"a\", \"b\", \"t%d\"]\n    }",
			i, i, i, strings.Repeat("x", 5+i%35), i, i%2 == 0, float64(i)*1.25, i)
	}
	b.WriteString("\n  }\n}\n")
	return b.String()
}

func benchEncrypt(b *testing.B, plain string, f fileenc.Format) {
	k := loadTestKey(b, 1)
	opts := ageOpts(k)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		doc, err := fileenc.ParsePlain([]byte(plain), f)
		if err != nil {
			b.Fatal(err)
		}
		if err := (&fileenc.Keys{}).Encrypt(context.Background(), doc, opts); err != nil {
			b.Fatal(err)
		}
		if _, err := doc.Emit(f); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecrypt(b *testing.B, plain string, f fileenc.Format) {
	k := loadTestKey(b, 1)
	enc := cofferEncrypt(b, plain, f, ageOpts(k))
	keys := keysFor(k)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := decrypt(enc, f, keys); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptYAML10k(b *testing.B) { benchEncrypt(b, benchYAML(), fileenc.FormatYAML) }
func BenchmarkDecryptYAML10k(b *testing.B) { benchDecrypt(b, benchYAML(), fileenc.FormatYAML) }
func BenchmarkEncryptJSON5MB(b *testing.B) { benchEncrypt(b, benchJSON(), fileenc.FormatJSON) }
func BenchmarkDecryptJSON5MB(b *testing.B) { benchDecrypt(b, benchJSON(), fileenc.FormatJSON) }
