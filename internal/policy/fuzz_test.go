package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse checks that Parse never panics and only fails with a
// *ParseError, and that a policy that parses evaluates deterministically:
// parsing it twice, compiling it twice over (a self-union), and formatting
// it with Format all give the same answers.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		text, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(text))
	}
	f.Add(DefaultPolicy)
	f.Add(`path "a/+/b/*" { capabilities = ["read"] }`)

	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse("fuzz", text)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error = %T %v, want *ParseError", text, err, err)
			}
			return
		}
		a, err := NewACL(p)
		if err != nil {
			t.Fatalf("NewACL(Parse(%q)) error: %v", text, err)
		}
		again, err := Parse("fuzz", text)
		if err != nil {
			t.Fatalf("second Parse(%q) error: %v", text, err)
		}
		formatted, err := Format(text)
		if err != nil {
			t.Fatalf("Format(%q) error: %v", text, err)
		}
		pf, err := Parse("fuzz", formatted)
		if err != nil {
			t.Fatalf("Parse(Format(%q)) = Parse(%q) error: %v", text, formatted, err)
		}
		if diff := cmp.Diff(p.Rules, pf.Rules, cmpopts.IgnoreFields(Rule{}, "Line")); diff != "" {
			t.Fatalf("Format(%q) changed the rules (-before +after):\n%s", text, diff)
		}
		others := []*ACL{mustACL(t, again), mustACL(t, p, p), mustACL(t, pf)}
		paths, reqs := probes(p)
		for _, req := range reqs {
			want := a.Allowed(req)
			for i, o := range others {
				if got := o.Allowed(req); !cmp.Equal(got, want) {
					t.Fatalf("ACL %d: Allowed(%+v) = %+v, want %+v", i, req, got, want)
				}
			}
		}
		for _, path := range paths {
			want := a.Capabilities(path)
			for i, o := range others {
				if got := o.Capabilities(path); !cmp.Equal(got, want) {
					t.Fatalf("ACL %d: Capabilities(%q) = %q, want %q", i, path, got, want)
				}
			}
		}
	})
}

func mustACL(t *testing.T, ps ...*Policy) *ACL {
	t.Helper()
	a, err := NewACL(ps...)
	if err != nil {
		t.Fatalf("NewACL: %v", err)
	}
	return a
}

// probes builds paths and requests aimed at the policy's own rules, few
// enough to keep the fuzzer fast.
func probes(p *Policy) ([]string, []Request) {
	paths := []string{"", "secret/foo"}
	params := []map[string]any{nil}
	for _, r := range p.Rules {
		lit := strings.ReplaceAll(strings.TrimSuffix(r.Pattern, "*"), "+", "x")
		paths = append(paths, lit, lit+"y/z")
		for _, m := range []map[string][]any{r.AllowedParameters, r.DeniedParameters} {
			for k, vs := range m {
				params = append(params, map[string]any{k: "zzz"})
				if len(vs) > 0 {
					params = append(params, map[string]any{k: vs[0], "other": 1.0})
				}
			}
		}
		for _, k := range r.RequiredParameters {
			params = append(params, map[string]any{k: "v"})
		}
	}
	paths = paths[:min(len(paths), 24)]
	params = params[:min(len(params), 6)]
	var reqs []Request
	for _, path := range paths {
		for _, op := range []Operation{OpCreate, OpRead, OpUpdate, OpPatch, OpDelete, OpList} {
			reqs = append(reqs, Request{Path: path, Op: op})
		}
		reqs = append(reqs, Request{Path: path, Op: OpUpdate, RequiresSudo: true})
		for _, ps := range params[1:] {
			reqs = append(reqs, Request{Path: path, Op: OpUpdate, Params: ps})
		}
	}
	return paths, reqs
}
