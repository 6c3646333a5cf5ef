package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/loadgen"
)

type benchOutput struct {
	Address string           `json:"address"`
	Results []loadgen.Result `json:"results"`
}

func runBench(t *testing.T, addr, token string, args ...string) (benchOutput, result) {
	t.Helper()
	res := run(t, t.TempDir(), addr, token, "", append([]string{"bench", "-format=json"}, args...)...)
	var out benchOutput
	if res.code == 0 {
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
			t.Fatalf("bench output is not JSON: %v\n%s", err, res.stdout)
		}
	}
	return out, res
}

// TestBenchScenarios runs every scenario for a fixed number of requests
// against a real dev server (login limit off, so logins are not throttled)
// and checks the report: every request done, none failed, sane figures,
// fractions of the health baseline, and no scratch mount left behind.
func TestBenchScenarios(t *testing.T) {
	srv := coffertest.Start(t, map[string]string{"COFFER_LOGIN_RATE_LIMIT": "-1"},
		"server", "-dev", "-dev-listen-address=127.0.0.1:0", "-log-level=warn")
	out, res := runBench(t, srv.Addr, srv.RootToken, "-workers=4", "-requests=200", "-keys=50", "-value-size=256",
		"health", "kv-read", "kv-write", "kv-mixed", "transit-encrypt")
	if res.code != 0 {
		t.Fatalf("bench = exit %d\nstderr: %s", res.code, res.stderr)
	}
	if len(out.Results) != 5 {
		t.Fatalf("results = %d, want 5", len(out.Results))
	}
	// Logins cost an argon2id hash each: fewer of them.
	login, res := runBench(t, srv.Addr, srv.RootToken, "-workers=2", "-requests=20", "login-userpass")
	if res.code != 0 || len(login.Results) != 2 {
		t.Fatalf("login bench = exit %d\nstderr: %s", res.code, res.stderr)
	}
	for _, r := range append(out.Results, login.Results...) {
		want := int64(200)
		if r.Scenario == "login-userpass" || (r.Scenario == "health" && r.Workers == 2) {
			want = 20
		}
		if r.Requests != want || r.Errors != 0 || len(r.ErrorsByStatus) != 0 {
			t.Errorf("%s: requests %d errors %d %v, want %d and 0", r.Scenario, r.Requests, r.Errors, r.ErrorsByStatus, want)
		}
		l := r.Latency
		if r.Throughput <= 0 || l.P50 <= 0 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.Max || l.Mean <= 0 {
			t.Errorf("%s: implausible figures %+v throughput %v", r.Scenario, l, r.Throughput)
		}
		if r.Scenario == "health" && r.FractionOfHealth != nil {
			t.Errorf("health has a fraction of itself")
		}
		if r.Scenario != "health" && (r.FractionOfHealth == nil || *r.FractionOfHealth <= 0) {
			t.Errorf("%s: fraction_of_health missing", r.Scenario)
		}
	}
	if !strings.Contains(res.stderr, "running login-userpass") {
		t.Errorf("no progress on stderr: %q", res.stderr)
	}
	mounts := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "secrets", "list")
	auths := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "auth", "list")
	if strings.Contains(mounts.stdout+auths.stdout, "bench-") {
		t.Errorf("scratch mounts left behind:\n%s\n%s", mounts.stdout, auths.stdout)
	}

	// Table output for humans, with the baseline column.
	table := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "bench", "-workers=2", "-requests=20", "kv-read")
	if table.code != 0 || !strings.Contains(table.stdout, "of health") || !strings.Contains(table.stdout, "kv-read") {
		t.Fatalf("table = %+v", table)
	}

	// An existing mount given with -mount is used and left in place.
	_, res = runBench(t, srv.Addr, srv.RootToken, "-workers=2", "-requests=20", "-baseline=false", "-mount=secret", "-keys=1", "kv-write")
	if res.code != 0 {
		t.Fatalf("bench -mount=secret: %+v", res)
	}
	if got := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "kv", "get", "secret/key-0"); got.code != 0 {
		t.Fatalf("kv-write on -mount=secret wrote nothing: %+v", got)
	}
}

func TestBenchRefusals(t *testing.T) {
	srv := coffertest.StartDev(t)
	res := run(t, t.TempDir(), srv.Addr, "not-a-token", "", "bench", "-requests=10", "kv-read")
	if res.code != 1 || !strings.Contains(res.stderr, "403") || !strings.Contains(res.stderr, "permission denied") {
		t.Fatalf("bad token: %+v", res)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"bench", "nope"}, "unknown scenario"},
		{[]string{"bench", "-workers=0"}, "-workers"},
		{[]string{"bench", "-read-ratio=2", "kv-mixed"}, "-read-ratio"},
		{[]string{"bench", "-bogus"}, "unknown flag"},
	} {
		res := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", tc.args...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.msg) {
			t.Errorf("%v = exit %d %q, want exit 2 with %q", tc.args, res.code, res.stderr, tc.msg)
		}
	}
	// A sealed server: the baseline's first request fails with 503.
	if r := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "operator", "seal"); r.code != 0 {
		t.Fatalf("seal: %+v", r)
	}
	res = run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "bench", "-requests=10", "health")
	if res.code != 1 || !strings.Contains(res.stderr, "503") {
		t.Fatalf("sealed server: %+v", res)
	}
}
