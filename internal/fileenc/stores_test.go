package fileenc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

func TestParsePlainRejects(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
	tests := []struct {
		name   string
		format fileenc.Format
		in     string
		want   string
	}{
		{"yaml duplicate key", fileenc.FormatYAML, "a: 1\na: 2\n", "duplicate key"},
		{"yaml int key", fileenc.FormatYAML, "1: one\n", "only string keys"},
		{"yaml top-level list", fileenc.FormatYAML, "- a\n", "must be a mapping"},
		{"yaml merge key", fileenc.FormatYAML, "a: &x {b: 1}\nc:\n  <<: *x\n", "merge keys"},
		{"yaml recursive alias", fileenc.FormatYAML, "a: &x [1, *x]\n", "recursive alias"},
		{"yaml alias bomb", fileenc.FormatYAML, bomb, "too large"},
		{"yaml syntax", fileenc.FormatYAML, "a: [1\n", "invalid yaml"},
		{"yaml already encrypted", fileenc.FormatYAML, "a: 1\nsops:\n    mac: x\n    lastmodified: y\n", "already encrypted"},
		{"json duplicate key", fileenc.FormatJSON, `{"a": 1, "a": 2}`, "duplicate key"},
		{"json top-level array", fileenc.FormatJSON, `[1]`, "must be an object"},
		{"json trailing data", fileenc.FormatJSON, `{} {}`, "after the top-level"},
		{"json deep", fileenc.FormatJSON, `{"a":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}`, "nested more than"},
		{"json bad escape", fileenc.FormatJSON, `{"a": "\q"}`, "invalid escape"},
		{"dotenv no equals", fileenc.FormatDotenv, "A=1\nsecret-hunter2\n", "line 2"},
		{"dotenv duplicate", fileenc.FormatDotenv, "A=1\nA=2\n", "duplicate key"},
		{"ini no delimiter", fileenc.FormatINI, "[s]\nsecret-hunter2\n", "neither a section"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fileenc.ParsePlain([]byte(tc.in), tc.format)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePlain = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q reveals file content", err)
			}
			var pe *fileenc.ParseError
			if !errors.As(err, &pe) && !errors.Is(err, fileenc.ErrAlreadyEncrypted) {
				t.Errorf("error %T is not a *ParseError", err)
			}
		})
	}
}

func TestYAMLAliasesExpanded(t *testing.T) {
	k := loadTestKey(t, 1)
	enc := cofferEncrypt(t, "base: &b\n    x: 1\nuse: *b\n", fileenc.FormatYAML, ageOpts(k))
	if strings.Contains(string(enc), "&b") || strings.Contains(string(enc), "*b") {
		t.Errorf("anchors left in the encrypted file:\n%s", enc)
	}
	if got := cofferDecrypt(t, enc, fileenc.FormatYAML, keysFor(k)); got != "base:\n    x: 1\nuse:\n    x: 1\n" {
		t.Errorf("decrypt = %q", got)
	}
}

func TestMultiDocumentYAML(t *testing.T) {
	k := loadTestKey(t, 1)
	plain := "a: 1\n---\nb: 2\n"
	enc := cofferEncrypt(t, plain, fileenc.FormatYAML, ageOpts(k))
	if n := strings.Count(string(enc), "\nsops:\n"); n != 2 {
		t.Errorf("metadata blocks = %d, want one per document:\n%s", n, enc)
	}
	if got := cofferDecrypt(t, enc, fileenc.FormatYAML, keysFor(k)); got != plain {
		t.Errorf("decrypt = %q, want %q", got, plain)
	}
}

func TestFormatConversion(t *testing.T) {
	k := loadTestKey(t, 1)
	enc := cofferEncrypt(t, "a: 1\nb:\n    c: true\n    d: [x, 2.5]\n", fileenc.FormatYAML, ageOpts(k))
	doc, err := fileenc.Parse(enc, fileenc.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	json, err := doc.Emit(fileenc.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	// The JSON form of the encrypted file decrypts the same.
	if got := cofferDecrypt(t, json, fileenc.FormatJSON, keysFor(k)); got != "{\n\t\"a\": 1,\n\t\"b\": {\n\t\t\"c\": true,\n\t\t\"d\": [\n\t\t\t\"x\",\n\t\t\t2.5\n\t\t]\n\t}\n}\n" {
		t.Errorf("decrypt of the converted file = %q", got)
	}
	if _, err := doc.Emit(fileenc.FormatDotenv); err == nil {
		t.Errorf("nested values emitted as dotenv")
	}
}
