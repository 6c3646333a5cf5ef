package cli

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-dev/coffer/internal/auth/approle"
	kubeauth "github.com/coffer-dev/coffer/internal/auth/kubernetes"
	"github.com/coffer-dev/coffer/internal/auth/userpass"
	"github.com/coffer-dev/coffer/internal/barrier"
	"github.com/coffer-dev/coffer/internal/config"
	"github.com/coffer-dev/coffer/internal/core"
	"github.com/coffer-dev/coffer/internal/engine/database"
	"github.com/coffer-dev/coffer/internal/engine/kv"
	"github.com/coffer-dev/coffer/internal/engine/transit"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/metrics"
	"github.com/coffer-dev/coffer/internal/server"
	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/bolt"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
	"github.com/coffer-dev/coffer/internal/version"
)

type serverFlags struct {
	configFile     string
	dev            bool
	devRootTokenID string
	devListen      string
	address        string
	tlsCert        string
	tlsKey         string
	tlsDisable     bool
	storagePath    string
	logLevel       string
	logFormat      string
	auditDir       string
}

func newServerCmd(env *Env) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Coffer server",
		Long: `Run a Coffer server.

  coffer server -dev              in-memory, unsealed, plain HTTP on 127.0.0.1:8200
  coffer server -config FILE      a real server (bbolt storage, TLS on by default)

Settings come from flags, then COFFER_* environment variables, then the
config file, then defaults. See docs/configuration.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.resolve(cmd, env)
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), env, cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configFile, "config", "", "path to an HCL config file (default $COFFER_CONFIG)")
	fl.BoolVar(&f.dev, "dev", false, "development mode: in-memory storage, initialized and unsealed, plain HTTP")
	fl.StringVar(&f.devRootTokenID, "dev-root-token-id", "", "dev mode: use this root token instead of a random one")
	fl.StringVar(&f.devListen, "dev-listen-address", "127.0.0.1:8200", "dev mode: address to listen on")
	fl.StringVar(&f.address, "address", "", "listen address (default "+config.DefaultAddress+")")
	fl.StringVar(&f.tlsCert, "tls-cert-file", "", "PEM certificate (chain) for TLS")
	fl.StringVar(&f.tlsKey, "tls-key-file", "", "PEM private key for TLS")
	fl.BoolVar(&f.tlsDisable, "tls-disable", false, "serve plain HTTP (only behind a TLS-terminating proxy, or on loopback)")
	fl.StringVar(&f.storagePath, "storage-path", "", "bbolt storage file (default "+config.DefaultStoragePath+")")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "", "text or json")
	fl.StringVar(&f.auditDir, "audit-dir", "", "directory under which file audit devices may be created")
	return cmd
}

// resolve applies the precedence flags > env > file > defaults.
func (f *serverFlags) resolve(cmd *cobra.Command, env *Env) (*config.Server, error) {
	cfg := config.Defaults()
	file := f.configFile
	if file == "" {
		file = env.Getenv("COFFER_CONFIG")
	}
	if file != "" {
		var err error
		if cfg, err = config.LoadFile(file, cfg); err != nil {
			return nil, err
		}
	}
	if err := config.ApplyEnv(cfg, env.Getenv); err != nil {
		return nil, usagef("%v", err)
	}
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("address", &cfg.Address, f.address)
	set("tls-cert-file", &cfg.TLSCertFile, f.tlsCert)
	set("tls-key-file", &cfg.TLSKeyFile, f.tlsKey)
	set("storage-path", &cfg.StoragePath, f.storagePath)
	set("log-level", &cfg.LogLevel, f.logLevel)
	set("log-format", &cfg.LogFormat, f.logFormat)
	set("audit-dir", &cfg.AuditDir, f.auditDir)
	if cmd.Flags().Changed("tls-disable") {
		cfg.TLSDisable = f.tlsDisable
	}
	if f.dev {
		cfg.Dev = true
		cfg.StorageType = "inmem"
		cfg.TLSDisable = true
		cfg.SealType = "shamir"
		cfg.SealKey, cfg.SealKeyFile = "", ""
		if !cmd.Flags().Changed("address") {
			cfg.Address = f.devListen
		}
		cfg.DevRootTokenID = f.devRootTokenID
		if cfg.DevRootTokenID == "" {
			cfg.DevRootTokenID = env.Getenv("COFFER_DEV_ROOT_TOKEN_ID")
		}
		if cfg.AuditDir == "" {
			cfg.AuditDir = os.TempDir()
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newLogger(w io.Writer, cfg *config.Server) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToLower(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadSealKey reads the static auto-unseal key: 32 bytes, given as base64 or
// hex (or raw bytes in a file). A key file readable by group or others is
// refused.
func loadSealKey(cfg *config.Server) (*barrier.Key, error) {
	if cfg.SealType != "static" {
		return nil, nil
	}
	var raw []byte
	if cfg.SealKey != "" {
		raw = []byte(cfg.SealKey)
	} else {
		fi, err := os.Stat(cfg.SealKeyFile)
		if err != nil {
			return nil, fmt.Errorf("seal key file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("seal key file %s has mode %04o: it must not be readable by group or others (chmod 600)", cfg.SealKeyFile, fi.Mode().Perm())
		}
		raw, err = os.ReadFile(cfg.SealKeyFile)
		if err != nil {
			return nil, fmt.Errorf("seal key file: %w", err)
		}
	}
	defer clear(raw)
	k, err := parseSealKey(raw)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

func parseSealKey(raw []byte) (barrier.Key, error) {
	s := strings.TrimSpace(string(raw))
	var b []byte
	if d, err := base64.StdEncoding.DecodeString(s); err == nil && len(d) == 32 {
		b = d
	} else if d, err := hex.DecodeString(s); err == nil && len(d) == 32 {
		b = d
	} else if len(raw) == 32 {
		b = append([]byte(nil), raw...)
	} else {
		return barrier.Key{}, errors.New("static seal key must be 32 bytes, encoded as base64 or hex")
	}
	defer clear(b)
	return barrier.KeyFromBytes(b)
}

func openStorage(cfg *config.Server) (storage.Backend, func() error, error) {
	if cfg.StorageType == "inmem" {
		return inmem.New(), func() error { return nil }, nil
	}
	db, err := bolt.Open(cfg.StoragePath, bolt.Options{})
	if err != nil {
		return nil, nil, err
	}
	return db, db.Close, nil
}

func runServer(ctx context.Context, env *Env, cfg *config.Server) (err error) {
	log := newLogger(env.Stderr, cfg)
	sealKey, err := loadSealKey(cfg)
	if err != nil {
		return err
	}
	if sealKey != nil {
		defer sealKey.Zero()
	}
	st, closeStorage, err := openStorage(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeStorage(); cerr != nil && err == nil {
			err = fmt.Errorf("close storage: %w", cerr)
		}
	}()
	ms := metrics.New()
	c, err := core.New(core.Config{
		Metrics:                ms,
		AuditDir:               cfg.AuditDir,
		Storage:                st,
		StorageType:            cfg.StorageType,
		StaticKey:              sealKey,
		ClusterName:            cfg.ClusterName,
		Logger:                 log,
		LeaseRevocationWorkers: cfg.LeaseRevocationWorkers,
		Engines:                engines(),
		AuthMethods:            authMethods(),
	})
	if err != nil {
		return err
	}
	defer c.Shutdown()
	if err := c.AutoUnseal(ctx); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Address, err)
	}
	var tlsConf *tls.Config
	scheme := "http"
	if !cfg.TLSDisable {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		scheme = "https"
	}
	addr := scheme + "://" + ln.Addr().String()

	var unsealKey, rootToken string
	if cfg.Dev {
		unsealKey, rootToken, err = devInit(ctx, c, cfg.DevRootTokenID)
		if err != nil {
			ln.Close()
			return err
		}
	}

	w := env.Stdout
	fmt.Fprintf(w, "==> Coffer server configuration:\n\n")
	fmt.Fprintf(w, "             Listener: %s (tls: %v)\n", addr, !cfg.TLSDisable)
	fmt.Fprintf(w, "              Storage: %s %s\n", cfg.StorageType, storageDesc(cfg))
	fmt.Fprintf(w, "                 Seal: %s\n", cfg.SealType)
	fmt.Fprintf(w, "              Version: Coffer v%s\n\n", version.Version)
	if cfg.Dev {
		fmt.Fprintf(w, `WARNING! dev mode is enabled! In this mode, Coffer runs entirely in-memory
