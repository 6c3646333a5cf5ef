package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newTestACL parses each text as a policy named p0, p1, ... and compiles
// them together.
func newTestACL(t testing.TB, texts ...string) *ACL {
	t.Helper()
	var ps []*Policy
	for i, text := range texts {
		p, err := Parse(fmt.Sprintf("p%d", i), text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		ps = append(ps, p)
	}
	a, err := NewACL(ps...)
	if err != nil {
		t.Fatalf("NewACL: %v", err)
	}
	return a
}

// paths builds a policy granting caps on each pattern.
func paths(caps string, patterns ...string) string {
	var s string
	for _, p := range patterns {
		s += fmt.Sprintf("path %q { capabilities = [%s] }\n", p, caps)
	}
	return s
}

// TestPrecedence has one case per precedence rule: which pattern wins when
// several match. Every pattern grants read; the case checks the winner.
func TestPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		path     string
		want     string
	}{
		{"exact beats prefix glob", []string{"secret/*", "secret/foo"}, "secret/foo", "secret/foo"},
		{"exact beats plus", []string{"secret/+", "secret/foo"}, "secret/foo", "secret/foo"},
		{"exact beats a later wildcard", []string{"secret/foo/*", "secret/foo/"}, "secret/foo/", "secret/foo/"},
		{"rule 1: longer prefix wins", []string{"secret/*", "secret/app/*"}, "secret/app/x", "secret/app/*"},
		{"rule 1: later first wildcard beats plus", []string{"secret/+/config", "secret/app/*"}, "secret/app/config", "secret/app/*"},
		{"rule 1: later glob beats earlier plus even ending in star", []string{"secret/+", "secret/a*"}, "secret/ab", "secret/a*"},
		{"rule 1: later plus beats earlier glob", []string{"secret/*", "secret/app/+"}, "secret/app/x", "secret/app/+"},
		{"rule 2: plus beats star at the same position", []string{"secret/*", "secret/+"}, "secret/foo", "secret/+"},
		{"rule 2: not ending in star wins", []string{"secret/+/ba*", "secret/+/bar"}, "secret/x/bar", "secret/+/bar"},
		{"rule 3: fewer plus segments win", []string{"a/+/+/d", "a/+/c/d"}, "a/x/c/d", "a/+/c/d"},
		{"rule 3: documented example", []string{"secret/+/+/foo/*", "secret/*"}, "secret/a/b/foo/c", "secret/*"},
		{"rule 4: longer wins", []string{"secret/+/bar/b*", "secret/+/bar/ba*"}, "secret/x/bar/baz", "secret/+/bar/ba*"},
		{"rule 4: longer non-prefix wins", []string{"+/b", "+/b/+"}, "x/b/c", "+/b/+"},
		{"rule 5: lexically larger wins", []string{"+/+/c", "+/b/+"}, "x/b/c", "+/b/+"},
		{"rule 5: order of declaration does not matter", []string{"+/b/+", "+/+/c"}, "x/b/c", "+/b/+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each pattern in its own policy, and all in one: same winner.
			var texts []string
			for _, p := range tt.patterns {
				texts = append(texts, paths(`"read"`, p))
			}
			for _, a := range []*ACL{newTestACL(t, texts...), newTestACL(t, paths(`"read"`, tt.patterns...))} {
				got := a.Allowed(Request{Path: tt.path, Op: OpRead})
				if got.Pattern != tt.want || !got.Allowed {
					t.Errorf("Allowed(%q) = %+v, want pattern %q", tt.path, got, tt.want)
				}
			}
		})
	}
}

