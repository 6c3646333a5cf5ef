package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

type kmsPluginFlags struct {
	socket          string
	address         string
	caCert          string
	mount           string
	key             string
	tokenFile       string
	roleIDFile      string
	secretIDFile    string
	appRoleMount    string
	localKeyFile    string
	localOldKeys    []string
	timeout         time.Duration
	keyPollInterval time.Duration
	healthCacheTTL  time.Duration
	metricsAddress  string
	logLevel        string
	logFormat       string
}

// DefaultKMSSocket is where `coffer kms-plugin` listens by default.
const DefaultKMSSocket = "/var/run/coffer-kms/kms.sock"

func newKMSPluginCmd(env *Env) *cobra.Command {
	var f kmsPluginFlags
	cmd := &cobra.Command{
		Use:   "kms-plugin",
		Short: "Serve the Kubernetes KMS v2 API so kube-apiserver encrypts Secrets with a Coffer key",
		Long: `Serve the Kubernetes KMS v2 gRPC API (k8s.io/kms apis/v2) on a unix socket,
so that kube-apiserver encrypts Secrets in etcd with a key it never sees.

With a Coffer transit key (the key stays in Coffer):

  coffer kms-plugin -socket /var/run/coffer-kms/kms.sock \
    -address https://coffer:8200 -ca-cert ca.pem \
    -key kubernetes -token-file /etc/coffer-kms/token

  (or -role-id-file F -secret-id-file F to log in with AppRole)

With a local key file (no Coffer server; see 'coffer kms-plugin generate-key'):

  coffer kms-plugin -socket /var/run/coffer-kms/kms.sock -local-key-file /etc/coffer-kms/key

Point kube-apiserver at the socket with an EncryptionConfiguration; see
docs/kms.md for it, the key_id and ciphertext formats, and the rotation runbook.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKMSPlugin(cmd, env, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.socket, "socket", "", "unix socket to serve on, path or unix:///path (default $COFFER_KMS_SOCKET, "+DefaultKMSSocket+")")
	fl.StringVar(&f.address, "address", "", "Coffer server address (default $COFFER_ADDR, $VAULT_ADDR, "+DefaultAddress+")")
	fl.StringVar(&f.caCert, "ca-cert", "", "PEM CA certificate to verify Coffer (default $COFFER_CACERT, $VAULT_CACERT)")
	fl.StringVar(&f.mount, "transit-mount", "transit", "mount path of the transit engine")
	fl.StringVar(&f.key, "key", "", "name of the transit key (default $COFFER_KMS_KEY)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding a Coffer token (re-read when the token can no longer be renewed)")
	fl.StringVar(&f.roleIDFile, "role-id-file", "", "AppRole login: file holding the role_id")
	fl.StringVar(&f.secretIDFile, "secret-id-file", "", "AppRole login: file holding the secret_id")
	fl.StringVar(&f.appRoleMount, "approle-mount", "approle", "AppRole login: mount path of the auth method")
	fl.StringVar(&f.localKeyFile, "local-key-file", "", "use this local 32-byte key file instead of Coffer (mode 0600)")
	fl.StringArrayVar(&f.localOldKeys, "local-decrypt-key-file", nil, "older local key file that still decrypts (repeatable; for rotation)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Second, "timeout of each request to Coffer")
	fl.DurationVar(&f.keyPollInterval, "key-poll-interval", 10*time.Second, "how often to read the transit key to notice rotations")
	fl.DurationVar(&f.healthCacheTTL, "health-cache-ttl", 5*time.Second, "how long Status reuses a successful health probe")
	fl.StringVar(&f.metricsAddress, "metrics-address", "", "serve Prometheus metrics on this address at /metrics (e.g. 127.0.0.1:9464; off by default)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	cmd.AddCommand(newKMSPluginGenerateKeyCmd(env))
	return cmd
}

func newKMSPluginGenerateKeyCmd(env *Env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "generate-key -out FILE",
		Short: "Write a new random local key for 'coffer kms-plugin -local-key-file' to FILE, mode 0600",
		Long: `Write a new random 32-byte key, base64 encoded, to FILE (created with mode
0600, never overwritten), for 'coffer kms-plugin -local-key-file FILE'.
Whoever can read FILE and etcd can read every Secret: keep it on the control
plane nodes only, and back it up (losing it loses every Secret).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("-out FILE is required")
			}
			if err := kmsplugin.GenerateKeyFile(out); err != nil {
				return err
			}
			l, err := kmsplugin.LoadLocalKey(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "Success! Wrote a new local KMS key to %s (key_id %s)\n", out, l.KeyID())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create")
	return cmd
}

func newKMSLogger(env *Env, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, usagef("invalid -log-level %q (want debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
	}
	return nil, usagef("invalid -log-format %q (want text or json)", format)
}

