package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Rule
	}{
		{
			name: "capabilities",
			text: `path "secret/foo" { capabilities = ["read", "list", "read"] }`,
			want: []Rule{{Pattern: "secret/foo", Capabilities: Read | List, Line: 1}},
		},
		{
			name: "leading slash stripped",
			text: `path "/secret/*" { capabilities = ["read"] }`,
			want: []Rule{{Pattern: "secret/*", Capabilities: Read, Line: 1}},
		},
		{
			name: "deny drops other capabilities",
			text: `path "a" { capabilities = ["read", "deny", "sudo"] }`,
			want: []Rule{{Pattern: "a", Capabilities: Deny, Line: 1}},
		},
		{
			name: "empty capabilities",
			text: `path "a" { capabilities = [] }`,
			want: []Rule{{Pattern: "a", Line: 1}},
		},
		{
			name: "legacy read",
			text: `path "a" { policy = "read" }`,
			want: []Rule{{Pattern: "a", Capabilities: Read | List, Line: 1}},
		},
		{
			name: "legacy write",
			text: `path "a" { policy = "write" }`,
			want: []Rule{{Pattern: "a", Capabilities: Create | Read | Update | Delete | List, Line: 1}},
		},
		{
			name: "legacy sudo",
			text: `path "a" { policy = "sudo" }`,
			want: []Rule{{Pattern: "a", Capabilities: Create | Read | Update | Delete | List | Sudo, Line: 1}},
		},
		{
			name: "legacy deny overrides capabilities",
			text: "path \"a\" {\n  policy = \"deny\"\n  capabilities = [\"read\"]\n}",
			want: []Rule{{Pattern: "a", Capabilities: Deny, Line: 1}},
		},
		{
			name: "legacy unions with capabilities",
			text: "path \"a\" {\n  policy = \"read\"\n  capabilities = [\"create\", \"sudo\"]\n}",
			want: []Rule{{Pattern: "a", Capabilities: Create | Read | List | Sudo, Line: 1}},
		},
		{
			name: "parameters",
			text: `path "a" {
  capabilities = ["create"]
  allowed_parameters = {
    "Bar" = ["zip", 1, true, null]
    baz   = []
  }
  denied_parameters = {
    "*" = []
  }
  required_parameters = ["Bar"]
}`,
			want: []Rule{{
				Pattern:            "a",
				Capabilities:       Create,
				AllowedParameters:  map[string][]any{"bar": {"zip", 1.0, true, nil}, "baz": {}},
				DeniedParameters:   map[string][]any{"*": {}},
				RequiredParameters: []string{"bar"},
				Line:               1,
			}},
		},
		{
			name: "empty parameter map is unset",
			text: `path "a" { allowed_parameters = {} }`,
			want: []Rule{{Pattern: "a", Line: 1}},
		},
		{
			name: "wrapping ttls",
			text: "path \"a\" {\n  min_wrapping_ttl = 30\n  max_wrapping_ttl = \"1h\"\n}\npath \"b\" {\n  min_wrapping_ttl = \"90\"\n  max_wrapping_ttl = \"2d\"\n}",
			want: []Rule{
				{Pattern: "a", MinWrappingTTL: 30 * time.Second, MaxWrappingTTL: time.Hour, Line: 1},
				{Pattern: "b", MinWrappingTTL: 90 * time.Second, MaxWrappingTTL: 48 * time.Hour, Line: 5},
			},
		},
		{
			name: "name and comment accepted",
			text: "name = \"x\"\npath \"a\" {\n  comment = \"why\"\n  capabilities = [\"read\"]\n}",
			want: []Rule{{Pattern: "a", Capabilities: Read, Line: 2}},
		},
		{
			name: "repeated pattern kept apart",
			text: "path \"a\" { capabilities = [\"read\"] }\npath \"a\" { capabilities = [\"list\"] }",
			want: []Rule{{Pattern: "a", Capabilities: Read, Line: 1}, {Pattern: "a", Capabilities: List, Line: 2}},
		},
		{
			name: "globs",
			text: "path \"+\" {}\npath \"*\" {}\npath \"a/+/b/*\" {}\npath \"c++/x\" {}",
			want: []Rule{{Pattern: "+", Line: 1}, {Pattern: "*", Line: 2}, {Pattern: "a/+/b/*", Line: 3}, {Pattern: "c++/x", Line: 4}},
		},
		{
			name: "empty policy",
			text: "# nothing\n",
			want: []Rule{},
		},
		{
			name: "json array forms",
			text: `{"name": "x", "path": [{"a": [{"capabilities": ["read"]}, {"policy": "deny"}]}, {"b/+": {}}]}`,
			want: []Rule{{Pattern: "a", Capabilities: Read, Line: 1}, {Pattern: "a", Capabilities: Deny, Line: 1}, {Pattern: "b/+", Line: 1}},
		},
		{
			name: "json",
			text: `{"path": {"a/*": {"capabilities": ["read"], "allowed_parameters": {"k": ["v", 2]}}}}`,
			want: []Rule{{Pattern: "a/*", Capabilities: Read, AllowedParameters: map[string][]any{"k": {"v", 2.0}}, Line: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("test", tt.text)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.text, err)
			}
			if diff := cmp.Diff(tt.want, p.Rules); diff != "" {
				t.Errorf("Parse(%q) rules mismatch (-want +got):\n%s", tt.text, diff)
			}
			if p.Name != "test" || p.Raw != tt.text {
				t.Errorf("Parse(%q) = name %q raw %q, want name %q and the text", tt.text, p.Name, p.Raw, "test")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		policy   string
		text     string
		wantLine int
		wantMsg  string // substring of Error()
	}{
		{"syntax error", "x", "path \"a\" {\n  capabilities = [\"read\"\n}\n", 3, "line 3: "},
		{"unclosed block", "x", "path \"a\" {\n  capabilities = [\"read\"]\n", 1, "unclosed configuration block"},
		{"unknown capability", "x", "path \"a\" {\n\n  capabilities = [\"read\",\n    \"raed\"]\n}", 4, `unknown capability "raed"`},
		{"capability not a string", "x", `path "a" { capabilities = [1] }`, 1, "capability must be a string"},
		{"capabilities not a list", "x", "\npath \"a\" { capabilities = \"read\" }", 2, "capabilities must be a list"},
		{"unknown attribute", "x", "path \"a\" {\n  capabilities = [\"read\"]\n  allowed_paramters = {}\n}", 3, `unknown attribute "allowed_paramters" in a path block`},
		{"unknown top-level attribute", "x", "foo = 1\n", 1, `unknown attribute "foo" at the top level`},
		{"unknown block type", "x", "\n\npaths \"a\" {}\n", 3, `unknown block type "paths"`},
		{"nested block", "x", "path \"a\" {\n  allowed_parameters {\n    foo = []\n  }\n}", 2, `"allowed_parameters" must be an attribute`},
		{"path as attribute", "x", `path = "a"`, 1, `"path" must be a block`},
		{"enterprise attribute", "x", "path \"a\" {\n  mfa_methods = [\"duo\"]\n}", 2, `"mfa_methods" is not supported`},
		{"duplicate attribute", "x", "path \"a\" {\n  capabilities = [\"read\"]\n  capabilities = [\"list\"]\n}", 3, "attribute redefined"},
		{"star in the middle", "x", "path \"ok\" {}\npath \"secret/*/foo\" {\n}", 2, `"*" is only allowed at the end`},
		{"double star", "x", `path "secret/**" {}`, 1, `"*" is only allowed at the end`},
		{"plus star", "x", `path "secret/+*" {}`, 1, `"+*" is not allowed`},
		{"partial plus segment", "x", `path "secret/+foo/bar" {}`, 1, `"+" must be a whole path segment`},
		{"empty pattern", "x", "\npath \"\" {}", 2, "empty path pattern"},
		{"slash pattern", "x", `path "/" {}`, 1, "empty path pattern"},
		{"templated pattern", "x", `path "secret/{{identity.entity.id}}/*" {}`, 1, "templated policy paths are not supported"},
		{"missing label", "x", "path {\n}", 1, "path"},
		{"unknown legacy policy", "x", "path \"a\" {\n  policy = \"list\"\n}", 2, `unknown policy "list"`},
		{"parameters not a map", "x", "path \"a\" {\n  allowed_parameters = [\"a\"]\n}", 2, "allowed_parameters must be a map"},
		{"parameter values not a list", "x", "path \"a\" {\n  denied_parameters = { a = \"b\" }\n}", 2, `denied_parameters value of "a" must be a list`},
		{"star parameter with values", "x", "path \"a\" {\n  allowed_parameters = {\n    \"*\" = [\"x\"]\n  }\n}", 3, `the only value allowed for parameter "*" is []`},
		{"duplicate parameter", "x", "path \"a\" {\n  allowed_parameters = {\n    a = []\n    A = []\n  }\n}", 4, `duplicate parameter "a"`},
		{"bad ttl", "x", "path \"a\" {\n  min_wrapping_ttl = \"soon\"\n}", 2, `min_wrapping_ttl: invalid duration "soon"`},
		{"negative ttl", "x", "path \"a\" {\n  max_wrapping_ttl = \"-1s\"\n}", 2, "max_wrapping_ttl: must not be negative"},
		{"fractional ttl", "x", "path \"a\" {\n  max_wrapping_ttl = 1.5\n}", 2, "whole number of seconds"},
		{"min above max", "x", "path \"a\" {\n  min_wrapping_ttl = \"2m\"\n  max_wrapping_ttl = \"1m\"\n}", 3, "max_wrapping_ttl cannot be less than min_wrapping_ttl"},
		{"interpolation", "x", `path "a" { policy = "${var.x}" }`, 1, "variables not allowed"},
		{"json syntax error", "x", "{\n  \"path\": {\n    \"a\": {\"capabilities\": [\"read\",]}\n  }\n}", 3, "line 3: "},
		{"json unknown attribute", "x", "{\n  \"path\": {\n    \"a\": {\n      \"capabilites\": [\"read\"]\n    }\n  }\n}", 4, `unknown attribute "capabilites"`},
		{"json unknown capability", "x", "{\"path\": {\"a\": {\n\"capabilities\": [\"raed\"]}}}", 2, `unknown capability "raed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.policy, tt.text)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error = %v, want a *ParseError", tt.text, err)
			}
			if pe.Line != tt.wantLine {
				t.Errorf("Parse(%q) error line = %d, want %d (%v)", tt.text, pe.Line, tt.wantLine, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.text, err, tt.wantMsg)
			}
			if pe.Policy != tt.policy {
				t.Errorf("Parse(%q) error policy = %q, want %q", tt.text, pe.Policy, tt.policy)
			}
		})
	}
}

func TestParseErrorString(t *testing.T) {
	_, err := Parse("x", "path \"a\" {\n  capabilities = [\n    \"raed\",\n  ]\n}")
	want := `policy "x": line 3: unknown capability "raed"`
	if err == nil || err.Error() != want {
		t.Errorf("Parse() error = %v, want %q", err, want)
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name     string
		wantName string
		wantErr  error
	}{
		{name: "dev", wantName: "dev"},
		{name: "  Dev-Team ", wantName: "dev-team"},
		{name: "default", wantName: "default"},
		{name: "root", wantErr: ErrRootPolicy},
		{name: " ROOT", wantErr: ErrRootPolicy},
		{name: "  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.name, `path "a" {}`)
			switch {
			case tt.wantName != "":
				if err != nil || p.Name != tt.wantName {
					t.Errorf("Parse(%q) = %v, %v, want name %q", tt.name, p, err, tt.wantName)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Parse(%q) error = %v, want %v", tt.name, err, tt.wantErr)
				}
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("Parse(%q) error = %T, want *ParseError", tt.name, err)
				}
			default:
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Errorf("Parse(%q) error = %v, want a *ParseError", tt.name, err)
				}
			}
		})
	}
}

// TestParseJSONMatchesHCL checks that each testdata policy with both forms
// parses to the same rules.
func TestParseJSONMatchesHCL(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no JSON testdata: %v", err)
	}
	for _, jsonFile := range files {
		t.Run(filepath.Base(jsonFile), func(t *testing.T) {
			fromJSON := parseFile(t, jsonFile)
			fromHCL := parseFile(t, strings.TrimSuffix(jsonFile, ".json")+".hcl")
			// The JSON object's keys come back sorted, the HCL blocks in
			// source order; the ACL does not care about order.
			opts := cmp.Options{
				cmpopts.IgnoreFields(Rule{}, "Line"),
				cmpopts.SortSlices(func(a, b Rule) bool { return a.Pattern < b.Pattern }),
			}
			if diff := cmp.Diff(fromHCL.Rules, fromJSON.Rules, opts); diff != "" {
				t.Errorf("JSON and HCL rules differ (-hcl +json):\n%s", diff)
			}
		})
	}
}

func parseFile(t *testing.T, name string) *Policy {
	t.Helper()
	text, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(strings.TrimSuffix(filepath.Base(name), filepath.Ext(name)), string(text))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return p
}

func TestTestdataParses(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.*")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p := parseFile(t, f)
			if len(p.Rules) == 0 {
				t.Errorf("Parse(%s) has no rules", f)
			}
			if _, err := NewACL(p); err != nil {
				t.Errorf("NewACL(%s): %v", f, err)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "hcl",
			in:   "path \"a\" {\ncapabilities=[\"read\"]\n    policy = \"read\"\n}\n",
			want: "path \"a\" {\n  capabilities = [\"read\"]\n  policy       = \"read\"\n}\n",
		},
		{
			name: "json",
			in:   `  {"path":{"a":{"capabilities":["read"]}}}`,
			want: "{\n  \"path\": {\n    \"a\": {\n      \"capabilities\": [\n        \"read\"\n      ]\n    }\n  }\n}\n",
		},
		{
			name: "default policy is canonical",
			in:   DefaultPolicy,
			want: DefaultPolicy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Format(tt.in)
			if err != nil {
				t.Fatalf("Format(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Format(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestFormatRefusesInvalid(t *testing.T) {
	_, err := Format("path \"a\" {\n  capabilities = [\"raed\"]\n}\n")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("Format() error = %v, want a *ParseError on line 2", err)
	}
	if strings.Contains(err.Error(), `policy ""`) {
		t.Errorf("Format() error = %q, want no empty policy name", err)
	}
}

func TestCapabilityNames(t *testing.T) {
	tests := []struct {
		c     Capability
		names []string
		str   string
	}{
		{0, nil, "none"},
		{Read, []string{"read"}, "read"},
		{Deny | Sudo | List | Delete | Patch | Update | Read | Create,
			[]string{"create", "read", "update", "patch", "delete", "list", "sudo", "deny"},
			"create,read,update,patch,delete,list,sudo,deny"},
	}
	for _, tt := range tests {
		if got := tt.c.Names(); !cmp.Equal(got, tt.names) {
			t.Errorf("Capability(%d).Names() = %q, want %q", tt.c, got, tt.names)
		}
		if got := tt.c.String(); got != tt.str {
			t.Errorf("Capability(%d).String() = %q, want %q", tt.c, got, tt.str)
		}
		for _, n := range tt.names {
			if c, ok := ParseCapability(n); !ok || !tt.c.Has(c) {
				t.Errorf("ParseCapability(%q) = %v, %v, want a member of %v", n, c, ok, tt.c)
			}
		}
	}
	if _, ok := ParseCapability("root"); ok {
		t.Errorf(`ParseCapability("root") ok, want not a capability`)
	}
}
