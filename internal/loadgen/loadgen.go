// Package loadgen is the load generator behind `coffer bench`: it drives any
// Vault-compatible server (Coffer, Vault, OpenBao) over its HTTP API with a
// fixed number of workers for a duration or a request count, and reports
// throughput and latency percentiles.
//
// It speaks only the public API (/v1 paths, the X-Vault-Token header), sets
// up what a scenario needs on scratch mounts with random names, and removes
// them afterwards. Each worker keeps its own latency histogram and random
// source; nothing is shared on the hot path but two atomic counters.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one benchmark run.
type Config struct {
	// Addr is the server's base address, e.g. http://127.0.0.1:8200.
	Addr  string
	Token string
	// Transport carries the requests; it should keep at least Workers idle
	// connections per host (NewTransport does).
	Transport http.RoundTripper
	Workers   int
	// Duration bounds the run; Requests, when > 0, bounds it by count
	// instead (whichever comes first when both are set).
	Duration time.Duration
	Requests int64
	// Warmup runs the scenario this long before measuring.
	Warmup time.Duration
	// ValueSize is the size in bytes of KV values and transit plaintexts.
	ValueSize int
	// Keys is how many distinct KV keys kv-* scenarios use.
	Keys int
	// ReadRatio is the share of reads in kv-mixed (0..1).
	ReadRatio float64
	// Mount, when set, is the KV v2 mount to use instead of a scratch one
	// (it is created if missing, and then removed unless Keep).
	Mount string
	// Keep leaves scratch mounts and data in place.
	Keep bool
	// Progress, when set, receives a status line about once per second.
	Progress io.Writer
}

// Latency is in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Result is one scenario's figures.
type Result struct {
	Scenario        string           `json:"scenario"`
	Workers         int              `json:"workers"`
	DurationSeconds float64          `json:"duration_seconds"`
	Requests        int64            `json:"requests"`
	Errors          int64            `json:"errors"`
	ErrorsByStatus  map[string]int64 `json:"errors_by_status"`
	Throughput      float64          `json:"throughput_per_second"`
	Latency         Latency          `json:"latency_ms"`
	// FractionOfHealth is Throughput over the sys/health throughput of the
	// same run, when a baseline was measured.
	FractionOfHealth *float64 `json:"fraction_of_health,omitempty"`
}

// Scenarios lists the scenario names in their usual order.
var Scenarios = []string{"health", "kv-read", "kv-write", "kv-mixed", "transit-encrypt", "login-userpass"}