// kekRunner is a KEK with background work (token renewal, key polling).
type kekRunner interface {
	Run(ctx context.Context)
}

func runKMSPlugin(cmd *cobra.Command, env *Env, f *kmsPluginFlags) error {
	log, err := newKMSLogger(env, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	socket := f.socket
	if socket == "" {
		socket = firstEnv(env, "COFFER_KMS_SOCKET")
	}
	if socket == "" {
		socket = DefaultKMSSocket
	}
	if socket, err = kmsplugin.SocketPath(socket); err != nil {
		return usagef("invalid -socket: %v", err)
	}
	kek, err := f.kek(cmd, env, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()

	var ms *kmsplugin.Metrics
	var metricsLn net.Listener
	if f.metricsAddress != "" {
		ms = kmsplugin.NewMetrics()
		if metricsLn, err = net.Listen("tcp", f.metricsAddress); err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
	}
	svc := kmsplugin.NewService(kek, kmsplugin.Options{Logger: log, HealthCacheTTL: f.healthCacheTTL, Metrics: ms})
	ln, err := kmsplugin.Listen(socket)
	if err != nil {
		if metricsLn != nil {
			metricsLn.Close()
		}
		return err
	}
	if r, ok := kek.(kekRunner); ok {
		go r.Run(ctx)
	}
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", ms.Handler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", "err", err)
			}
		}()
		defer hs.Close()
	}
	w := env.Stdout
	fmt.Fprintf(w, "==> Coffer KMS plugin configuration:\n\n")
	fmt.Fprintf(w, "               Socket: unix://%s\n", socket)
	fmt.Fprintf(w, "                  Key: %s\n", kek.Describe())
	if metricsLn != nil {
		fmt.Fprintf(w, "              Metrics: http://%s/metrics\n", metricsLn.Addr())
	}
	fmt.Fprintf(w, "\n==> Coffer KMS plugin started! Log data will stream in below:\n\n")
	log.Info("kms plugin serving", "socket", socket, "key", kek.Describe())
	// A first health probe, so that the log and the metrics tell at once
	// whether the key store works (kube-apiserver asks within seconds).
	go func() { _, _ = svc.Health(ctx) }()
	err = kmsplugin.Serve(ctx, ln, svc)
	log.Info("kms plugin stopped")
	return err
}

func (f *kmsPluginFlags) kek(cmd *cobra.Command, env *Env, log *slog.Logger) (kmsplugin.KEK, error) {
	transitFlags := []string{"address", "ca-cert", "key", "token-file", "role-id-file", "secret-id-file", "approle-mount", "transit-mount"}
	if f.localKeyFile != "" {
		for _, n := range transitFlags {
			if cmd.Flags().Changed(n) {
				return nil, usagef("-local-key-file cannot be combined with -%s (Coffer transit settings)", n)
			}
		}
		return kmsplugin.LoadLocalKey(f.localKeyFile, f.localOldKeys...)
	}
	if len(f.localOldKeys) > 0 {
		return nil, usagef("-local-decrypt-key-file needs -local-key-file")
	}
	cfg := kmsplugin.TransitConfig{
		Address:         f.address,
		CACert:          f.caCert,
		Mount:           f.mount,
		Key:             f.key,
		TokenFile:       f.tokenFile,
		Timeout:         f.timeout,
		KeyPollInterval: f.keyPollInterval,
		Logger:          log,
	}
	if cfg.Address == "" {
		cfg.Address = firstEnv(env, "COFFER_ADDR", "VAULT_ADDR")
	}
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.CACert == "" {
		cfg.CACert = firstEnv(env, "COFFER_CACERT", "VAULT_CACERT")
	}
	if cfg.Key == "" {
		cfg.Key = env.Getenv("COFFER_KMS_KEY")
	}
	if cfg.Key == "" {
		return nil, usagef("-key NAME (a transit key) or -local-key-file FILE is required")
	}
	if (f.roleIDFile == "") != (f.secretIDFile == "") {
		return nil, usagef("AppRole login needs both -role-id-file and -secret-id-file")
	}
	if f.roleIDFile != "" {
		cfg.AppRole = &kmsplugin.AppRole{Mount: f.appRoleMount, RoleIDFile: f.roleIDFile, SecretIDFile: f.secretIDFile}
	}
	if cfg.TokenFile == "" && cfg.AppRole == nil {
		return nil, usagef("-token-file FILE or -role-id-file/-secret-id-file is required to reach Coffer")
	}
	if cfg.TokenFile != "" && cfg.AppRole != nil {
		return nil, usagef("give -token-file or AppRole files, not both")
	}
	return kmsplugin.NewTransit(cfg)
}
