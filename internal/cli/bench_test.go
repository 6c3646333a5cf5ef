package cli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/cli"
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

// checkResult checks one scenario's figures: every request done, none
// failed, latencies ordered and positive, fraction of the baseline present
// for every scenario but the baseline itself.
func checkResult(t *testing.T, r loadgen.Result, wantRequests int64, wantWorkers int) {
	t.Helper()
	checkResultFraction(t, r, wantRequests, wantWorkers, true)
}

func checkResultFraction(t *testing.T, r loadgen.Result, wantRequests int64, wantWorkers int, wantFraction bool) {
	t.Helper()
	if r.Requests != wantRequests || r.Errors != 0 || len(r.ErrorsByStatus) != 0 {
		t.Errorf("%s: requests %d errors %d %v, want %d and 0", r.Scenario, r.Requests, r.Errors, r.ErrorsByStatus, wantRequests)
	}
	if r.Workers != wantWorkers {
		t.Errorf("%s: workers = %d, want %d", r.Scenario, r.Workers, wantWorkers)
	}
	l := r.Latency
	if r.Throughput <= 0 || r.DurationSeconds <= 0 || l.P50 <= 0 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.Max || l.Mean <= 0 || l.Mean > l.Max {
		t.Errorf("%s: implausible figures %+v throughput %v duration %v", r.Scenario, l, r.Throughput, r.DurationSeconds)
	}
	// Throughput is requests over the measured time.
	if got := float64(r.Requests) / r.DurationSeconds; got/r.Throughput > 1.001 || got/r.Throughput < 0.999 {
		t.Errorf("%s: throughput %v, but %d requests in %vs", r.Scenario, r.Throughput, r.Requests, r.DurationSeconds)
	}
	if r.Scenario == "health" && r.FractionOfHealth != nil {
		t.Errorf("health has a fraction of itself")
	}
	if r.Scenario != "health" && wantFraction && (r.FractionOfHealth == nil || *r.FractionOfHealth <= 0) {
		t.Errorf("%s: fraction_of_health missing", r.Scenario)
	}
}

