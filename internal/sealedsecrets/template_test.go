package sealedsecrets_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

func TestTemplateFunctions(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	ss := sealed(t, k, "ns", "app", nil, map[string]string{"v": "Hello World", "j": `{"a":"b"}`, "n": "7", "e": ""})
	cases := []struct{ tmpl, want string }{
		{`{{ .v | lower }}`, "hello world"},
		{`{{ .v | upper }}`, "HELLO WORLD"},
		{`{{ "foo bar-baz" | title }}`, "Foo Bar-Baz"},
		{`{{ "  x  " | trim }}`, "x"},
		{`{{ trimAll "-" "--x--" }}`, "x"},
		{`{{ trimPrefix "He" .v }}|{{ trimSuffix "ld" .v }}`, "llo World|Hello Wor"},
		{`{{ contains "World" .v }} {{ hasPrefix "H" .v }} {{ hasSuffix "x" .v }}`, "true true false"},
		{`{{ repeat 3 "ab" }}`, "ababab"},
		{`{{ nospace .v }}`, "HelloWorld"},
		{`{{ indent 2 "a\nb" }}`, "  a\n  b"},
		{`{{ trunc 5 .v }}|{{ trunc -5 .v }}|{{ substr 1 4 .v }}`, "Hello|World|ell"},
		{`{{ splitList " " .v | join "," }}`, "Hello,World"},
		{`{{ cat "a" "b" }}`, "a b"},
		{`{{ .n | atoi }}`, "7"},
		{`{{ b64enc .v }}|{{ b64enc .v | b64dec }}`, "SGVsbG8gV29ybGQ=|Hello World"},
		{`{{ b32enc "hi" | b32dec }}`, "hi"},
		{`{{ sha1sum "abc" }}`, "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{`{{ (fromJson .j).a }}`, "b"},
		{`{{ toPrettyJson (list 1 "x") }}`, "[\n  1,\n  \"x\"\n]"},
		{`{{ .e | default "d" }} {{ coalesce .e "" "c" }} {{ empty .e }}`, "d c true"},
		{`{{ ternary "y" "n" true }}`, "y"},
		{`{{ $d := dict "b" 1 "a" 2 }}{{ keys $d | join "," }} {{ get $d "a" }} {{ hasKey $d "z" }}`, "a,b 2 false"},
		{`{{ if eq .v "Hello World" }}yes{{ else }}no{{ end }}{{ with .v }}!{{ end }}`, "yes!"},
		{`{{ printf "%s-%s" .n .n }}`, "7-7"},
	}
	for _, tc := range cases {
		c := ss.DeepCopy()
		c.Spec.Template.Data = map[string]string{"out": tc.tmpl}
		s, err := sealedsecrets.Unseal(c, []*sealedsecrets.Key{k}, sealedsecrets.UnsealOptions{})
		if err != nil {
			t.Errorf("%s: %v", tc.tmpl, err)
			continue
		}
		if got := string(s.Data["out"]); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

// Templates are written by anyone who may create a SealedSecret and run
// by the controller: unbounded loops, recursion and allocations are
// refused.
func TestTemplateLimits(t *testing.T) {
	k := sealedsecretstest.Key(t, "key2")
	ss := sealed(t, k, "ns", "app", nil, map[string]string{"v": "x"})
	cases := []struct{ name, tmpl, want string }{
		{"range over int", `{{ range 1000000000000 }}{{ end }}`, "not allowed"},
		{"range over list", `{{ range splitList "," "a,b" }}{{ . }}{{ end }}`, "not allowed"},
		{"recursion", `{{ define "a" }}{{ template "a" . }}{{ template "a" . }}{{ end }}{{ template "a" . }}`, "not allowed"},
		{"nested in if", `{{ if true }}{{ template "x" }}{{ end }}`, "not allowed"},
		{"huge repeat", `{{ repeat 100000000 "abc" }}`, "budget"},
		{"chained growth", `{{ repeat 4000000 "a" | b64enc | b64enc | b64enc | b64enc }}`, "budget"},
		{"many allocations", strings.Repeat(`{{ $x := repeat 1000000 "a" }}`, 20), "budget"},
		{"replace growth", `{{ repeat 1000000 "a" | replace "a" "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" }}`, "budget"},
		{"output size", `{{ repeat 1000000 "ab" }}`, "larger than 1 MiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ss.DeepCopy()
			c.Spec.Template.Data = map[string]string{"out": tc.tmpl}
			_, err := sealedsecrets.Unseal(c, []*sealedsecrets.Key{k}, sealedsecrets.UnsealOptions{})
			var te *sealedsecrets.TemplateError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Unseal = %v, want a template error containing %q", err, tc.want)
			}
		})
	}
}
