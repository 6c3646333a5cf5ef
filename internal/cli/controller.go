package cli

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/coffer-dev/coffer/internal/controller"
	"github.com/coffer-dev/coffer/internal/controller/sealedsecret"
	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

// controllerComponent is one reconciler `coffer controller` can run. Each
// declares its own flags and wires itself into the manager with its
// package's Setup; add new ones to controllerComponents.
type controllerComponent struct {
	name  string
	usage string
	// flags adds the component's flags; setup runs after parsing, only if
	// the component is enabled with --controllers.
	flags func(fs *pflag.FlagSet)
	// validate (optional) checks the flags before anything starts.
	validate func(c *controllerRun) error
	setup    func(ctx context.Context, mgr manager.Manager, c *controllerRun) error
}

// controllerRun is what components see of the resolved command line.
type controllerRun struct {
	env       *Env
	log       *slog.Logger
	namespace string
	// cofferAddr and cofferCA: --coffer-addr (default $COFFER_ADDR, then
	// $VAULT_ADDR; may be empty) and --coffer-ca-cert.
	cofferAddr string
	cofferCA   string
}

func controllerComponents() []*controllerComponent {
	return []*controllerComponent{
		sealedSecretsComponent(),
		secretSyncComponent(),
		rolloutComponent(),
	}
}

type controllerFlags struct {
	kubeconfig      string
	kubeContext     string
	namespace       string
	watchNamespaces []string
	controllers     []string
	leaderElect     bool
	leaderElectID   string
	metricsAddr     string
	healthAddr      string
	qps             float32
	burst           int
	logLevel        string
	logFormat       string
	cofferAddr      string
	cofferCA        string
}