// TestBenchScenarios runs every scenario for a fixed number of requests
// against a real dev server (login limit off, so logins are not throttled)
// and checks the report: every request done, none failed, sane figures,
// fractions of the health baseline, no scratch mount and no login token
// left behind.
func TestBenchScenarios(t *testing.T) {
	srv := coffertest.Start(t, map[string]string{"COFFER_LOGIN_RATE_LIMIT": "-1"},
		"server", "-dev", "-dev-listen-address=127.0.0.1:0", "-log-level=warn")
	out, res := runBench(t, srv.Addr, srv.RootToken, "-workers=4", "-requests=200", "-keys=50", "-value-size=256",
		"kv-read", "kv-write", "kv-mixed", "transit-encrypt")
	if res.code != 0 {
		t.Fatalf("bench = exit %d\nstderr: %s", res.code, res.stderr)
	}
	var names []string
	for _, r := range out.Results {
		names = append(names, r.Scenario)
		checkResult(t, r, 200, 4)
	}
	if got := strings.Join(names, " "); got != "health kv-read kv-write kv-mixed transit-encrypt" {
		t.Errorf("scenarios run = %q, want the baseline first, then the order asked", got)
	}
	if out.Address != srv.Addr {
		t.Errorf("address = %q, want %q", out.Address, srv.Addr)
	}

	// The JSON field names are a stable interface: check them by name.
	var raw struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scenario", "workers", "duration_seconds", "requests", "errors", "errors_by_status", "throughput_per_second", "latency_ms", "fraction_of_health"} {
		if _, ok := raw.Results[1][k]; !ok {
			t.Errorf("JSON result lacks %q: %v", k, raw.Results[1])
		}
	}
	lat, _ := raw.Results[1]["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p95", "p99", "max", "mean"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("latency_ms lacks %q: %v", k, lat)
		}
	}

	// Logins cost an argon2id hash each: fewer of them. Every token they
	// issue is revoked afterwards.
	accessors := func() int {
		t.Helper()
		r := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "list", "-format=json", "auth/token/accessors")
		var keys []string
		if err := json.Unmarshal([]byte(r.stdout), &keys); err != nil {
			t.Fatalf("list accessors: %v\n%+v", err, r)
		}
		return len(keys)
	}
	before := accessors()
	login, res := runBench(t, srv.Addr, srv.RootToken, "-workers=2", "-requests=20", "login-userpass")
	if res.code != 0 || len(login.Results) != 2 {
		t.Fatalf("login bench = exit %d\nstderr: %s", res.code, res.stderr)
	}
	for _, r := range login.Results {
		checkResult(t, r, 20, 2)
	}
	if after := accessors(); after != before {
		t.Errorf("tokens: %d before the login bench, %d after; want the logins' tokens revoked", before, after)
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

	// An existing mount given with -mount is used and left in place; -keep
	// leaves a scratch mount.
	_, res = runBench(t, srv.Addr, srv.RootToken, "-workers=2", "-requests=20", "-baseline=false", "-mount=secret/", "-keys=1", "kv-write")
	if res.code != 0 {
		t.Fatalf("bench -mount=secret/: %+v", res)
	}
	if got := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "kv", "get", "secret/key-0"); got.code != 0 {
		t.Fatalf("kv-write on -mount=secret wrote nothing: %+v", got)
	}
	_, res = runBench(t, srv.Addr, srv.RootToken, "-workers=2", "-requests=5", "-baseline=false", "-mount=kept", "-keep", "-keys=3", "kv-read")
	if res.code != 0 {
		t.Fatalf("bench -keep: %+v", res)
	}
	if got := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "kv", "get", "kept/key-2"); got.code != 0 {
		t.Fatalf("-keep removed the mount or its keys: %+v", got)
	}
	// -populate=false reads those keys as they are: still version 1.
	out, res = runBench(t, srv.Addr, srv.RootToken, "-workers=2", "-requests=30", "-baseline=false", "-mount=kept", "-populate=false", "-keys=3", "kv-read")
	if res.code != 0 {
		t.Fatalf("bench -populate=false: %+v", res)
	}
	checkResultFraction(t, out.Results[0], 30, 2, false)
	if out.Results[0].FractionOfHealth != nil {
		t.Errorf("-baseline=false: fraction_of_health = %v, want none", *out.Results[0].FractionOfHealth)
	}
	if got := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "kv", "get", "-format=json", "kept/key-2"); !strings.Contains(got.stdout, `"version": 1`) {
		t.Fatalf("-populate=false wrote the keys again: %+v", got)
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
		{[]string{"bench", "-duration=0"}, "-duration"},
		{[]string{"bench", "-value-size=0"}, "-value-size"},
		{[]string{"bench", "-read-ratio=2", "kv-mixed"}, "-read-ratio"},
		{[]string{"bench", "-format=yaml"}, "table or json"},
		{[]string{"bench", "-populate=false", "kv-read"}, "needs -mount"},
		{[]string{"bench", "-bogus"}, "unknown flag"},
		{[]string{"bench", "-workers=many"}, "invalid argument"},
	} {
		res := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", tc.args...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.msg) || !strings.Contains(res.stderr, "hint: run 'coffer bench -help'") {
			t.Errorf("%v = exit %d %q, want exit 2 with %q and the usage hint", tc.args, res.code, res.stderr, tc.msg)
		}
	}

	// -mount naming something that is not KV v2 is refused, and left alone.
	if r := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "secrets", "enable", "-path=old", "-version=1", "kv"); r.code != 0 {
		t.Fatalf("enable kv v1: %+v", r)
	}
	res = run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "bench", "-requests=10", "-baseline=false", "-mount=old", "kv-read")
	if res.code != 1 || !strings.Contains(res.stderr, "not a KV version 2 mount") {
		t.Fatalf("-mount on kv v1: %+v", res)
	}
	if r := run(t, t.TempDir(), srv.Addr, srv.RootToken, "", "secrets", "list"); !strings.Contains(r.stdout, "old/") {
		t.Fatalf("the kv v1 mount was removed: %+v", r)
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

// boltServer is a real (not dev) server: bbolt storage in a temp dir,
// auto-unsealed by a static key, initialized through the CLI.
type boltServer struct {
	addr, token, caFile string
	srv                 *coffertest.Server
}

func startBoltServer(tb testing.TB, withTLS bool) boltServer {
	tb.Helper()
	dir := tb.TempDir()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{"COFFER_SEAL_TYPE": "static", "COFFER_SEAL_KEY": base64.StdEncoding.EncodeToString(key)}
	args := []string{"server", "-address=127.0.0.1:0", "-storage-path=" + filepath.Join(dir, "data", "coffer.db"), "-log-level=warn"}
	var s boltServer
	if withTLS {
		cert, keyFile := writeSelfSigned(tb, dir)
		s.caFile = cert
		args = append(args, "-tls-cert-file="+cert, "-tls-key-file="+keyFile)
	} else {
		args = append(args, "-tls-disable")
	}
	srv := coffertest.Start(tb, env, args...)
	s.addr, s.srv = srv.Addr, srv
	res := runTB(tb, map[string]string{"COFFER_ADDR": s.addr, "COFFER_CACERT": s.caFile},
		"operator", "init", "-recovery-shares=1", "-recovery-threshold=1", "-format=json")
	var init struct {
		RootToken string `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &init); err != nil || init.RootToken == "" {
		tb.Fatalf("operator init: %v\n%+v", err, res)
	}
	s.token = init.RootToken
	return s
}

// runTB runs the CLI in-process with exactly the given environment.
func runTB(tb testing.TB, vars map[string]string, args ...string) result {
	tb.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{
		Getenv:  func(k string) string { return vars[k] },
		Stdin:   strings.NewReader(""),
		Stdout:  &out,
		Stderr:  &errb,
		HomeDir: func() (string, error) { return tb.TempDir(), nil },
	}
	err := cli.RunEnv(context.Background(), env, args)
	return result{code: cli.ExitCode(err), stdout: out.String(), stderr: errb.String()}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 (its own
// CA) and its key, and returns their paths.
func writeSelfSigned(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "coffer bench test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

// TestBenchBoltTLS runs bench against a real server on bbolt over TLS,
// trusting its certificate through COFFER_CACERT as every client command
// does, and checks the once-a-second progress lines on stderr.
func TestBenchBoltTLS(t *testing.T) {
	s := startBoltServer(t, true)
	vars := map[string]string{"COFFER_ADDR": s.addr, "COFFER_TOKEN": s.token, "COFFER_CACERT": s.caFile}
	res := runTB(t, vars, "bench", "-format=json", "-workers=4", "-requests=100", "-keys=20", "kv-read", "kv-write")
	if res.code != 0 {
		t.Fatalf("bench over TLS: %+v", res)
	}
	var out benchOutput
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 3 {
		t.Fatalf("results = %+v", out.Results)
	}
	for _, r := range out.Results {
		checkResult(t, r, 100, 4)
	}

	// Without the CA the certificate is refused: exit 1, nothing measured.
	delete(vars, "COFFER_CACERT")
	if res := runTB(t, vars, "bench", "-requests=10", "health"); res.code != 1 || !strings.Contains(res.stderr, "certificate") {
		t.Fatalf("bench without the CA: %+v", res)
	}

	// A run over one second prints at least one progress line (requests so
	// far, rate, errors), one per line when stderr is not a terminal.
	vars["COFFER_CACERT"] = s.caFile
	res = runTB(t, vars, "bench", "-workers=2", "-duration=1500ms", "-baseline=false", "health")
	if res.code != 0 || !strings.Contains(res.stderr, "health: 1s, ") || !strings.Contains(res.stderr, " errors\n") || strings.Contains(res.stderr, "\r") {
		t.Fatalf("progress: %+v", res)
	}
	// The end of a timed run lets the requests in flight finish: the
	// server has no cancelled request to complain about.
	if log := s.srv.Stderr.String(); strings.Contains(log, "context canceled") {
		t.Errorf("the server saw requests cancelled by the bench:\n%s", log)
	}
}

// BenchmarkServerKVRead drives a real server on bbolt (in this process,
// plain HTTP) with 32 loadgen workers reading 1 KiB values: the kv-read
// scenario of `coffer bench` as a testing.B benchmark, so that the whole
// pipeline can be profiled with
//
//	go test -run '^$' -bench BenchmarkServerKVRead -benchtime 100000x -cpuprofile cpu.out ./internal/cli/
//	go tool pprof -top -focus 'server.\(\*Server\).ServeHTTP' cpu.out
//
// The client shares the process (and the CPUs) with the server, and the
// profile includes the set-up (1,000 writes); ns/op, req/s and p99-ms are
// those of the measured reads only.
func BenchmarkServerKVRead(b *testing.B) {
	s := startBoltServer(b, false)
	cfg := loadgen.Config{Addr: s.addr, Token: s.token, Workers: 32, Requests: int64(b.N), ValueSize: 1024, Keys: 1000}
	res, err := loadgen.Run(context.Background(), cfg, "kv-read")
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors != 0 {
		b.Fatalf("errors: %v", res.ErrorsByStatus)
	}
	b.ReportMetric(1e9/res.Throughput, "ns/op")
	b.ReportMetric(res.Throughput, "req/s")
	b.ReportMetric(res.Latency.P99, "p99-ms")
}