// NewTransport returns an HTTP transport tuned for workers concurrent
// keep-alive connections, based on base (may be nil).
func NewTransport(base *http.Transport, workers int) *http.Transport {
	var tr *http.Transport
	if base != nil {
		tr = base.Clone()
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	tr.MaxIdleConns = workers * 2
	tr.MaxIdleConnsPerHost = workers * 2
	tr.ForceAttemptHTTP2 = false
	return tr
}

// APIError is a server's refusal during setup or the first probe.
type APIError struct {
	Method, Path string
	Status       int
	Errors       []string
}

func (e *APIError) Error() string {
	msg := strings.Join(e.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s /v1/%s: server answered %d: %s", e.Method, e.Path, e.Status, msg)
}

type client struct {
	addr  string
	token string
	hc    *http.Client
}

// call sends one request; the body is drained and, on errors, decoded.
func (c *client) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+"/v1/"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, raw, nil
}

// must sends a setup request and turns a refusal into an *APIError.
func (c *client) must(ctx context.Context, method, path string, body any) (map[string]any, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	status, out, err := c.call(ctx, method, path, raw)
	if err != nil {
		return nil, fmt.Errorf("%s /v1/%s: %w", method, path, err)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if status >= 400 {
		ae := &APIError{Method: method, Path: path, Status: status}
		if errs, ok := m["errors"].([]any); ok {
			for _, e := range errs {
				ae.Errors = append(ae.Errors, fmt.Sprint(e))
			}
		}
		return nil, ae
	}
	return m, nil
}

// Run runs one scenario and returns its figures. Setup failures (a
// refused token, a sealed server) are returned as errors before any
// measurement starts.
func Run(ctx context.Context, cfg Config, scenario string) (*Result, error) {
	if cfg.Workers < 1 {
		return nil, errors.New("workers must be at least 1")
	}
	if cfg.Duration <= 0 && cfg.Requests <= 0 {
		return nil, errors.New("set a duration or a request count")
	}
	if cfg.ValueSize < 1 {
		cfg.ValueSize = 1
	}
	if cfg.Keys < 1 {
		cfg.Keys = 1
	}
	tr := cfg.Transport
	if tr == nil {
		tr = NewTransport(nil, cfg.Workers)
	}
	c := &client{addr: strings.TrimSuffix(cfg.Addr, "/"), token: cfg.Token, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	sc, err := newScenario(scenario, &cfg)
	if err != nil {
		return nil, err
	}
	if err := sc.setup(ctx, c); err != nil {
		cleanup(c, sc, cfg.Keep)
		return nil, fmt.Errorf("%s: setup: %w", scenario, err)
	}
	defer cleanup(c, sc, cfg.Keep)

	// One probe request: a server that refuses the operation fails the run
	// now, with its own message, instead of producing a page of errors.
	w := newWorker(0)
	if status, body, err := sc.op(ctx, c, w); err != nil || status >= 400 {
		if err != nil {
			return nil, fmt.Errorf("%s: first request: %w", scenario, err)
		}
		ae := &APIError{Method: "request", Path: sc.describe(), Status: status}
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			if errs, ok := m["errors"].([]any); ok {
				for _, e := range errs {
					ae.Errors = append(ae.Errors, fmt.Sprint(e))
				}
			}
		}
		return nil, fmt.Errorf("%s: first request: %w", scenario, ae)
	}

	if cfg.Warmup > 0 {
		wcfg := cfg
		wcfg.Duration, wcfg.Requests, wcfg.Progress = cfg.Warmup, 0, nil
		measure(ctx, wcfg, c, sc, scenario)
	}
	return measure(ctx, cfg, c, sc, scenario), nil
}

func cleanup(c *client, sc scenario, keep bool) {
	if keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc.teardown(ctx, c)
}

type worker struct {
	hist   Histogram
	errs   map[int]int64
	rng    uint64
	n      int64
	buf    []byte
	issued int64
}

func newWorker(i int) *worker {
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	s := uint64(i+1) * 0x9E3779B97F4A7C15
	for _, b := range seed {
		s = s<<8 ^ uint64(b) ^ s>>56
	}
	if s == 0 {
		s = 1
	}
	return &worker{errs: map[int]int64{}, rng: s}
}

// next is xorshift64*: cheap, per worker, not for secrets.
func (w *worker) next() uint64 {
	w.rng ^= w.rng >> 12
	w.rng ^= w.rng << 25
	w.rng ^= w.rng >> 27
	return w.rng * 2685821657736338717
}

func (w *worker) intn(n int) int { return int(w.next() % uint64(n)) }

func measure(ctx context.Context, cfg Config, c *client, sc scenario, name string) *Result {
	runCtx := ctx
	var cancel context.CancelFunc
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	} else {
		runCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()

	var issued, done, failed atomic.Int64
	workers := make([]*worker, cfg.Workers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := newWorker(i + 1)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				if cfg.Requests > 0 && issued.Add(1) > cfg.Requests {
					return
				}
				t0 := time.Now()
				status, _, err := sc.op(runCtx, c, w)
				lat := time.Since(t0)
				if err != nil && runCtx.Err() != nil {
					return // cut off by the deadline: not a server error
				}
				w.hist.Record(lat)
				done.Add(1)
				if err != nil {
					w.errs[0]++
					failed.Add(1)
				} else if status >= 400 {
					w.errs[status]++
					failed.Add(1)
				}
			}
		}()
	}

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress == nil {
			return
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, lastT := int64(0), start
		for {
			select {
			case <-stopProgress:
				fmt.Fprintf(cfg.Progress, "\r\033[K")
				return
			case now := <-t.C:
				n := done.Load()
				rate := float64(n-last) / now.Sub(lastT).Seconds()
				last, lastT = n, now
				fmt.Fprintf(cfg.Progress, "\r\033[K%s: %d requests, %.0f/s, %d errors, %s", name, n, rate, failed.Load(), now.Sub(start).Truncate(time.Second))
			}
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone

	var h Histogram
	res := &Result{Scenario: name, Workers: cfg.Workers, DurationSeconds: elapsed.Seconds(), ErrorsByStatus: map[string]int64{}}
	for _, w := range workers {
		h.Merge(&w.hist)
		for st, n := range w.errs {
			key := strconv.Itoa(st)
			if st == 0 {
				key = "transport"
			}
			res.ErrorsByStatus[key] += n
			res.Errors += n
		}
	}
	res.Requests = int64(h.Count())
	if elapsed > 0 {
		res.Throughput = float64(res.Requests) / elapsed.Seconds()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.Latency = Latency{P50: ms(h.Quantile(0.50)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)), Max: ms(h.Max()), Mean: ms(h.Mean())}
	return res
}

// SortedStatuses returns the keys of ErrorsByStatus in order, for display.
func (r *Result) SortedStatuses() []string {
	keys := make([]string, 0, len(r.ErrorsByStatus))
	for k := range r.ErrorsByStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func randomName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