and starts unsealed with a single unseal key. The root token is already
authenticated to the CLI, so you can immediately begin using Coffer.

You may need to set the following environment variables:

    $ export COFFER_ADDR='%s'

The unseal key and root token are displayed below in case you want to
seal/unseal the server or re-authenticate.

Unseal Key: %s
Root Token: %s

Development mode should NOT be used in production installations!

`, addr, unsealKey, rootToken)
	}
	fmt.Fprintf(w, "==> Coffer server started! Log data will stream in below:\n\n")
	log.Info("listening", "address", addr)

	srv := server.New(c, server.Options{
		MaxRequestSize: cfg.MaxRequestSize,
		RequestTimeout: cfg.RequestTimeout,
		LoginRate:      cfg.LoginRateLimit,
		LoginBurst:     cfg.LoginRateBurst,
		Logger:         log,
		Metrics:        ms,
	})
	// SIGHUP reopens the audit files, for log rotation.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				c.ReopenAudit()
			}
		}
	}()
	err = srv.Serve(ctx, ln, tlsConf, 10*time.Second)
	log.Info("shutting down")
	return err
}

func storageDesc(cfg *config.Server) string {
	if cfg.StorageType == "bolt" {
		abs, err := filepath.Abs(cfg.StoragePath)
		if err == nil {
			return "(" + abs + ")"
		}
		return "(" + cfg.StoragePath + ")"
	}
	return ""
}

// devInit initializes a dev server with one unseal key share and unseals
// it. It returns the share (base64) and the root token for display.
func devInit(ctx context.Context, c *core.Core, rootID string) (string, string, error) {
	res, err := c.Init(ctx, core.InitRequest{SecretShares: 1, SecretThreshold: 1, RootTokenID: rootID})
	if err != nil {
		return "", "", fmt.Errorf("dev init: %w", err)
	}
	key := res.Keys[0]
	defer clear(key)
	if err := c.SubmitUnsealShare(ctx, key); err != nil {
		return "", "", fmt.Errorf("dev unseal: %w", err)
	}
	if c.Sealed() {
		return "", "", errors.New("dev unseal: server is still sealed")
	}
	if err := devSetup(ctx, c, res.RootToken); err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(key), res.RootToken, nil
}

// engines and authMethods are the one place where backends are wired into
// the core.
func engines() map[string]logical.Factory {
	return map[string]logical.Factory{
		"kv":       kv.Factory,
		"transit":  transit.Factory,
		"database": database.Factory,
	}
}

func authMethods() map[string]logical.Factory {
	return map[string]logical.Factory{
		"kubernetes": kubeauth.Factory,
		"userpass":   userpass.Factory,
		"approle":    approle.Factory,
	}
}

// devSetup prepares a dev server for first use: KV v2 at secret/, as
// `vault server -dev` does.
func devSetup(ctx context.Context, c *core.Core, rootToken string) error {
	err := c.Mount(ctx, false, &core.MountEntry{
		Path: "secret/", Type: "kv", Description: "key/value secret storage",
		Options: map[string]string{"version": "2"},
	})
	if err != nil {
		return fmt.Errorf("dev mode: mount secret/: %w", err)
	}
	return nil
}
