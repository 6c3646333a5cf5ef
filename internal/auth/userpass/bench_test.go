//go:build unix

package userpass

import (
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
)

// BenchmarkLogin measures one login through the backend (no HTTP) with
// the default argon2id parameters: a known user with the right password,
// a known user with a wrong one, and an unknown user. The last two should
// cost the same. Besides wall time per login it reports the process CPU
// time per login (cpu-ns/op), which other load on the machine does not
// inflate.
//
//	go test -run '^$' -bench BenchmarkLogin -benchtime 40x ./internal/auth/userpass/
func BenchmarkLogin(b *testing.B) {
	h := newHarness(b, nil)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "the right one"})
	for _, bc := range []struct {
		name, user, password string
		ok                   bool
	}{
		{"known-right", "alice", "the right one", true},
		{"known-wrong", "alice", "a wrong password", false},
		{"unknown", "mallory", "a wrong password", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cpu0 := processCPU(b)
			for b.Loop() {
				h.clock.advance(defaultCounterReset) // never lock alice
				_, err := h.login(bc.user, bc.password)
				if (err == nil) != bc.ok {
					b.Fatalf("login(%s) = %v", bc.user, err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