func TestMatching(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		path    string
		want    bool
	}{
		{"exact", "secret/foo", "secret/foo", true},
		{"exact is not a prefix", "secret/foo", "secret/food", false},
		{"exact is not a parent", "secret/foo", "secret/foo/bar", false},
		{"exact trailing slash differs", "secret/foo", "secret/foo/", false},
		{"star under dir", "secret/bar/*", "secret/bar/zip/zap", true},
		{"star dir itself with slash", "secret/bar/*", "secret/bar/", true},
		{"star needs the slash", "secret/bar/*", "secret/bar", false},
		{"star is not a sibling", "secret/bar/*", "secret/bars/zip", false},
		{"star mid-segment", "secret/zip-*", "secret/zip-zap/zong", true},
		{"star mid-segment no match", "secret/zip-*", "secret/zip/zap", false},
		{"lone star", "*", "anything/at/all", true},
		{"plus one segment", "secret/+/teamb", "secret/foo/teamb", true},
		{"plus not two segments", "secret/+/teamb", "secret/foo/bar/teamb", false},
		{"plus not zero segments", "secret/+/teamb", "secret/teamb", false},
		{"plus matches an empty segment", "secret/+/teamb", "secret//teamb", true},
		{"plus pattern needs same depth", "secret/+/teamb", "secret/foo/teamb/x", false},
		{"plus pattern trailing slash differs", "secret/+", "secret/foo/", false},
		{"two pluses", "secret/+/+/teamb", "secret/foo/bar/teamb", true},
		{"lone plus", "+", "sys", true},
		{"lone plus one segment only", "+", "sys/x", false},
		{"plus then star", "secret/+/*", "secret/a/b/c", true},
		{"plus then star needs the segment", "secret/+/*", "secret/a", false},
		{"plus then prefix segment", "secret/+/app*", "secret/x/apple/y", true},
		{"plus then prefix segment mismatch", "secret/+/app*", "secret/x/ap/y", false},
		{"plus with literal suffix", "+/sys/policies/acl", "ns1/sys/policies/acl", true},
		{"literal plus inside segment", "c++/+/x", "c++/y/x", true},
		{"literal plus is not a wildcard", "c++/+/x", "cab/y/x", false},
		{"leading slash in request", "secret/foo", "//secret/foo", true},
		{"leading slash in pattern", "/secret/foo", "secret/foo", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestACL(t, paths(`"read"`, tt.pattern))
			if got := a.Allowed(Request{Path: tt.path, Op: OpRead}).Allowed; got != tt.want {
				t.Errorf("pattern %q: Allowed(%q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		name         string
		policies     []string
		req          Request
		want         bool
		wantCaps     Capability
		wantPolicies []string
	}{
		{
			name:     "deny by default",
			policies: []string{paths(`"read"`, "secret/a")},
			req:      Request{Path: "secret/b", Op: OpRead},
		},
		{
			name:     "no policies",
			req:      Request{Path: "secret/b", Op: OpRead},
			policies: nil,
		},
		{
			name:     "missing capability",
			policies: []string{paths(`"read"`, "secret/a")},
			req:      Request{Path: "secret/a", Op: OpUpdate},
			wantCaps: Read, wantPolicies: []string{"p0"},
		},
		{
			name:     "union across policies",
			policies: []string{paths(`"read"`, "secret/a"), paths(`"update"`, "secret/a")},
			req:      Request{Path: "secret/a", Op: OpUpdate},
			want:     true, wantCaps: Read | Update, wantPolicies: []string{"p0", "p1"},
		},
		{
			name:     "union within a policy",
			policies: []string{paths(`"read"`, "secret/a") + paths(`"delete"`, "secret/a")},
			req:      Request{Path: "secret/a", Op: OpDelete},
			want:     true, wantCaps: Read | Delete, wantPolicies: []string{"p0"},
		},
		{
			name:     "deny wins in a union",
			policies: []string{paths(`"read", "sudo"`, "secret/a"), paths(`"deny"`, "secret/a")},
			req:      Request{Path: "secret/a", Op: OpRead},
			wantCaps: Deny, wantPolicies: []string{"p0", "p1"},
		},
		{
			name:     "deny wins in a union whatever the order",
			policies: []string{paths(`"deny"`, "secret/a"), paths(`"read"`, "secret/a")},
			req:      Request{Path: "secret/a", Op: OpRead},
			wantCaps: Deny, wantPolicies: []string{"p0", "p1"},
		},
		{
			name:     "deny in the winning rule beats a broader grant",
			policies: []string{paths(`"read"`, "secret/*"), paths(`"deny"`, "secret/super-secret")},
			req:      Request{Path: "secret/super-secret", Op: OpRead},
			wantCaps: Deny, wantPolicies: []string{"p1"},
		},
		{
			name:     "a broader deny loses to a more specific grant",
			policies: []string{paths(`"deny"`, "secret/*"), paths(`"read"`, "secret/open")},
			req:      Request{Path: "secret/open", Op: OpRead},
			want:     true, wantCaps: Read, wantPolicies: []string{"p1"},
		},
		{
			name:     "an empty rule shadows a broader grant",
			policies: []string{paths(`"read"`, "secret/*"), paths(``, "secret/closed")},
			req:      Request{Path: "secret/closed", Op: OpRead},
			wantCaps: 0, wantPolicies: []string{"p1"},
		},
		{
			name:     "legacy write policy",
			policies: []string{`path "secret/*" { policy = "write" }`},
			req:      Request{Path: "secret/x", Op: OpCreate},
			want:     true, wantCaps: Create | Read | Update | Delete | List, wantPolicies: []string{"p0"},
		},
		{
			name:     "legacy write has no patch",
			policies: []string{`path "secret/*" { policy = "write" }`},
			req:      Request{Path: "secret/x", Op: OpPatch},
			wantCaps: Create | Read | Update | Delete | List, wantPolicies: []string{"p0"},
		},
		{
			name:     "legacy deny",
			policies: []string{`path "secret/*" { policy = "write" }`, `path "secret/x" { policy = "deny" }`},
			req:      Request{Path: "secret/x", Op: OpRead},
			wantCaps: Deny, wantPolicies: []string{"p1"},
		},
		{
			name:     "sudo required and granted",
			policies: []string{paths(`"update", "sudo"`, "sys/audit/*")},
			req:      Request{Path: "sys/audit/file", Op: OpUpdate, RequiresSudo: true},
			want:     true, wantCaps: Update | Sudo, wantPolicies: []string{"p0"},
		},
		{
			name:     "sudo required and missing",
			policies: []string{paths(`"update"`, "sys/audit/*")},
			req:      Request{Path: "sys/audit/file", Op: OpUpdate, RequiresSudo: true},
			wantCaps: Update, wantPolicies: []string{"p0"},
		},
		{
			name:     "sudo alone is not enough",
			policies: []string{paths(`"sudo"`, "sys/audit/*")},
			req:      Request{Path: "sys/audit/file", Op: OpUpdate, RequiresSudo: true},
			wantCaps: Sudo, wantPolicies: []string{"p0"},
		},
		{
			name:     "help is always allowed",
			policies: nil,
			req:      Request{Path: "secret/x", Op: OpHelp},
			want:     true,
		},
		{
			name:     "unknown operation",
			policies: []string{paths(`"create", "read", "update", "patch", "delete", "list", "sudo"`, "*")},
			req:      Request{Path: "secret/x", Op: "head"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestACL(t, tt.policies...)
			got := a.Allowed(tt.req)
			if got.Allowed != tt.want || got.Capabilities != tt.wantCaps || !cmp.Equal(got.Policies, tt.wantPolicies) {
				t.Errorf("Allowed(%+v) = %+v, want allowed %v, capabilities %v, policies %q",
					tt.req, got, tt.want, tt.wantCaps, tt.wantPolicies)
			}
			if got.Allowed == (got.DeniedBy != "") {
				t.Errorf("Allowed(%+v) = %+v, want DeniedBy set exactly when denied", tt.req, got)
			}
		})
	}
}

// TestList covers how Vault matches LIST requests: the HTTP layer appends
// "/", and the ACL also tries the path without it.
func TestList(t *testing.T) {
	tests := []struct {
		name     string
		policies []string
		req      Request
		want     bool
		pattern  string
	}{
		{"exact without slash, request without", []string{paths(`"list"`, "secret/metadata/foo")},
			Request{Path: "secret/metadata/foo", Op: OpList}, true, "secret/metadata/foo"},
		{"exact without slash, request with", []string{paths(`"list"`, "secret/metadata/foo")},
			Request{Path: "secret/metadata/foo/", Op: OpList}, true, "secret/metadata/foo"},
		{"exact with slash, request without", []string{paths(`"list"`, "secret/metadata/foo/")},
			Request{Path: "secret/metadata/foo", Op: OpList}, true, "secret/metadata/foo/"},
		{"exact with slash preferred", []string{paths(`"list"`, "secret/metadata/foo/") + paths(`"deny"`, "secret/metadata/foo")},
			Request{Path: "secret/metadata/foo/", Op: OpList}, true, "secret/metadata/foo/"},
		{"read does not trim", []string{paths(`"read"`, "secret/metadata/foo")},
			Request{Path: "secret/metadata/foo/", Op: OpRead}, false, ""},
		{"plus without slash", []string{paths(`"list"`, "+/sys/policies/acl")},
			Request{Path: "ns1/sys/policies/acl", Op: OpList}, true, "+/sys/policies/acl"},
		{"plus with slash", []string{paths(`"list"`, "+/sys/policies/acl/")},
			Request{Path: "ns1/sys/policies/acl", Op: OpList}, true, "+/sys/policies/acl/"},
		{"star under the dir", []string{paths(`"list"`, "secret/metadata/*")},
			Request{Path: "secret/metadata/app", Op: OpList}, true, "secret/metadata/*"},
		{"star covers the dir itself", []string{paths(`"list"`, "secret/metadata/*")},
			Request{Path: "secret/metadata", Op: OpList}, true, "secret/metadata/*"},
		// Vault tries the trimmed path against globs before the path with
		// the slash: "secret/+" wins although "secret/dir/*" is more
		// specific for "secret/dir/".
		{"trimmed path tried first against globs", []string{paths(`"list"`, "secret/+") + paths(`"deny"`, "secret/dir/*")},
			Request{Path: "secret/dir/", Op: OpList}, true, "secret/+"},
		{"root list", []string{paths(`"list"`, "secret/")},
			Request{Path: "secret", Op: OpList}, true, "secret/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newTestACL(t, tt.policies...).Allowed(tt.req)
			if got.Allowed != tt.want || got.Pattern != tt.pattern {
				t.Errorf("Allowed(%+v) = %+v, want allowed %v by %q", tt.req, got, tt.want, tt.pattern)
			}
		})
	}
}

func TestWrapping(t *testing.T) {
	one := `path "auth/approle/role/r/secret-id" {
  capabilities     = ["update"]
  min_wrapping_ttl = "10s"
  max_wrapping_ttl = "90s"
}`
	other := `path "auth/approle/role/r/secret-id" {
  capabilities     = ["update"]
  min_wrapping_ttl = "5s"
  max_wrapping_ttl = "60s"
}`
	tests := []struct {
		name     string
		policies []string
		ttl      time.Duration
		want     bool
	}{
		{"not wrapped", []string{one}, 0, false},
		{"within bounds", []string{one}, 30 * time.Second, true},
		{"below min", []string{one}, 5 * time.Second, false},
		{"above max", []string{one}, 120 * time.Second, false},
		{"merge keeps the lower max", []string{one, other}, 75 * time.Second, false},
		{"merge keeps the lower min", []string{one, other}, 7 * time.Second, true},
		{"only max still requires wrapping", []string{`path "auth/approle/role/r/secret-id" {
  capabilities     = ["update"]
  max_wrapping_ttl = 60
}`}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestACL(t, tt.policies...)
			got := a.Allowed(Request{Path: "auth/approle/role/r/secret-id", Op: OpUpdate, WrapTTL: tt.ttl})
			if got.Allowed != tt.want {
				t.Errorf("Allowed(wrap %v) = %+v, want allowed %v", tt.ttl, got, tt.want)
			}
		})
	}
}

