package cli

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/loadgen"
)

func newBenchCmd(env *Env) *cobra.Command {
	var cf clientFlags
	var (
		workers, valueSize, keys int
		duration, warmup         time.Duration
		requests                 int64
		readRatio                float64
		mount                    string
		keep, baseline, populate bool
	)
	cmd := &cobra.Command{
		Use:   "bench [scenario...]",
		Short: "Load-test a Vault-compatible server (Coffer, Vault, OpenBao)",
		Long: `Runs each scenario with a fixed number of workers for a duration (or a
request count) and reports throughput and latency percentiles.

Scenarios: ` + strings.Join(loadgen.Scenarios, ", ") + ` (default: health kv-read kv-write).
With -baseline (the default) sys/health runs first and every other scenario's
throughput is also shown as a fraction of it. Scratch mounts with random
names are created and removed afterwards (unless -keep). Progress goes to
stderr, results to stdout (-format=json for scripts).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := cf.outputFormat(env)
			if err != nil {
				return err
			}
			if format == "yaml" {
				return usagef("coffer bench prints table or json")
			}
			if workers < 1 {
				return usagef("-workers must be at least 1")
			}
			if duration <= 0 && requests <= 0 {
				return usagef("set -duration or -requests")
			}
			if valueSize < 1 || keys < 1 {
				return usagef("-value-size and -keys must be at least 1")
			}
			if !populate && mount == "" {
				return usagef("-populate=false needs -mount (a mount an earlier -keep run filled)")
			}
			if readRatio < 0 || readRatio > 1 {
				return usagef("-read-ratio must be between 0 and 1")
			}
			scenarios := args
			if len(scenarios) == 0 {
				scenarios = []string{"health", "kv-read", "kv-write"}
			}
			for _, s := range scenarios {
				if !slices.Contains(loadgen.Scenarios, s) {
					return usagef("unknown scenario %q (want one of %s)", s, strings.Join(loadgen.Scenarios, ", "))
				}
			}
			if baseline {
				// The baseline runs first, so every later scenario has it.
				scenarios = append([]string{"health"}, slices.DeleteFunc(slices.Clone(scenarios), func(s string) bool { return s == "health" })...)
			}
			c, err := cf.newClient(env)
			if err != nil {
				return err
			}
			var tlsConf *tls.Config
			if tr, ok := c.hc.Transport.(*http.Transport); ok {
				tlsConf = tr.TLSClientConfig
			}
			cfg := loadgen.Config{
				Addr: strings.TrimSuffix(c.addr.String(), "/"), Token: c.token,
				Transport: loadgen.NewTransport(tlsConf, workers),
				Workers:   workers, Duration: duration, Requests: requests, Warmup: warmup,
				ValueSize: valueSize, Keys: keys, ReadRatio: readRatio, Mount: mount, Keep: keep, NoPopulate: !populate,
				Progress: env.Stderr, ProgressInPlace: isTerminal(env.Stderr),
			}
			if requests > 0 && !cmd.Flags().Changed("duration") {
				cfg.Duration = 0
			}
			var results []*loadgen.Result
			var health float64
			for _, s := range scenarios {
				fmt.Fprintf(env.Stderr, "running %s (%d workers)...\n", s, workers)
				res, err := loadgen.Run(cmd.Context(), cfg, s)
				if err != nil {
					if len(results) > 0 && cmd.Context().Err() != nil {
						break // interrupted: report what was measured
					}
					return err
				}
				if s == "health" {
					health = res.Throughput
				} else if health > 0 {
					f := res.Throughput / health
					res.FractionOfHealth = &f
				}
				results = append(results, res)
				if cmd.Context().Err() != nil {
					break
				}
			}
			if err := writeBenchResults(env, format, cfg.Addr, results); err != nil {
				return err
			}
			if err := cmd.Context().Err(); err != nil {
				return fmt.Errorf("interrupted after %d of %d scenarios: %w", len(results), len(scenarios), err)
			}
			return nil
		},
	}
	addClientFlags(cmd, &cf)
	fl := cmd.Flags()
	fl.IntVar(&workers, "workers", 32, "concurrent workers (one keep-alive connection each)")
	fl.DurationVar(&duration, "duration", 10*time.Second, "how long each scenario runs")
	fl.Int64Var(&requests, "requests", 0, "stop each scenario after this many requests (instead of -duration)")
	fl.DurationVar(&warmup, "warmup", 0, "run each scenario this long before measuring")
	fl.IntVar(&valueSize, "value-size", 1024, "bytes per KV value or transit plaintext")
	fl.IntVar(&keys, "keys", 1000, "distinct KV keys")
	fl.Float64Var(&readRatio, "read-ratio", 0.9, "share of reads in kv-mixed")
	fl.StringVar(&mount, "mount", "", "KV v2 mount to use (default: a scratch mount)")
	fl.BoolVar(&keep, "keep", false, "leave scratch mounts and data in place")
	fl.BoolVar(&populate, "populate", true, "kv-read, kv-mixed: write the -keys keys first (false: use those an earlier -keep run left in -mount)")
	fl.BoolVar(&baseline, "baseline", true, "run sys/health first and report fractions of its throughput")
	return cmd
}

// writeBenchResults prints a table for people or, with -format=json, the
// stable document scripts read: {"address": …, "results": [Result…]}.
func writeBenchResults(env *Env, format, addr string, results []*loadgen.Result) error {
	if format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"address": addr, "results": results})
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tworkers\trequests\terrors\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tmean ms\tof health\t")
	for _, r := range results {
		of := "-"
		if r.FractionOfHealth != nil {
			of = fmt.Sprintf("%.0f%%", 100**r.FractionOfHealth)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", r.Scenario, r.Workers, r.Requests, r.Errors,
			r.Throughput, r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max, r.Latency.Mean, of)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.Errors > 0 {
			var parts []string
			for _, k := range r.SortedStatuses() {
				parts = append(parts, fmt.Sprintf("%s: %d", k, r.ErrorsByStatus[k]))
			}
			fmt.Fprintf(env.Stdout, "%s errors by status: %s\n", r.Scenario, strings.Join(parts, ", "))
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal, where the progress line can
// be rewritten in place; elsewhere (a log, a pipe) it prints one line each.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