func newControllerCmd(env *Env) *cobra.Command {
	def := controller.DefaultConfig(env.Getenv)
	components := controllerComponents()
	var names []string
	for _, c := range components {
		names = append(names, c.name)
	}
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the Kubernetes controller (SealedSecrets, ...)",
		Long: `Run the Coffer Kubernetes controller, in a cluster (in-cluster service account)
or outside one (kubeconfig).

Components (--controllers):
` + componentUsage(components) + `
The controller keeps its state (SealedSecrets keys, leader election lease) in
--namespace, by default the pod's namespace ($POD_NAMESPACE or the service
account's), else kube-system. Prometheus metrics are served on
--metrics-bind-address, /healthz and /readyz on --health-probe-bind-address.
See docs/sealed-secrets.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runController(cmd.Context(), env, &f, components)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config, then in-cluster)")
	fl.StringVar(&f.kubeContext, "context", "", "kubeconfig context to use")
	fl.StringVar(&f.namespace, "namespace", def.Namespace, "the controller's own namespace (keys, leader election)")
	fl.StringSliceVar(&f.watchNamespaces, "watch-namespaces", nil, "only watch objects in these namespaces (default: all)")
	fl.StringSliceVar(&f.controllers, "controllers", names, "components to run: "+strings.Join(names, ", "))
	fl.BoolVar(&f.leaderElect, "leader-elect", def.LeaderElection, "elect a leader among replicas (default on in a cluster)")
	fl.StringVar(&f.leaderElectID, "leader-election-id", def.LeaderElectionID, "name of the leader election Lease")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", def.MetricsAddr, `Prometheus /metrics address ("0" disables)`)
	fl.StringVar(&f.healthAddr, "health-probe-bind-address", def.HealthAddr, `/healthz and /readyz address ("0" disables)`)
	fl.Float32Var(&f.qps, "kube-api-qps", def.QPS, "requests per second to the API server")
	fl.IntVar(&f.burst, "kube-api-burst", def.Burst, "request burst to the API server")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fl.StringVar(&f.cofferAddr, "coffer-addr", "", "Coffer address, for secret sync and wrapped sealing keys (default $COFFER_ADDR, then $VAULT_ADDR)")
	fl.StringVar(&f.cofferCA, "coffer-ca-cert", "", "PEM CA file for Coffer's TLS certificate")
	for _, c := range components {
		c.flags(fl)
	}
	return cmd
}

func componentUsage(cs []*controllerComponent) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-15s %s\n", c.name, c.usage)
	}
	return b.String()
}

func runController(ctx context.Context, env *Env, f *controllerFlags, components []*controllerComponent) error {
	log, err := controller.NewLogger(env.Stderr, f.logFormat, f.logLevel)
	if err != nil {
		return usagef("%v", err)
	}
	var enabled []*controllerComponent
	for _, name := range f.controllers {
		i := slices.IndexFunc(components, func(c *controllerComponent) bool { return c.name == name })
		if i < 0 {
			return usagef("unknown controller %q", name)
		}
		enabled = append(enabled, components[i])
	}
	if len(enabled) == 0 {
		return usagef("--controllers enables nothing")
	}
	run := &controllerRun{env: env, log: log, namespace: f.namespace, cofferAddr: f.cofferAddr, cofferCA: f.cofferCA}
	for _, k := range []string{"COFFER_ADDR", "VAULT_ADDR"} {
		if run.cofferAddr == "" {
			run.cofferAddr = env.Getenv(k)
		}
	}
	for _, c := range enabled {
		if c.validate != nil {
			if err := c.validate(run); err != nil {
				return err
			}
		}
	}
	cfg := controller.Config{
		Kubeconfig:       f.kubeconfig,
		Context:          f.kubeContext,
		QPS:              f.qps,
		Burst:            f.burst,
		Namespace:        f.namespace,
		WatchNamespaces:  f.watchNamespaces,
		LeaderElection:   f.leaderElect,
		LeaderElectionID: f.leaderElectID,
		MetricsAddr:      f.metricsAddr,
		HealthAddr:       f.healthAddr,
		Logger:           log,
	}
	mgr, err := controller.NewManager(cfg, controller.Scheme())
	if err != nil {
		return err
	}
	for _, c := range enabled {
		if err := c.setup(ctx, mgr, run); err != nil {
			return err
		}
	}
	log.Info("coffer controller starting", "namespace", f.namespace, "controllers", f.controllers, "leaderElection", f.leaderElect)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	log.Info("coffer controller stopped")
	return nil
}

type sealedSecretsFlags struct {
	opts      sealedsecret.Options
	cutoff    string
	keyLabels string
	keyAnnots string
	wrap      keyWrapFlags
	wrapper   *kmsplugin.Transit // built by validate from wrap
}

// keyWrapFlags select the Coffer transit key that wraps the sealing keys,
// and how the controller logs in to Coffer to use it.
type keyWrapFlags struct {
	key, mount               string
	kubeRole, kubeMount, jwt string
	tokenFile                string
	migrate                  bool
}

func sealedSecretsComponent() *controllerComponent {
	var f sealedSecretsFlags
	f.opts = sealedsecret.DefaultOptions("")
	return &controllerComponent{
		name:  "sealedsecrets",
		usage: "bitnami.com/v1alpha1 SealedSecrets -> Secrets, drop-in for the Bitnami controller",
		flags: func(fl *pflag.FlagSet) {
			o := &f.opts
			fl.StringVar(&o.KeyPrefix, "key-prefix", o.KeyPrefix, "sealed secrets: prefix of the key Secrets' names")
			fl.IntVar(&o.KeyGen.Size, "key-size", o.KeyGen.Size, "sealed secrets: RSA key size of new keys")
			fl.DurationVar(&o.KeyGen.ValidFor, "key-ttl", o.KeyGen.ValidFor, "sealed secrets: validity of new keys' certificates")
			fl.StringVar(&o.KeyGen.CN, "my-cn", "", "sealed secrets: common name of new keys' certificates")
			fl.DurationVar(&o.KeyRenewPeriod, "key-renew-period", o.KeyRenewPeriod, "sealed secrets: make a new sealing key this often (0 disables)")
			fl.StringVar(&f.cutoff, "key-cutoff-time", "", "sealed secrets: make a new key at start if the newest is older than this (RFC 1123 with numeric zone)")
			fl.StringVar(&f.keyLabels, "privatekey-labels", "", "sealed secrets: comma-separated k=v labels for new key Secrets")
			fl.StringVar(&f.keyAnnots, "privatekey-annotations", "", "sealed secrets: comma-separated k=v annotations for new key Secrets")
			fl.BoolVar(&o.AcceptLegacyData, "accept-deprecated-v1-data", o.AcceptLegacyData, "sealed secrets: open the deprecated spec.data field")
			fl.BoolVar(&o.UpdateStatus, "update-status", o.UpdateStatus, "sealed secrets: write status (observedGeneration, Synced)")
			fl.Float64Var(&o.RateLimit, "rate-limit", o.RateLimit, "sealed secrets: /v1/verify and /v1/rotate requests per second per client")
			fl.IntVar(&o.RateLimitBurst, "rate-limit-burst", o.RateLimitBurst, "sealed secrets: request burst per client")
			fl.StringVar(&o.ListenAddr, "listen-addr", o.ListenAddr, `sealed secrets: HTTP API address (/v1/cert.pem, /v1/verify, /v1/rotate; "0" disables)`)
			fl.DurationVar(&o.ResyncPeriod, "sealed-secrets-resync-period", o.ResyncPeriod, "sealed secrets: re-check each SealedSecret this often (recreates deleted Secrets; 0 disables)")
			fl.IntVar(&o.MaxConcurrentReconciles, "sealed-secrets-workers", o.MaxConcurrentReconciles, "sealed secrets: parallel reconciles")
			w := &f.wrap
			fl.StringVar(&w.key, "key-wrap-transit-key", "", "sealed secrets: keep private keys wrapped by this Coffer transit key instead of plain Secrets (needs --coffer-addr)")
			fl.StringVar(&w.mount, "key-wrap-transit-mount", "transit", "sealed secrets: mount path of the wrapping transit engine")
			fl.StringVar(&w.kubeRole, "key-wrap-kubernetes-role", "", "sealed secrets: log in to Coffer with this kubernetes auth role (the controller's service account)")
			fl.StringVar(&w.kubeMount, "key-wrap-kubernetes-mount", "kubernetes", "sealed secrets: mount path of Coffer's kubernetes auth method")
			fl.StringVar(&w.jwt, "key-wrap-jwt-file", kmsplugin.DefaultServiceAccountTokenFile, "sealed secrets: service account token file for the kubernetes login")
			fl.StringVar(&w.tokenFile, "key-wrap-token-file", "", "sealed secrets: log in to Coffer with the token in this file instead")
			fl.BoolVar(&w.migrate, "key-wrap-migrate", false, "sealed secrets: wrap existing plain key Secrets and delete the plain ones (needs delete on Secrets in --namespace)")
		},
		validate: func(c *controllerRun) error {
			var err error
			f.wrapper, err = f.wrap.wrapper(c)
			return err
		},
		setup: func(ctx context.Context, mgr manager.Manager, c *controllerRun) error {
			o := f.opts
			o.Namespace = c.namespace
			o.Logger = c.log
			if f.cutoff != "" {
				t, err := time.Parse(time.RFC1123Z, f.cutoff)
				if err != nil {
					return usagef("--key-cutoff-time: want RFC 1123 with a numeric zone, e.g. %q", time.RFC1123Z)
				}
				o.KeyCutoffTime = t
			}
			var err error
			if o.KeyGen.Labels, err = parseKeyValues("--privatekey-labels", f.keyLabels); err != nil {
				return err
			}
			if o.KeyGen.Annotations, err = parseKeyValues("--privatekey-annotations", f.keyAnnots); err != nil {
				return err
			}
			if o.KeyGen.Size < 2048 {
				return usagef("--key-size must be at least 2048")
			}
			if o.KeyRenewPeriod < 0 || o.ResyncPeriod < 0 {
				return usagef("--key-renew-period and --sealed-secrets-resync-period cannot be negative")
			}
			if f.wrapper != nil {
				t := f.wrapper
				if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
					t.Run(ctx) // token renewal and key polling
					return nil
				})); err != nil {
					return err
				}
				o.KeyWrapper = t
			}
			o.MigratePlainKeys = f.wrap.migrate
			_, err = sealedsecret.Setup(mgr, o)
			return err
		},
	}
}

// wrapper builds the transit key wrapper the flags describe (nil when
// --key-wrap-transit-key is not set). It does not contact Coffer.
func (w *keyWrapFlags) wrapper(c *controllerRun) (*kmsplugin.Transit, error) {
	if w.key == "" {
		if w.migrate || w.kubeRole != "" || w.tokenFile != "" {
			return nil, usagef("--key-wrap-migrate, --key-wrap-kubernetes-role and --key-wrap-token-file need --key-wrap-transit-key")
		}
		return nil, nil
	}
	if c.cofferAddr == "" {
		return nil, usagef("--key-wrap-transit-key needs --coffer-addr (or $COFFER_ADDR)")
	}
	cfg := kmsplugin.TransitConfig{
		Address: c.cofferAddr,
		CACert:  c.cofferCA,
		Mount:   w.mount,
		Key:     w.key,
		Timeout: 10 * time.Second,
		Logger:  c.log.With("component", "key-wrap"),
	}
	switch {
	case w.kubeRole != "" && w.tokenFile != "":
		return nil, usagef("give --key-wrap-kubernetes-role or --key-wrap-token-file, not both")
	case w.kubeRole != "":
		cfg.Kubernetes = &kmsplugin.KubernetesLogin{Mount: w.kubeMount, Role: w.kubeRole, JWTFile: w.jwt}
	case w.tokenFile != "":
		cfg.TokenFile = w.tokenFile
	default:
		return nil, usagef("--key-wrap-transit-key needs --key-wrap-kubernetes-role or --key-wrap-token-file")
	}
	t, err := kmsplugin.NewTransit(cfg)
	if err != nil {
		return nil, usagef("--key-wrap-transit-key: %v", err)
	}
	return t, nil
}

// parseKeyValues reads "k=v,k2=v2" (Bitnami's --privatekey-labels form).
func parseKeyValues(flag, s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("%s: %q is not key=value", flag, kv)
		}
		if k == sealedsecret.KeyLabel {
			continue // the controller owns this label
		}
		out[k] = v
	}
	return out, nil
}
