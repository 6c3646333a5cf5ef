package tokenparams

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func TestUpdate(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want Params
		err  string
	}{
		{"empty", map[string]any{}, Params{}, ""},
		{"token fields", map[string]any{
			"token_policies": "Dev, ops,dev", "token_ttl": "1h", "token_max_ttl": 7200, "token_period": "0",
			"token_num_uses": "3", "token_explicit_max_ttl": "3h",
		}, Params{Policies: []string{"dev", "ops"}, TTL: time.Hour, MaxTTL: 2 * time.Hour, ExplicitMaxTTL: 3 * time.Hour, NumUses: 3}, ""},
		{"legacy names", map[string]any{"policies": []any{"a"}, "ttl": "60", "max_ttl": "120", "period": "30"},
			Params{Policies: []string{"a"}, TTL: time.Minute, MaxTTL: 2 * time.Minute, Period: 30 * time.Second, Legacy: true}, ""},
		{"token name wins", map[string]any{"policies": "old", "token_policies": "new", "ttl": "1", "token_ttl": "2"},
			Params{Policies: []string{"new"}, TTL: 2 * time.Second}, ""},
		{"neutral unsupported values", map[string]any{"token_type": "default", "token_no_default_policy": false, "token_bound_cidrs": []any{}, "bound_cidrs": ""},
			Params{}, ""},
		{"root refused", map[string]any{"token_policies": "root"}, Params{}, "cannot grant the root policy"},
		{"batch refused", map[string]any{"token_type": "batch"}, Params{}, "service tokens only"},
		{"no default refused", map[string]any{"token_no_default_policy": true}, Params{}, "always carry the default policy"},
		{"bound cidrs", map[string]any{"token_bound_cidrs": "10.1.2.3/8, 192.168.0.1", "bound_cidrs": "1.1.1.1"},
			Params{BoundCIDRs: []string{"10.0.0.0/8", "192.168.0.1/32"}}, ""},
		{"legacy bound cidrs", map[string]any{"bound_cidrs": []any{"::1"}}, Params{BoundCIDRs: []string{"::1/128"}}, ""},
		{"bad bound cidr", map[string]any{"token_bound_cidrs": "10.0.0.0/33"}, Params{}, "token_bound_cidrs"},
		{"ttl over max", map[string]any{"token_ttl": "2h", "token_max_ttl": "1h"}, Params{}, "token_ttl cannot be greater than token_max_ttl"},
		{"negative uses", map[string]any{"token_num_uses": -1}, Params{}, "token_num_uses"},
		{"bad duration", map[string]any{"token_ttl": "soon"}, Params{}, "token_ttl"},
		{"bad policy name", map[string]any{"token_policies": "a/b"}, Params{}, "invalid policy name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Params
			err := p.Update(tc.in)
			if tc.err != "" {
				var ire *logical.InvalidRequestError
				if !errors.As(err, &ire) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Update(%v) = %v, want 400 containing %q", tc.in, err, tc.err)
				}
				if diff := cmp.Diff(Params{}, p); diff != "" {
					t.Fatalf("a refused Update changed the params (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Update(%v) = %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, p); diff != "" {
				t.Errorf("Update(%v) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestUpdateKeepsUnsetFields(t *testing.T) {
	p := Params{Policies: []string{"a"}, TTL: time.Hour, NumUses: 2}
	if err := p.Update(map[string]any{"token_ttl": "30m"}); err != nil {
		t.Fatal(err)
	}
	want := Params{Policies: []string{"a"}, TTL: 30 * time.Minute, NumUses: 2}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		want logical.Auth
	}{
		{"plain", Params{Policies: []string{"a"}, TTL: time.Hour, MaxTTL: 2 * time.Hour, NumUses: 4},
			logical.Auth{Policies: []string{"a"}, TokenPolicies: []string{"a"}, TTL: time.Hour, MaxTTL: 2 * time.Hour, NumUses: 4, Renewable: true}},
		{"explicit max is tighter", Params{MaxTTL: 3 * time.Hour, ExplicitMaxTTL: time.Hour},
			logical.Auth{Policies: []string{}, TokenPolicies: []string{}, MaxTTL: time.Hour, Renewable: true}},
		{"explicit max alone", Params{ExplicitMaxTTL: time.Hour},
			logical.Auth{Policies: []string{}, TokenPolicies: []string{}, MaxTTL: time.Hour, Renewable: true}},
		{"periodic", Params{TTL: time.Hour, Period: 10 * time.Minute},
			logical.Auth{Policies: []string{}, TokenPolicies: []string{}, TTL: 10 * time.Minute, Period: 10 * time.Minute, Renewable: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a logical.Auth
			tc.p.Auth(&a)
			if diff := cmp.Diff(tc.want, a, cmpEmpty); diff != "" {
				t.Errorf("Auth() (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Transformer("emptySlice", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

func TestData(t *testing.T) {
	p := Params{Policies: []string{"a"}, TTL: time.Hour, Legacy: true}
	m := map[string]any{}
	p.Data(m)
	want := map[string]any{
		"token_policies": []string{"a"}, "policies": []string{"a"}, "token_ttl": int64(3600), "token_max_ttl": int64(0),
		"token_explicit_max_ttl": int64(0), "token_period": int64(0), "token_num_uses": 0, "token_type": "default",
		"token_no_default_policy": false, "token_bound_cidrs": []string{},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("Data() (-want +got):\n%s", diff)
	}
}
