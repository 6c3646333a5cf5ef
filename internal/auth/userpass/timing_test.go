//go:build unix

package userpass

import (
	"math"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
)

// timingOptions: 32 MiB and 2 passes, about 50 ms of CPU per login; the
// property does not depend on the parameters, and a login this long keeps
// timer and scheduling noise to a small fraction of it.
var timingOptions = map[string]string{optMemory: "32768", optIterations: "2", optParallelism: "1"}

// TestLoginTimingKnownVsUnknown is the timing requirement of the login
// path: a failed login for an unknown user costs what one for a known user
// with a wrong password does, within 5%. It drives the backend directly
// (no HTTP), 31 samples of each kind per round, interleaved and alternating
// which kind goes first.
//
// Two medians are compared, and a round passes when both are within 5%:
//   - the median over pairs of wall-clock ratios unknown/known, each pair
//     measured back to back, so that the load of a shared machine (other
//     processes taking the CPUs) hits both members of a pair alike;
//   - the ratio of the median CPU times the process spent per login, which
//     measures the work itself whatever else runs on the machine.
//
// The plain ratio of wall-clock medians is logged too. A systematic
// difference (say, skipping the hash for unknown users) fails every round;
// a round spoiled by a burst of load is measured again, at most three
// rounds.
func TestLoginTimingKnownVsUnknown(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test: several seconds of argon2id")
	}
	if raceEnabled {
		t.Skip("timing test: not meaningful under the race detector")
	}
	const samples = 31
	h := newHarness(t, timingOptions)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "the right one"})
	type sample struct{ wall, cpu time.Duration }
	measure := func(name string) sample {
		// Failures stay below the lockout threshold: every known-user
		// sample does the same work (one failure recorded).
		h.clock.advance(defaultCounterReset)
		c0 := processCPU(t)
		start := time.Now()
		_, err := h.login(name, "a wrong password")
		s := sample{wall: time.Since(start), cpu: processCPU(t) - c0}
		wantStatus(t, err, 400, "invalid username or password")
		return s
	}
	measure("alice")
	measure("mallory")
	for round := 1; round <= 3; round++ {
		var knownWall, unknownWall, knownCPU, unknownCPU []time.Duration
		var pairRatios []float64
		for i := 0; i < samples; i++ {
			var k, u sample
			if i%2 == 0 {
				k, u = measure("alice"), measure("mallory")
			} else {
				u, k = measure("mallory"), measure("alice")
			}
			knownWall, unknownWall = append(knownWall, k.wall), append(unknownWall, u.wall)
			knownCPU, unknownCPU = append(knownCPU, k.cpu), append(unknownCPU, u.cpu)
			pairRatios = append(pairRatios, float64(u.wall)/float64(k.wall))
		}
		paired := median(pairRatios)
		cpu := float64(median(unknownCPU)) / float64(median(knownCPU))
		wall := float64(median(unknownWall)) / float64(median(knownWall))
		t.Logf("round %d: median wall known %v unknown %v (ratio %.4f); median paired wall ratio %.4f; median CPU known %v unknown %v (ratio %.4f)",
			round, median(knownWall), median(unknownWall), wall, paired, median(knownCPU), median(unknownCPU), cpu)
		if median(knownCPU) < 5*time.Millisecond {
			t.Fatalf("median known-user login used %v of CPU: the password was not hashed", median(knownCPU))
		}
		if math.Abs(paired-1) <= 0.05 && math.Abs(cpu-1) <= 0.05 {
			return
		}
	}
	t.Fatalf("unknown-user logins did not cost the same as known-user ones within 5%% in any of 3 rounds (see the log)")
}

// processCPU is the CPU time (user + system) the test process has used.
func processCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median[T time.Duration | float64](d []T) T {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