func TestRoot(t *testing.T) {
	a, err := NewACL(Default(), Root())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Root() {
		t.Fatalf("NewACL(default, root).Root() = false, want true")
	}
	for _, op := range []Operation{OpCreate, OpRead, OpUpdate, OpPatch, OpDelete, OpList} {
		got := a.Allowed(Request{Path: "sys/raw/anything", Op: op, RequiresSudo: true, Params: map[string]any{"x": 1}})
		if !got.Allowed || !got.IsRoot || !got.Capabilities.Has(Sudo) {
			t.Errorf("root Allowed(%s) = %+v, want allowed as root with sudo", op, got)
		}
	}
	if got := a.Capabilities("secret/x"); !cmp.Equal(got, []string{"root"}) {
		t.Errorf("root Capabilities() = %q, want [root]", got)
	}

	// A policy merely named "root" grants nothing.
	fake, err := NewACL(&Policy{Name: "root"})
	if err != nil {
		t.Fatal(err)
	}
	if fake.Root() || fake.Allowed(Request{Path: "secret/x", Op: OpRead}).Allowed {
		t.Errorf("ACL of a hand-built policy named root is root, want not")
	}
	if !Root().IsRoot() || Default().IsRoot() {
		t.Errorf("IsRoot() wrong for the built-ins")
	}
}

