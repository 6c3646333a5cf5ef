package sealedsecret_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

// benchCount is how many SealedSecrets each controller unseals
// (COFFER_SS_BENCH_COUNT overrides it, for quick trials).
func benchCount() int {
	if n, err := strconv.Atoi(os.Getenv("COFFER_SS_BENCH_COUNT")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// benchBackground is how many unrelated 64 KiB Secrets (as Helm release
// Secrets are) sit in the watched namespace before the controller starts
// (COFFER_SS_BENCH_BACKGROUND; default none).
func benchBackground() int {
	n, _ := strconv.Atoi(os.Getenv("COFFER_SS_BENCH_BACKGROUND"))
	return max(n, 0)
}

// BenchmarkThousandSealedSecrets applies 1,000 SealedSecrets (two items
// each, sealed to the controller's RSA-4096 key) at once and measures the
// time until all 1,000 Secrets exist and the controller's peak RSS, for
// coffer controller (a child process, default flags; then again limited
// to the Bitnami controller's client rate, 5 QPS / burst 10) and the
// Bitnami controller v0.27.1, on the same API server in the same run.
// Each controller watches only its own namespaces.
//
//	go test -run '^$' -bench ThousandSealedSecrets -benchtime 1x -timeout 90m ./internal/controller/sealedsecret/
//	COFFER_SS_BENCH_BACKGROUND=200 go test ... (the same with 200 unrelated 64 KiB Secrets around)
func BenchmarkThousandSealedSecrets(b *testing.B) {
	e := startEnv(b)
	coffer := buildCoffer(b)
	n := benchCount()
	for b.Loop() {
		type run struct {
			name  string
			start func(b *testing.B, ctl, app string) (pid int, cert []byte, stop func())
		}
		runs := []run{
			{"coffer", func(b *testing.B, ctl, app string) (int, []byte, func()) {
				return startCofferProcess(b, e, coffer, ctl, app)
			}},
			{"coffer-qps5", func(b *testing.B, ctl, app string) (int, []byte, func()) {
				return startCofferProcess(b, e, coffer, ctl, app, "--kube-api-qps=5", "--kube-api-burst=10")
			}},
			{"bitnami", func(b *testing.B, ctl, app string) (int, []byte, func()) {
				bn := sealedsecretstest.StartBitnami(b, e.cp.Config, sealedsecretstest.BitnamiOptions{Namespace: ctl, Namespaces: []string{app}})
				return bn.Pid(), bn.CertPEM(b), bn.Stop
			}},
		}
		for _, r := range runs {
			ctl, app := e.namespace(b, "bctl"), e.namespace(b, "bapp")
			e.backgroundSecrets(b, app, benchBackground())
			pid, cert, stop := r.start(b, ctl, app)
			res := e.applyAndWait(b, cert, app, n, pid)
			stop()
			b.Logf("%-12s %d Secrets in %6.1fs (apply %.1fs), peak RSS %5.1f MiB (anonymous %5.1f MiB), CPU %.1fs",
				r.name, n, res.total.Seconds(), res.apply.Seconds(), float64(res.peakRSS)/(1<<20), float64(res.peakAnon)/(1<<20), res.cpu.Seconds())
			b.ReportMetric(res.total.Seconds(), r.name+"-s")
			b.ReportMetric(float64(res.peakRSS)/(1<<20), r.name+"-peak-MiB")
			b.ReportMetric(float64(res.peakAnon)/(1<<20), r.name+"-anon-MiB")
			b.ReportMetric(res.cpu.Seconds(), r.name+"-cpu-s")
		}
	}
}

// backgroundSecrets creates n unrelated Secrets of 64 KiB in ns.
func (e *env) backgroundSecrets(b *testing.B, ns string, n int) {
	b.Helper()
	blob := make([]byte, 64<<10)
	for i := range blob {
		blob[i] = byte('a' + i%26)
	}
	for i := range n {
		_, err := e.cs.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("background-%04d", i)},
			Data:       map[string][]byte{"release": blob},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
}

type benchResult struct {
	total, apply, cpu time.Duration
	peakRSS, peakAnon int64
}

// applyAndWait seals n Secrets to cert, creates the SealedSecrets from 16
// goroutines, and waits (watching Secrets in app) until all n exist.
func (e *env) applyAndWait(b *testing.B, cert []byte, app string, n int, pid int) benchResult {
	b.Helper()
	pub, err := sealedsecrets.PublicKeyFromCertPEM(cert, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	objs := make([]*sealedsecrets.SealedSecret, n)
	for i := range objs {
		ss, err := sealedsecrets.Seal(pub, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: app, Name: fmt.Sprintf("s%04d", i)},
			StringData: map[string]string{"username": fmt.Sprintf("user%d", i), "password": fmt.Sprintf("password-%d-%x", i, time.Now().UnixNano())},
		})
		if err != nil {
			b.Fatal(err)
		}
		objs[i] = ss
	}
	ctx := context.Background()
	// The client's 30 s timeout ends watches: each one resumes from the
	// last resourceVersion seen.
	watchFrom := func(rv string) watch.Interface {
		w, err := e.cs.CoreV1().Secrets(app).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		if err != nil {
			b.Fatal(err)
		}
		return w
	}
	list, err := e.cs.CoreV1().Secrets(app).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rv := list.ResourceVersion
	w := watchFrom(rv)
	defer func() { w.Stop() }()

	// Sample the resident set while the controller works: VmHWM gives the
	// peak of the whole RSS; this gives the peak of its anonymous part
	// (heap, stacks), without the binary's file-backed pages.
	var peakAnon atomic.Int64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if a := rssAnon(pid); a > peakAnon.Load() {
				peakAnon.Store(a)
			}
			select {
			case <-sampling:
				return
			case <-tick.C:
			}
		}
	}()

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := e.c.Create(ctx, objs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	applied := time.Since(start)

	seen := map[string]bool{}
	timeout := time.After(45 * time.Minute)
	for len(seen) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				w = watchFrom(rv)
				continue
			}
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				if s, ok := ev.Object.(*corev1.Secret); ok {
					rv = s.ResourceVersion
					if !strings.HasPrefix(s.Name, "background-") {
						seen[s.Name] = true
					}
				}
			}
		case <-timeout:
			b.Fatalf("only %d of %d secrets after 45 minutes", len(seen), n)
		}
	}
	total := time.Since(start)
	close(sampling)
	<-sampled
	rss, cpu := procStats(b, pid)
	return benchResult{total: total, apply: applied, cpu: cpu, peakRSS: rss, peakAnon: peakAnon.Load()}
}

