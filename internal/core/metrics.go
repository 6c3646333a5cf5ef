package core

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coffer-dev/coffer/internal/logical"
)

// registerGauges adds the gauges computed at scrape time.
func (c *Core) registerGauges() error {
	sealed := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "coffer", Name: "sealed",
		Help: "1 when the server is sealed, 0 when unsealed.",
	}, func() float64 {
		if c.Sealed() {
			return 1
		}
		return 0
	})
	tokens := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "coffer", Name: "tokens",
		Help: "Live tokens in the token store (0 while sealed).",
	}, func() float64 {
		// No state lock here: sys/metrics already holds it for reading.
		// While sealed the barrier refuses the listing and this reads 0.
		if c.sealed.Load() {
			return 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := c.tokens.Count(ctx)
		if err != nil {
			return 0
		}
		return float64(n)
	})
	unhealthy := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "coffer", Name: "audit_devices_unhealthy",
		Help: "Audit devices whose last write failed.",
	}, func() float64 { return float64(len(c.auditFailing())) })
	return c.metrics.Register(sealed, tokens, unhealthy)
}

// handleMetrics serves sys/metrics (format=prometheus, the only format).
func (c *Core) handleMetrics(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Operation != logical.ReadOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	if f, _ := req.Data["format"].(string); f != "" && f != "prometheus" {
		return nil, logical.BadRequest("unsupported metrics format %q (want prometheus)", f)
	}
	if c.metrics == nil {
		return nil, logical.ErrUnsupportedPath
	}
	body, ct, err := c.metrics.Text()
	if err != nil {
		return nil, c.errorInternal("render metrics", err)
	}
	return &logical.Response{Raw: body, RawContentType: ct}, nil
}
