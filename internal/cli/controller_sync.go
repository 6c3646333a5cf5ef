package cli

import (
	"context"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/coffer-dev/coffer/internal/controller/rollout"
	"github.com/coffer-dev/coffer/internal/controller/secretsync"
)

// secretSyncComponent runs the SecretSync (and, with
// --secretsync-cluster-wide, ClusterSecretSync) controller. It skips itself
// when no Coffer address is configured, so the default --controllers set
// works on clusters without the coffer.dev CRDs.
func secretSyncComponent() *controllerComponent {
	var o secretsync.Options
	return &controllerComponent{
		name:  "secretsync",
		usage: "coffer.dev/v1alpha1 SecretSync/ClusterSecretSync -> Secrets from Coffer (needs --coffer-addr)",
		flags: func(fl *pflag.FlagSet) {
			fl.StringSliceVar(&o.AllowedAddresses, "secretsync-allowed-address", nil, "secret sync: other Coffer addresses spec.coffer.address may name")
			fl.IntVar(&o.Workers, "secretsync-workers", 4, "secret sync: parallel reconciles")
			fl.DurationVar(&o.MinRefreshInterval, "secretsync-min-refresh", 10*time.Second, "secret sync: shortest refreshInterval honoured")
			fl.BoolVar(&o.ClusterWide, "secretsync-cluster-wide", false, "secret sync: also run the ClusterSecretSync controller")
		},
		setup: func(ctx context.Context, mgr manager.Manager, c *controllerRun) error {
			o.CofferAddress = c.cofferAddr
			if o.CofferAddress == "" && len(o.AllowedAddresses) == 0 {
				c.log.Warn("secretsync disabled: no --coffer-addr")
				return nil
			}
			hc, err := secretsync.NewHTTPClient(c.cofferCA)
			if err != nil {
				return err
			}
			o.HTTPClient = hc
			return secretsync.Setup(mgr, o)
		},
	}
}

// rolloutComponent rolls workloads annotated
// coffer.dev/rollout-on-secret-change when the Secrets they use change.
func rolloutComponent() *controllerComponent {
	var o rollout.Options
	return &controllerComponent{
		name:  "rollout",
		usage: "roll workloads annotated coffer.dev/rollout-on-secret-change when their Secrets change",
		flags: func(fl *pflag.FlagSet) {
			fl.IntVar(&o.Workers, "rollout-workers", 2, "rollout: parallel reconciles per workload kind")
		},
		setup: func(ctx context.Context, mgr manager.Manager, c *controllerRun) error { return rollout.Setup(mgr, o) },
	}
}
