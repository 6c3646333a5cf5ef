package policy

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicies builds n policies of 20 rules each, in the shapes real
// deployments use: per-team prefixes, "+" environments, exact credential
// paths, a shared path in every policy, and a few denies.
func benchPolicies(tb testing.TB, n int) []*Policy {
	tb.Helper()
	var ps []*Policy
	for i := range n {
		var b strings.Builder
		rule := func(pattern, caps string) {
			fmt.Fprintf(&b, "path %q {\n  capabilities = [%s]\n}\n", pattern, caps)
		}
		rule(fmt.Sprintf("secret/data/team%d/*", i), `"create", "read", "update", "patch", "delete"`)
		rule(fmt.Sprintf("secret/metadata/team%d/*", i), `"read", "list", "delete"`)
		rule(fmt.Sprintf("secret/data/team%d/prod/*", i), `"read"`)
		rule(fmt.Sprintf("secret/data/team%d/prod/root-ca", i), `"deny"`)
		rule(fmt.Sprintf("secret/data/+/team%d/config", i), `"read"`)
		rule(fmt.Sprintf("secret/data/shared/+/team%d/*", i), `"read", "list"`)
		for j := range 4 {
			rule(fmt.Sprintf("database/creds/team%d-role%d", i, j), `"read"`)
			rule(fmt.Sprintf("transit/encrypt/team%d-key%d", i, j), `"update"`)
		}
		rule(fmt.Sprintf("pki/issue/team%d-*", i), `"update"`)
		rule(fmt.Sprintf("auth/approle/role/team%d/secret-id", i), `"update"`)
		rule("auth/token/lookup-self", `"read"`)
		rule("sys/capabilities-self", `"update"`)
		rule(fmt.Sprintf("kv/+/team%d/+/settings", i), `"read"`)
		fmt.Fprintf(&b, "path %q {\n  capabilities = [\"create\", \"update\"]\n  allowed_parameters = {\n    \"common_name\" = [\"*.team%d.example.com\"]\n    \"ttl\" = []\n  }\n}\n",
			fmt.Sprintf("pki/sign/team%d", i), i)
		p, err := Parse(fmt.Sprintf("team%d", i), b.String())
		if err != nil {
			tb.Fatal(err)
		}
		if len(p.Rules) != 20 {
			tb.Fatalf("bench policy has %d rules, want 20", len(p.Rules))
		}
		ps = append(ps, p)
	}
	return ps
}

var benchRequests = []Request{
	{Path: "secret/data/team17/app/config", Op: OpRead},     // prefix
	{Path: "secret/data/team17/prod/root-ca", Op: OpRead},   // exact deny
	{Path: "secret/data/team17/prod/db", Op: OpUpdate},      // prefix, missing capability
	{Path: "secret/data/staging/team42/config", Op: OpRead}, // "+"
	{Path: "secret/data/shared/eu/team3/x/y/", Op: OpList},  // "+" and "*"
	{Path: "secret/metadata/team8/", Op: OpList},            // list with slash
	{Path: "database/creds/team31-role2", Op: OpRead},       // exact
	{Path: "transit/encrypt/team49-key3", Op: OpUpdate},     // exact
	{Path: "auth/token/lookup-self", Op: OpRead},            // exact, union of 50
	{Path: "kv/prod/team12/web/settings", Op: OpRead},       // two "+"
	{Path: "pki/issue/team25-web", Op: OpUpdate},            // prefix
	{Path: "secret/data/team99/app", Op: OpRead},            // miss
	{Path: "sys/mounts", Op: OpRead},                        // miss
	{Path: "pki/sign/team5", Op: OpUpdate, Params: map[string]any{"common_name": "www.team5.example.com", "ttl": "1h"}},
	{Path: "pki/sign/team5", Op: OpUpdate, Params: map[string]any{"common_name": "evil.example.com"}}, // denied param
	{Path: "secret/data/team40/a/very/deep/path/to/a/secret", Op: OpDelete},
}

// BenchmarkAllowed evaluates a mix of requests against 50 policies of 20
// rules each (1,000 rules).
func BenchmarkAllowed(b *testing.B) {
	a, err := NewACL(benchPolicies(b, 50)...)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		a.Allowed(benchRequests[i%len(benchRequests)])
	}
}

func BenchmarkNewACL(b *testing.B) {
	ps := benchPolicies(b, 50)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewACL(ps...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("default", DefaultPolicy); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchRequests keeps the benchmark honest: its requests get the
// answers they are meant to get.
func TestBenchRequests(t *testing.T) {
	a, err := NewACL(benchPolicies(t, 50)...)
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, false, false, true, true, true, true, true, true, true, true, false, false, true, false, true}
	for i, req := range benchRequests {
		if got := a.Allowed(req); got.Allowed != want[i] {
			t.Errorf("Allowed(%+v) = %+v, want allowed %v", req, got, want[i])
		}
	}
	if got := testing.AllocsPerRun(100, func() {
		for _, req := range benchRequests[:13] {
			a.Allowed(req)
		}
	}); got != 0 {
		t.Errorf("Allowed allocates %v times per run of allowed and simply denied requests, want 0", got)
	}
}