func TestDefaultPolicy(t *testing.T) {
	a, err := NewACL(Default())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		op   Operation
		want bool
	}{
		{"auth/token/lookup-self", OpRead, true},
		{"auth/token/lookup-self", OpUpdate, false},
		{"auth/token/renew-self", OpUpdate, true},
		{"auth/token/revoke-self", OpUpdate, true},
		{"sys/capabilities-self", OpUpdate, true},
		{"cubbyhole/mine", OpCreate, true},
		{"cubbyhole/", OpList, true},
		{"sys/wrapping/unwrap", OpUpdate, true},
		{"sys/tools/hash/sha2-256", OpUpdate, true},
		{"auth/token/lookup", OpUpdate, false},
		{"auth/token/create", OpUpdate, false},
		{"secret/data/app", OpRead, false},
		{"sys/policies/acl/default", OpUpdate, false},
		{"sys/mounts", OpRead, false},
	}
	for _, tt := range tests {
		if got := a.Allowed(Request{Path: tt.path, Op: tt.op}); got.Allowed != tt.want {
			t.Errorf("default policy Allowed(%s %s) = %+v, want allowed %v", tt.op, tt.path, got, tt.want)
		}
	}
}

func TestCapabilities(t *testing.T) {
	a := newTestACL(t,
		paths(`"update", "read", "sudo", "list"`, "secret/*"),
		paths(`"deny"`, "secret/locked"),
		paths(`"list"`, "secret/dir"),
		paths(``, "secret/empty"),
	)
	tests := []struct {
		path string
		want []string
	}{
		{"secret/x", []string{"list", "read", "sudo", "update"}},
		{"/secret/x", []string{"list", "read", "sudo", "update"}},
		{"secret/locked", []string{"deny"}},
		{"secret/empty", []string{"deny"}},
		{"other/x", []string{"deny"}},
		{"secret/dir/", []string{"list"}},
	}
	for _, tt := range tests {
		if got := a.Capabilities(tt.path); !cmp.Equal(got, tt.want) {
			t.Errorf("Capabilities(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestHasMountAccess(t *testing.T) {
	tests := []struct {
		name     string
		policies []string
		mount    string
		want     bool
	}{
		{"rule below the mount", []string{paths(`"read"`, "secret/data/app/*")}, "secret/", true},
		{"mount without slash", []string{paths(`"read"`, "secret/data/app/*")}, "secret", true},
		{"other mount", []string{paths(`"read"`, "secret/data/app/*")}, "kv/", false},
		{"sibling name", []string{paths(`"read"`, "secrets/x")}, "secret/", false},
		{"glob over the mount", []string{paths(`"read"`, "sec*")}, "secret/", true},
		{"plus rule", []string{paths(`"read"`, "+/data/app")}, "kv/", true},
		{"plus rule deeper mount", []string{paths(`"read"`, "team/+/data/*")}, "team/kv/", true},
		{"plus rule other mount", []string{paths(`"read"`, "team/+/data/*")}, "other/kv/", false},
		{"deny only", []string{paths(`"deny"`, "secret/x")}, "secret/", false},
		{"empty rule only", []string{paths(``, "secret/x")}, "secret/", false},
		{"nothing", nil, "secret/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newTestACL(t, tt.policies...).HasMountAccess(tt.mount); got != tt.want {
				t.Errorf("HasMountAccess(%q) = %v, want %v", tt.mount, got, tt.want)
			}
		})
	}
	root, _ := NewACL(Root())
	if !root.HasMountAccess("anything/") {
		t.Errorf("root HasMountAccess() = false, want true")
	}
}

func TestNewACLErrors(t *testing.T) {
	tests := []struct {
		name string
		p    *Policy
	}{
		{"nil policy", nil},
		{"bad pattern", &Policy{Name: "x", Rules: []Rule{{Pattern: "a/*/b", Capabilities: Read}}}},
		{"empty pattern", &Policy{Name: "x", Rules: []Rule{{Pattern: "", Capabilities: Read}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewACL(tt.p); err == nil {
				t.Errorf("NewACL(%+v) error = nil, want an error", tt.p)
			}
		})
	}
}

// TestHandBuiltRules checks that NewACL normalizes rules that did not come
// from Parse: deny with other capabilities, upper-case parameter names.
func TestHandBuiltRules(t *testing.T) {
	a, err := NewACL(&Policy{Name: "x", Rules: []Rule{{
		Pattern:           "/a",
		Capabilities:      Create | Deny,
		AllowedParameters: map[string][]any{"Key": {"v"}},
	}, {
		Pattern:            "b",
		Capabilities:       Create,
		AllowedParameters:  map[string][]any{"Key": {"v"}},
		RequiredParameters: []string{"Key"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Allowed(Request{Path: "a", Op: OpCreate}); got.Allowed {
		t.Errorf("Allowed(a) = %+v, want denied", got)
	}
	if got := a.Allowed(Request{Path: "b", Op: OpCreate, Params: map[string]any{"key": "v"}}); !got.Allowed {
		t.Errorf("Allowed(b) = %+v, want allowed", got)
	}
}
