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
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	// NoPopulate makes kv-read and kv-mixed use the keys already in Mount
	// (key-0 … key-<Keys-1>, from an earlier run with Keep) instead of
	// writing them first.
	NoPopulate bool
	// Progress, when set, receives a status line about once per second:
	// one line each, or, with ProgressInPlace (for a terminal), one line
	// rewritten in place and erased at the end.
	Progress        io.Writer
	ProgressInPlace bool
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

// NewTransport returns an HTTP/1.1 transport for workers concurrent
// keep-alive connections to one server, one per worker (rather than every
// worker multiplexed on one HTTP/2 connection), verifying TLS with tlsConf
// (may be nil).
func NewTransport(tlsConf *tls.Config, workers int) *http.Transport {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        workers * 2,
		MaxIdleConnsPerHost: workers * 2,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if tlsConf != nil {
		tc := tlsConf.Clone()
		tc.NextProtos = nil // a transport that has been used may have added h2
		tr.TLSClientConfig = tc
	}
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
	addr string
	// token is the X-Vault-Token header's value, shared by every request
	// (never modified) so that setting it allocates nothing.
	token []string
	hc    *http.Client
}

// call sends one setup request and returns the whole answer.
func (c *client) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	resp, err := c.send(ctx, method, path, body)
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

// do sends one measured request. A success's body is drained without being
// kept (io.Discard reads through a pooled buffer: no allocation per
// request); a refusal's body, up to 64 KiB, is kept in w.errBody with the
// request, so that the probe can show the server's message.
func (c *client) do(ctx context.Context, w *worker, method, path string, body []byte) (int, error) {
	return c.exchange(ctx, w, method, path, body, false)
}

// doKeep is do for the scenarios that need the answer: a success's body is
// read into w.body, which is reused between requests.
func (c *client) doKeep(ctx context.Context, w *worker, method, path string, body []byte) (int, error) {
	return c.exchange(ctx, w, method, path, body, true)
}

func (c *client) exchange(ctx context.Context, w *worker, method, path string, body []byte, keep bool) (int, error) {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 400:
		w.errMethod, w.errPath = method, path
		w.errBody, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	case keep:
		w.body.Reset()
		_, err = w.body.ReadFrom(io.LimitReader(resp.Body, 8<<20))
	default:
		_, err = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, err
}

func (c *client) send(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+"/v1/"+path, rd)
	if err != nil {
		return nil, err
	}
	if c.token != nil {
		req.Header["X-Vault-Token"] = c.token
	}
	if body != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	return c.hc.Do(req)
}

var jsonContentType = []string{"application/json"}

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
	if status >= 400 {
		return nil, newAPIError(method, path, status, out)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m) // 204 and non-JSON successes have no body to use
	return m, nil
}

// newAPIError decodes the {"errors": [...]} body every Vault-compatible
// server sends with a refusal.
func newAPIError(method, path string, status int, body []byte) *APIError {
	ae := &APIError{Method: method, Path: path, Status: status}
	var m struct {
		Errors []any `json:"errors"`
	}
	if json.Unmarshal(body, &m) == nil {
		for _, e := range m.Errors {
			ae.Errors = append(ae.Errors, fmt.Sprint(e))
		}
	}
	return ae
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
	c := &client{addr: strings.TrimSuffix(cfg.Addr, "/"), hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	if cfg.Token != "" {
		c.token = []string{cfg.Token}
	}
	sc, err := newScenario(scenario, &cfg)
	if err != nil {
		return nil, err
	}
	if err := sc.setup(ctx, c); err != nil {
		cleanup(c, sc, &cfg, scenario)
		return nil, fmt.Errorf("%s: setup: %w", scenario, err)
	}
	defer cleanup(c, sc, &cfg, scenario)

	// One probe request: a server that refuses the operation fails the run
	// now, with its own message, instead of producing a page of errors.
	w := newWorker(0)
	if status, err := sc.op(ctx, c, w); err != nil {
		return nil, fmt.Errorf("%s: first request: %w", scenario, err)
	} else if status >= 400 {
		return nil, fmt.Errorf("%s: first request: %w", scenario, newAPIError(w.errMethod, w.errPath, status, w.errBody))
	}

	if cfg.Warmup > 0 {
		wcfg := cfg
		wcfg.Duration, wcfg.Requests, wcfg.Progress = cfg.Warmup, 0, nil
		measure(ctx, wcfg, c, sc, scenario)
	}
	return measure(ctx, cfg, c, sc, scenario), nil
}

// cleanup runs the scenario's teardown, even after an interrupt, with
// time enough for a server to remove a mount holding many keys. What it
// could not remove is reported on the progress writer.
func cleanup(c *client, sc scenario, cfg *Config, name string) {
	if cfg.Keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cc := *c
	hc := *c.hc
	hc.Timeout = 5 * time.Minute
	cc.hc = &hc
	if err := sc.teardown(ctx, &cc); err != nil && cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "warning: %s: clean-up incomplete: %v\n", name, err)
	}
}

type worker struct {
	hist Histogram
	errs map[int]int64
	rng  uint64
	// body is the last answer read by doKeep.
	body bytes.Buffer
	// The last refusal this worker received: request and answer body.
	errMethod, errPath string
	errBody            []byte
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
	var issued, done, failed atomic.Int64
	workers := make([]*worker, cfg.Workers)
	var wg sync.WaitGroup
	start := time.Now()
	// At the deadline workers stop sending, and the requests in flight
	// finish (and count): cancelling them would make the server log
	// failures that are the client's doing. Only an interrupt (ctx) cuts
	// requests off.
	deadline := start.Add(cfg.Duration)
	for i := range workers {
		w := newWorker(i + 1)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if cfg.Requests > 0 && issued.Add(1) > cfg.Requests {
					return
				}
				t0 := time.Now()
				if cfg.Duration > 0 && !t0.Before(deadline) {
					return
				}
				status, err := sc.op(ctx, c, w)
				lat := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					return // cut off by an interrupt: not a server error
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
		prefix, suffix := "", "\n"
		if cfg.ProgressInPlace {
			prefix, suffix = "\r\033[K", ""
		}
		for {
			select {
			case <-stopProgress:
				if cfg.ProgressInPlace {
					fmt.Fprint(cfg.Progress, prefix)
				}
				return
			case now := <-t.C:
				n := done.Load()
				rate := float64(n-last) / now.Sub(lastT).Seconds()
				last, lastT = n, now
				fmt.Fprintf(cfg.Progress, "%s%s: %s, %d requests, %.0f/s, %d errors%s",
					prefix, name, now.Sub(start).Round(time.Second), n, rate, failed.Load(), suffix)
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
