package fileenc

import (
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for every parser of untrusted input: the ENC[...] value
// format, the four tree decoders (and the binary/JSON one), the metadata
// they contain, and --extract paths. Seeds come from testdata/golden.

func goldenSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", pattern))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseEncValue(f *testing.F) {
	f.Add("ENC[AES256_GCM,data:1AFI2CY=,iv:qajpmfLpFfiDQCOTp8CeDuGmqsYMSaOdVaQkyQIo8CM=,tag:fBm4wd1me0fqDhRQWoHbUQ==,type:str]")
	f.Add("ENC[AES256_GCM,data:,iv:qajpmfLpFfiDQCOTp8CeDuGmqsYMSaOdVaQkyQIo8CM=,tag:fBm4wd1me0fqDhRQWoHbUQ==,type:comment]")
	f.Add("ENC[AES256_GCM,data:x,iv:y,tag:z,type:int]")
	f.Add("ENC[AES256_GCM,")
	f.Fuzz(func(t *testing.T, s string) {
		ev, err := parseEncValue(s)
		if err != nil {
			return
		}
		if got := ev.String(); got != s {
			t.Fatalf("parse/format round trip: %q -> %q", s, got)
		}
		c, err := newDataCipher(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.decrypt(s, "a:")
	})
}

func fuzzFormat(f *testing.F, format Format, pattern string, seeds ...string) {
	goldenSeeds(f, pattern)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if doc, err := Parse(data, format); err == nil {
			// An encrypted document walks without panicking under a wrong
			// key (every value fails to authenticate).
			_, _ = OpenWithDataKey(doc, make([]byte, 32))
		}
		doc, err := ParsePlain(data, format)
		if err != nil {
			return
		}
		out, err := doc.Emit(format)
		if err != nil {
			return
		}
		if format == FormatJSON || format == FormatDotenv {
			if _, err := ParsePlain(out, format); err != nil {
				t.Fatalf("emitted %s does not parse: %v\n%s", format, err, out)
			}
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	fuzzFormat(f, FormatYAML, "*.yaml", "a: 1\n", "a: &x [1, *x]\n", "- a\n", "a:\n  b: !!binary aGk=\n", "---\n---\na: 1\n")
}

func FuzzParseJSON(f *testing.F) {
	fuzzFormat(f, FormatJSON, "*.json", `{"a": [1, 2.5, "x", null, true, {"b": "\u00e9\ud83d\ude00"}]}`, `{"a": 1e400}`, `[1]`)
}

func FuzzParseDotenv(f *testing.F) {
	fuzzFormat(f, FormatDotenv, "*.env", "A=1\n# c\nB=x\\ny\n", "sops_version=1\n", "noequals\n")
}

func FuzzParseINI(f *testing.F) {
	fuzzFormat(f, FormatINI, "*.ini", "[a]\nb = c\n; d\n", "x = 1\n[sops]\nversion = 3\n")
}

func FuzzParsePath(f *testing.F) {
	f.Add(`["a"]["b"][0]`)
	f.Add(`['a\'b']`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		q, err := ParsePath(pathString(p))
		if err != nil || len(q) != len(p) {
			t.Fatalf("path %q re-parses as %v, %v", pathString(p), q, err)
		}
	})
}
