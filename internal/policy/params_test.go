package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParameters(t *testing.T) {
	const (
		allowedZipZap = `allowed_parameters = { "bar" = ["zip", "zap"] }`
		allowedAny    = `allowed_parameters = { "bar" = [] }`
	)
	tests := []struct {
		name   string
		rules  string // body of path "secret/foo"; capabilities are added
		op     Operation
		params map[string]any
		want   bool
		reason string // substring of DeniedBy when denied
	}{
		{name: "no constraints", params: map[string]any{"anything": 1}, want: true},
		{name: "allowed value", rules: allowedZipZap, params: map[string]any{"bar": "zip"}, want: true},
		{name: "allowed value not in list", rules: allowedZipZap, params: map[string]any{"bar": "zop"}, reason: `value of parameter "bar" is not allowed`},
		{name: "allowed key missing from list", rules: allowedZipZap, params: map[string]any{"bar": "zip", "foo": 1}, reason: `parameter "foo" is not allowed`},
		{name: "allowed with no data", rules: allowedZipZap, params: nil, want: true},
		{name: "allowed empty list means any value", rules: allowedAny, params: map[string]any{"bar": []any{1, "x"}}, want: true},
		{name: "allowed keys are case-insensitive", rules: `allowed_parameters = { "Bar" = [] }`, params: map[string]any{"BAR": "x"}, want: true},
		{name: "star key allows other keys", rules: `allowed_parameters = {
    "bar" = ["zip"]
    "*"   = []
  }`, params: map[string]any{"bar": "zip", "other": "x"}, want: true},
		{name: "star key keeps value limits", rules: `allowed_parameters = {
    "bar" = ["zip"]
    "*"   = []
  }`, params: map[string]any{"bar": "nope", "other": "x"}, reason: `value of parameter "bar"`},
		{name: "star key alone allows anything", rules: `allowed_parameters = { "*" = [] }`, params: map[string]any{"a": 1, "b": "c"}, want: true},
		{name: "glob value prefix", rules: `allowed_parameters = { "bar" = ["foo-*"] }`, params: map[string]any{"bar": "foo-bar"}, want: true},
		{name: "glob value prefix mismatch", rules: `allowed_parameters = { "bar" = ["foo-*"] }`, params: map[string]any{"bar": "bar-foo"}},
		{name: "glob value suffix", rules: `allowed_parameters = { "bar" = ["*-prod"] }`, params: map[string]any{"bar": "db-prod"}, want: true},
		{name: "glob value suffix mismatch", rules: `allowed_parameters = { "bar" = ["*-prod"] }`, params: map[string]any{"bar": "db-prod2"}},
		{name: "glob value contains", rules: `allowed_parameters = { "bar" = ["*mid*"] }`, params: map[string]any{"bar": "amidst"}, want: true},
		{name: "lone star value is literal", rules: `allowed_parameters = { "bar" = ["*"] }`, params: map[string]any{"bar": "anything"}},
		{name: "lone star value matches itself", rules: `allowed_parameters = { "bar" = ["*"] }`, params: map[string]any{"bar": "*"}, want: true},
		{name: "glob does not match numbers", rules: `allowed_parameters = { "bar" = ["1*"] }`, params: map[string]any{"bar": 12.0}},
		// Vault's documented surprise: the whole string matches the glob.
		{name: "comma list through a glob", rules: `allowed_parameters = { "bar" = ["baz/*"] }`, params: map[string]any{"bar": "baz/quux,wibble"}, want: true},
		{name: "comma list element not allowed", rules: `allowed_parameters = { "bar" = ["a", "b"] }`, params: map[string]any{"bar": "a,c"}, reason: `value of parameter "bar"`},
		{name: "comma list elements allowed", rules: `allowed_parameters = { "bar" = ["a", "b"] }`, params: map[string]any{"bar": "a,b"}, want: true},
		{name: "comma list all allowed", rules: `allowed_parameters = { "bar" = ["baz/*", "wibble"] }`, params: map[string]any{"bar": "baz/quux, wibble"}, want: true},
		{name: "comma list trailing empty element", rules: `allowed_parameters = { "bar" = ["a"] }`, params: map[string]any{"bar": "a,"}},
		{name: "empty string passes as an empty list", rules: allowedZipZap, params: map[string]any{"bar": ""}, want: true},
		{name: "list value all allowed", rules: `allowed_parameters = { "policies" = ["a", "b"] }`, params: map[string]any{"policies": []any{"a", "b"}}, want: true},
		{name: "list value one not allowed", rules: `allowed_parameters = { "policies" = ["a", "b"] }`, params: map[string]any{"policies": []any{"a", "c"}}},
		{name: "string slice value", rules: `allowed_parameters = { "policies" = ["a-*"] }`, params: map[string]any{"policies": []string{"a-1", "a-2"}}, want: true},
		{name: "number float64", rules: `allowed_parameters = { "ttl" = [3600] }`, params: map[string]any{"ttl": 3600.0}, want: true},
		{name: "number json.Number", rules: `allowed_parameters = { "ttl" = [3600] }`, params: map[string]any{"ttl": json.Number("3600")}, want: true},
		{name: "number int", rules: `allowed_parameters = { "ttl" = [3600] }`, params: map[string]any{"ttl": 3600}, want: true},
		{name: "number mismatch", rules: `allowed_parameters = { "ttl" = [3600] }`, params: map[string]any{"ttl": 60.0}},
		{name: "number is not a string", rules: `allowed_parameters = { "ttl" = [3600] }`, params: map[string]any{"ttl": "3600"}},
		{name: "bool", rules: `allowed_parameters = { "flag" = [true] }`, params: map[string]any{"flag": true}, want: true},
		{name: "bool mismatch", rules: `allowed_parameters = { "flag" = [true] }`, params: map[string]any{"flag": false}},
		{name: "null", rules: `allowed_parameters = { "x" = [null] }`, params: map[string]any{"x": nil}, want: true},
		{name: "null mismatch", rules: `allowed_parameters = { "x" = [null] }`, params: map[string]any{"x": "null"}},
		{name: "object value", rules: `allowed_parameters = { "o" = [{ a = 1, b = ["c"] }] }`, params: map[string]any{"o": map[string]any{"a": 1.0, "b": []any{"c"}}}, want: true},
		{name: "object value mismatch", rules: `allowed_parameters = { "o" = [{ a = 1 }] }`, params: map[string]any{"o": map[string]any{"a": 2.0}}},

		{name: "denied any value", rules: `denied_parameters = { "bar" = [] }`, params: map[string]any{"bar": "x"}, reason: `parameter "bar" is denied`},
		{name: "denied key absent", rules: `denied_parameters = { "bar" = [] }`, params: map[string]any{"foo": "x"}, want: true},
		{name: "denied value", rules: `denied_parameters = { "bar" = ["zip", "zap"] }`, params: map[string]any{"bar": "zip"}},
		{name: "denied value other", rules: `denied_parameters = { "bar" = ["zip", "zap"] }`, params: map[string]any{"bar": "zop"}, want: true},
		{name: "denied glob", rules: `denied_parameters = { "bar" = ["admin*"] }`, params: map[string]any{"bar": "administrator"}},
		{name: "denied list element", rules: `denied_parameters = { "policies" = ["root"] }`, params: map[string]any{"policies": []any{"app", "root"}}},
		{name: "denied comma element", rules: `denied_parameters = { "policies" = ["root"] }`, params: map[string]any{"policies": "app, root"}},
		{name: "denied comma trailing empty element", rules: `denied_parameters = { "policies" = [""] }`, params: map[string]any{"policies": "app,"}},
		{name: "denied empty string is not an element", rules: `denied_parameters = { "policies" = [""] }`, params: map[string]any{"policies": ""}},
		{name: "denied star", rules: `denied_parameters = { "*" = [] }`, params: map[string]any{"any": 1}, reason: "all parameters are denied"},
		{name: "denied star without data", rules: `denied_parameters = { "*" = [] }`, params: map[string]any{}, want: true},
		{name: "denied keys are case-insensitive", rules: `denied_parameters = { "bar" = [] }`, params: map[string]any{"Bar": "x"}},
		{name: "denied takes precedence over allowed", rules: `allowed_parameters = { "bar" = [] }
  denied_parameters = { "bar" = ["zip"] }`, params: map[string]any{"bar": "zip"}, reason: "is denied"},
		{name: "denied reason names the smallest key", rules: `denied_parameters = { "a" = [], "b" = [], "c" = [] }`, params: map[string]any{"c": 1, "b": 1, "a": 1}, reason: `parameter "a" is denied`},

		{name: "required present", rules: `required_parameters = ["bar", "Baz"]`, params: map[string]any{"bar": 1, "baz": 2}, want: true},
		{name: "required missing", rules: `required_parameters = ["bar", "baz"]`, params: map[string]any{"bar": 1}, reason: `missing required parameter "baz"`},
		{name: "required without data", rules: `required_parameters = ["bar"]`, params: nil},

		{name: "read is checked", rules: `allowed_parameters = { "version" = ["1"] }`, op: OpRead, params: map[string]any{"version": "2"}},
		{name: "patch is checked", rules: `denied_parameters = { "owner" = [] }`, op: OpPatch, params: map[string]any{"owner": "me"}},
		{name: "update is checked", rules: `denied_parameters = { "owner" = [] }`, op: OpUpdate, params: map[string]any{"owner": "me"}},
		{name: "delete is not checked", rules: `required_parameters = ["bar"]`, op: OpDelete, params: nil, want: true},
		{name: "list is not checked", rules: `denied_parameters = { "*" = [] }`, op: OpList, params: map[string]any{"x": 1}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "path \"secret/foo\" {\n  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\"]\n  " + tt.rules + "\n}"
			a := newTestACL(t, text)
			op := tt.op
			if op == "" {
				op = OpCreate
			}
			got := a.Allowed(Request{Path: "secret/foo", Op: op, Params: tt.params})
			if got.Allowed != tt.want {
				t.Errorf("Allowed(%s %v) = %+v, want allowed %v", op, tt.params, got, tt.want)
			}
			if !tt.want && !strings.Contains(got.DeniedBy, tt.reason) {
				t.Errorf("Allowed(%s %v).DeniedBy = %q, want it to contain %q", op, tt.params, got.DeniedBy, tt.reason)
			}
		})
	}
}