// rssAnon reads a process's current anonymous resident memory (RssAnon).
func rssAnon(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procStats reads a process's peak resident set (VmHWM) and CPU time.
func procStats(b *testing.B, pid int) (int64, time.Duration) {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var hwm int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			hwm = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may contain spaces) start after ")".
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return hwm, time.Duration(ut+st) * time.Second / clkTck
}

// buildCoffer builds the coffer binary (or takes $COFFER_BIN).
func buildCoffer(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("COFFER_BIN"); p != "" {
		return p
	}
	out := filepath.Join(b.TempDir(), "coffer")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/coffer")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
	return out
}

// startCofferProcess runs `coffer controller` as a child process with its
// default flags (RSA-4096 keys), watching ctl and app.
func startCofferProcess(b *testing.B, e *env, bin, ctl, app string, extra ...string) (int, []byte, func()) {
	b.Helper()
	health, api := freePort(b), freePort(b)
	args := append([]string{"controller",
		"--kubeconfig", e.kubeconfig,
		"--namespace", ctl,
		"--watch-namespaces", ctl + "," + app,
		"--leader-elect=false",
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(health),
		"--listen-addr", "127.0.0.1:" + strconv.Itoa(api),
		"--log-level", "warn",
	}, extra...)
	cmd := exec.Command(bin, args...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	b.Cleanup(stop)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(api) + "/v1/cert.pem")
		if err == nil {
			var sb strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd.Process.Pid, []byte(sb.String()), stop
			}
		}
		select {
		case <-done:
			b.Fatalf("coffer controller exited:\n%s", logs)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("coffer controller not ready:\n%s", logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
