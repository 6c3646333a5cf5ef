package secretsync_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/controller/secretsync"
	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

// countingTransport counts the requests the controller sends to Coffer.
type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf reads a child process's CPU time (utime+stime) from /proc.
func cpuOf(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

var rootTokenRe = regexp.MustCompile(`Root Token: (\S+)`)

// BenchmarkSteadyState runs COFFER_BENCH_SYNCS (default 1000) SecretSyncs
// with a COFFER_BENCH_REFRESH_S (default 60) second refresh, spread over
// 10 namespaces, against a coffer server running as its own process, and
// measures over COFFER_BENCH_WINDOW_S (default 180) seconds of steady
// state the requests per second the controller sends to Coffer and the
// CPU the controller (this process) and the server use. It runs once,
// whatever b.N:
//
//	go test -run '^$' -bench BenchmarkSteadyState -benchtime 1x -timeout 30m ./internal/controller/secretsync/
func BenchmarkSteadyState(b *testing.B) {
	syncs := envInt("COFFER_BENCH_SYNCS", 1000)
	refresh := time.Duration(envInt("COFFER_BENCH_REFRESH_S", 60)) * time.Second
	window := time.Duration(envInt("COFFER_BENCH_WINDOW_S", 180)) * time.Second
	const namespaces = 10

	e := newEnvWith(b, func() (string, string, int) {
		p := coffertest.StartProcess(b, nil, "server", "-dev", "-dev-listen-address=127.0.0.1:0", "-log-level=warn")
		m := rootTokenRe.FindStringSubmatch(p.Stdout.String())
		if m == nil {
			b.Fatalf("no root token in the server's output")
		}
		return p.Addr, m[1], p.Cmd.Process.Pid
	})
	for i := 0; i < namespaces; i++ {
		e.tenant(fmt.Sprintf("bench-%d", i))
	}
	// Write the KV secrets in parallel: the server is not under test here.
	var wg sync.WaitGroup
	errs := make(chan error, syncs)
	sem := make(chan struct{}, 16)
	for i := 0; i < syncs; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := e.root.Logical().Write(fmt.Sprintf("secret/data/bench-%d/s-%d", i%namespaces, i),
				map[string]any{"data": map[string]any{"user": "u" + strconv.Itoa(i), "password": "p" + strconv.Itoa(i)}})
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("write KV: %v", err)
	}

	hc, err := secretsync.NewHTTPClient("")
	if err != nil {
		b.Fatal(err)
	}
	ct := &countingTransport{next: hc.Transport}
	hc.Transport = ct
	e.startController(secretsync.Options{HTTPClient: hc, MinRefreshInterval: refresh})

	start := time.Now()
	for i := 0; i < syncs; i++ {
		e.create(kvSync(fmt.Sprintf("bench-%d", i%namespaces), fmt.Sprintf("s-%d", i), fmt.Sprintf("bench-%d/s-%d", i%namespaces, i), refresh))
	}
	// Warm-up: every SecretSync Ready, then one full refresh period.
	eventually(b, 15*time.Minute, func() error {
		var list v1alpha1.SecretSyncList
		if err := e.c.List(e.ctx, &list); err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			if c := readyOf(&list.Items[i]); c != nil && c.Status == metav1.ConditionTrue {
				ready++
			}
		}
		if ready < syncs {
			return fmt.Errorf("%d of %d Ready", ready, syncs)
		}
		return nil
	})
	allReady := time.Since(start)
	time.Sleep(refresh + 10*time.Second)

	req0, cpu0, srv0, t0 := ct.n.Load(), cpuSelf(), cpuOf(e.cofferPID), time.Now()
	time.Sleep(window)
	req1, cpu1, srv1, t1 := ct.n.Load(), cpuSelf(), cpuOf(e.cofferPID), time.Now()
	secs := t1.Sub(t0).Seconds()
	b.ReportMetric(float64(req1-req0)/secs, "coffer-req/s")
	b.ReportMetric((cpu1-cpu0).Seconds()/secs*100, "controller-cpu-%")
	b.ReportMetric((srv1-srv0).Seconds()/secs*100, "coffer-cpu-%")
	b.ReportMetric(allReady.Seconds(), "s-until-all-ready")
	b.Logf("%d SecretSyncs, refresh %s: %d Coffer requests in %.0f s; controller CPU %.2f s, coffer CPU %.2f s; all Ready after %s",
		syncs, refresh, req1-req0, secs, (cpu1 - cpu0).Seconds(), (srv1 - srv0).Seconds(), allReady.Round(time.Second))
}