// TestParameterMerge checks how constraints on one pattern merge across
// policies, as Vault merges them.
func TestParameterMerge(t *testing.T) {
	rule := func(body string) string {
		return "path \"secret/foo\" {\n  capabilities = [\"create\"]\n  " + body + "\n}"
	}
	tests := []struct {
		name     string
		policies []string
		params   map[string]any
		want     bool
	}{
		{"value lists concatenate a", []string{rule(`allowed_parameters = { bar = ["a"] }`), rule(`allowed_parameters = { bar = ["b"] }`)},
			map[string]any{"bar": "a"}, true},
		{"value lists concatenate b", []string{rule(`allowed_parameters = { bar = ["a"] }`), rule(`allowed_parameters = { bar = ["b"] }`)},
			map[string]any{"bar": "b"}, true},
		{"value lists concatenate c", []string{rule(`allowed_parameters = { bar = ["a"] }`), rule(`allowed_parameters = { bar = ["b"] }`)},
			map[string]any{"bar": "c"}, false},
		{"empty list absorbs", []string{rule(`allowed_parameters = { bar = ["a"] }`), rule(`allowed_parameters = { bar = [] }`)},
			map[string]any{"bar": "z"}, true},
		{"keys union", []string{rule(`allowed_parameters = { bar = [] }`), rule(`allowed_parameters = { baz = [] }`)},
			map[string]any{"bar": 1, "baz": 2}, true},
		// Vault: a policy without allowed_parameters does not lift the
		// restriction another policy puts on the same pattern.
		{"unconstrained policy does not lift constraints", []string{rule(``), rule(`allowed_parameters = { bar = [] }`)},
			map[string]any{"other": 1}, false},
		{"denied merge", []string{rule(`denied_parameters = { bar = ["a"] }`), rule(`denied_parameters = { bar = ["b"] }`)},
			map[string]any{"bar": "b"}, false},
		{"required union", []string{rule(`required_parameters = ["a"]`), rule(`required_parameters = ["b"]`)},
			map[string]any{"a": 1}, false},
		{"deny drops constraints", []string{rule(`allowed_parameters = { bar = [] }`), `path "secret/foo" { capabilities = ["deny"] }`},
			map[string]any{"bar": 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newTestACL(t, tt.policies...).Allowed(Request{Path: "secret/foo", Op: OpCreate, Params: tt.params})
			if got.Allowed != tt.want {
				t.Errorf("Allowed(%v) = %+v, want allowed %v", tt.params, got, tt.want)
			}
		})
	}
}
