// Package config holds the configuration of `coffer server` and resolves it
// from its four sources, in order of precedence: command-line flags, then
// COFFER_* environment variables, then an HCL config file, then defaults.
//
// The config file is HCL, shaped like a Vault server config so that people
// who know one can read the other:
//
//	listener "tcp" {
//	  address       = "0.0.0.0:8200"
//	  tls_cert_file = "/etc/coffer/tls.crt"
//	  tls_key_file  = "/etc/coffer/tls.key"
//	}
//	storage "bolt" { path = "/var/lib/coffer/coffer.db" }
//	seal "static"  { key_file = "/etc/coffer/unseal.key" }
//	log_level  = "info"
//
// Decoding is strict: an unknown block or attribute is an error naming its
// line. The package holds no mutable package-level state.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Defaults.
const (
	DefaultAddress        = "127.0.0.1:8200"
	DefaultMaxRequestSize = 32 << 20
	DefaultRequestTimeout = 90 * time.Second
	// DefaultLoginRateLimit and DefaultLoginRateBurst: 5 login attempts per
	// second per client address, 20 at once.
	DefaultLoginRateLimit = 5
	DefaultLoginRateBurst = 20
	// DefaultLeaseRevocationWorkers: expired leases revoked at once.
	DefaultLeaseRevocationWorkers = 16
	DefaultStoragePath            = "coffer-data/coffer.db"
	DefaultClusterName            = "coffer"
)

// Server is the resolved configuration of `coffer server`.
type Server struct {
	Address     string
	TLSDisable  bool
	TLSCertFile string
	TLSKeyFile  string

	// StorageType is "bolt" or "inmem".
	StorageType string
	StoragePath string

	// SealType is "shamir" (default) or "static" (auto-unseal with a key
	// read from SealKeyFile or the COFFER_SEAL_KEY variable).
	SealType    string
	SealKeyFile string
	// SealKey is the static key itself, base64 or hex, from COFFER_SEAL_KEY.
	// It never comes from the config file or a flag (it would end up in
	// shell history or in a world-readable file).
	SealKey string `json:"-"`

	LogLevel  string
	LogFormat string

	MaxRequestSize int64
	RequestTimeout time.Duration

	// LoginRateLimit bounds login attempts per client address per second,
	// with LoginRateBurst allowed at once; a negative rate turns the limit
	// off (only behind a proxy that limits logins itself, or to benchmark).
	LoginRateLimit float64
	LoginRateBurst int

	// LeaseRevocationWorkers bounds the expired leases revoked at once.
	LeaseRevocationWorkers int

	// AuditDir is the only directory under which file audit devices may be
	// created through the API.
	AuditDir    string
	ClusterName string

	// Dev mode: in-memory, initialized, unsealed, plain HTTP on loopback.
	Dev            bool
	DevRootTokenID string `json:"-"`
}

// Defaults returns the configuration used when no source sets a value.
func Defaults() *Server {
	return &Server{
		Address:        DefaultAddress,
		StorageType:    "bolt",
		StoragePath:    DefaultStoragePath,
		SealType:       "shamir",
		LogLevel:       "info",
		LogFormat:      "text",
		MaxRequestSize: DefaultMaxRequestSize,
		RequestTimeout: DefaultRequestTimeout,
		LoginRateLimit: DefaultLoginRateLimit,
		LoginRateBurst: DefaultLoginRateBurst,
		ClusterName:    DefaultClusterName,

		LeaseRevocationWorkers: DefaultLeaseRevocationWorkers,
	}
}

// ParseError is returned for a config file that does not parse or decode.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config %s: line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("config %s: %s", e.File, e.Msg)
}

type fileListener struct {
	Type        string  `hcl:"type,label"`
	Address     *string `hcl:"address,optional"`
	TLSDisable  *bool   `hcl:"tls_disable,optional"`
	TLSCertFile *string `hcl:"tls_cert_file,optional"`
	TLSKeyFile  *string `hcl:"tls_key_file,optional"`
}

type fileStorage struct {
	Type string  `hcl:"type,label"`
	Path *string `hcl:"path,optional"`
}

type fileSeal struct {
	Type    string  `hcl:"type,label"`
	KeyFile *string `hcl:"key_file,optional"`
}

type fileConfig struct {
	Listeners              []fileListener `hcl:"listener,block"`
	Storage                []fileStorage  `hcl:"storage,block"`
	Seal                   []fileSeal     `hcl:"seal,block"`
	LogLevel               *string        `hcl:"log_level,optional"`
	LogFormat              *string        `hcl:"log_format,optional"`
	MaxRequestSize         *int64         `hcl:"max_request_size,optional"`
	MaxRequestDuration     *string        `hcl:"max_request_duration,optional"`
	AuditDir               *string        `hcl:"audit_dir,optional"`
	LoginRateLimit         *float64       `hcl:"login_rate_limit,optional"`
	LoginRateBurst         *int           `hcl:"login_rate_burst,optional"`
	LeaseRevocationWorkers *int           `hcl:"lease_revocation_workers,optional"`
	ClusterName            *string        `hcl:"cluster_name,optional"`
}

func diagError(file string, diags hcl.Diagnostics) error {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		line := 0
		if d.Subject != nil {
			line = d.Subject.Start.Line
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		return &ParseError{File: file, Line: line, Msg: msg}
	}
	return nil
}

// ParseFile decodes config file source src onto base (which it modifies and
// returns). name is used in error messages.
func ParseFile(name string, src []byte, base *Server) (*Server, error) {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, diagError(name, diags)
	}
	var fc fileConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &fc); diags.HasErrors() {
		return nil, diagError(name, diags)
	}
	c := base
	if len(fc.Listeners) > 1 {
		return nil, &ParseError{File: name, Msg: "only one listener block is supported"}
	}
	for _, l := range fc.Listeners {
		if l.Type != "tcp" {
			return nil, &ParseError{File: name, Msg: fmt.Sprintf("listener type %q is not supported (want \"tcp\")", l.Type)}
		}
		setString(&c.Address, l.Address)
		if l.TLSDisable != nil {
			c.TLSDisable = *l.TLSDisable
		}
		setString(&c.TLSCertFile, l.TLSCertFile)
		setString(&c.TLSKeyFile, l.TLSKeyFile)
	}
	if len(fc.Storage) > 1 {
		return nil, &ParseError{File: name, Msg: "only one storage block is supported"}
	}
	for _, s := range fc.Storage {
		c.StorageType = s.Type
		setString(&c.StoragePath, s.Path)
	}
	if len(fc.Seal) > 1 {
		return nil, &ParseError{File: name, Msg: "only one seal block is supported"}
	}
	for _, s := range fc.Seal {
		c.SealType = s.Type
		setString(&c.SealKeyFile, s.KeyFile)
	}
	setString(&c.LogLevel, fc.LogLevel)
	setString(&c.LogFormat, fc.LogFormat)
	if fc.MaxRequestSize != nil {
		c.MaxRequestSize = *fc.MaxRequestSize
	}
	if fc.MaxRequestDuration != nil {
		d, err := time.ParseDuration(*fc.MaxRequestDuration)
		if err != nil {
			return nil, &ParseError{File: name, Msg: fmt.Sprintf("max_request_duration: %v", err)}
		}
		c.RequestTimeout = d
	}
	setString(&c.AuditDir, fc.AuditDir)
	setString(&c.ClusterName, fc.ClusterName)
	if fc.LoginRateLimit != nil {
		c.LoginRateLimit = *fc.LoginRateLimit
	}
	if fc.LoginRateBurst != nil {
		c.LoginRateBurst = *fc.LoginRateBurst
	}
	if fc.LeaseRevocationWorkers != nil {
		c.LeaseRevocationWorkers = *fc.LeaseRevocationWorkers
	}
	return c, nil
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

// LoadFile reads and parses the config file at path onto base.
func LoadFile(path string, base *Server) (*Server, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseFile(filepath.Base(path), src, base)
}

// ApplyEnv overrides c with the COFFER_* variables present in getenv.
func ApplyEnv(c *Server, getenv func(string) string) error {
	str := map[string]*string{
		"COFFER_LISTEN_ADDRESS": &c.Address,
		"COFFER_TLS_CERT_FILE":  &c.TLSCertFile,
		"COFFER_TLS_KEY_FILE":   &c.TLSKeyFile,
		"COFFER_STORAGE_PATH":   &c.StoragePath,
		"COFFER_SEAL_TYPE":      &c.SealType,
		"COFFER_SEAL_KEY_FILE":  &c.SealKeyFile,
		"COFFER_SEAL_KEY":       &c.SealKey,
		"COFFER_LOG_LEVEL":      &c.LogLevel,
		"COFFER_LOG_FORMAT":     &c.LogFormat,
		"COFFER_AUDIT_DIR":      &c.AuditDir,
		"COFFER_CLUSTER_NAME":   &c.ClusterName,
	}
	for k, dst := range str {
		if v := getenv(k); v != "" {
			*dst = v
		}
	}
	if v := getenv("COFFER_TLS_DISABLE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("COFFER_TLS_DISABLE: %q is not a boolean", v)
		}
		c.TLSDisable = b
	}
	if v := getenv("COFFER_MAX_REQUEST_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("COFFER_MAX_REQUEST_SIZE: %q is not an integer", v)
		}
		c.MaxRequestSize = n
	}
	if v := getenv("COFFER_LOGIN_RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("COFFER_LOGIN_RATE_LIMIT: %q is not a number", v)
		}
		c.LoginRateLimit = f
	}
	if v := getenv("COFFER_LEASE_REVOCATION_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("COFFER_LEASE_REVOCATION_WORKERS: %q is not an integer", v)
		}
		c.LeaseRevocationWorkers = n
	}
	if v := getenv("COFFER_LOGIN_RATE_BURST"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("COFFER_LOGIN_RATE_BURST: %q is not an integer", v)
		}
		c.LoginRateBurst = n
	}
	if v := getenv("COFFER_MAX_REQUEST_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("COFFER_MAX_REQUEST_DURATION: %w", err)
		}
		c.RequestTimeout = d
	}
	return nil
}

// ErrInvalid is wrapped by every Validate error.
var ErrInvalid = errors.New("invalid configuration")

// Validate checks the resolved configuration and the files it names.
func (c *Server) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch c.StorageType {
	case "bolt":
		if c.StoragePath == "" {
			return bad("storage path is empty")
		}
	case "inmem":
	default:
		return bad("storage type %q is not supported (want \"bolt\" or \"inmem\")", c.StorageType)
	}
	switch c.SealType {
	case "shamir":
	case "static":
		if c.SealKeyFile == "" && c.SealKey == "" {
			return bad("seal \"static\" needs key_file (or COFFER_SEAL_KEY_FILE / COFFER_SEAL_KEY)")
		}
	default:
		return bad("seal type %q is not supported (want \"shamir\" or \"static\")", c.SealType)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("log level %q is not one of debug, info, warn, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return bad("log format %q is not one of text, json", c.LogFormat)
	}
	if c.MaxRequestSize <= 0 {
		return bad("max request size must be positive")
	}
	if c.LeaseRevocationWorkers < 1 || c.LeaseRevocationWorkers > 256 {
		return bad("lease_revocation_workers must be between 1 and 256")
	}
	if c.RequestTimeout <= 0 {
		return bad("max request duration must be positive")
	}
	if c.LoginRateLimit == 0 || c.LoginRateLimit != c.LoginRateLimit {
		return bad("login_rate_limit must be positive (attempts per second), or negative to turn the limit off")
	}
	if c.LoginRateLimit > 0 && c.LoginRateBurst < 1 {
		return bad("login_rate_burst must be at least 1")
	}
	if c.Address == "" {
		return bad("listen address is empty")
	}
	if !c.TLSDisable {
		if c.TLSCertFile == "" || c.TLSKeyFile == "" {
			return bad("TLS is on by default: set tls_cert_file and tls_key_file (or -tls-cert-file/-tls-key-file, COFFER_TLS_CERT_FILE/COFFER_TLS_KEY_FILE), or tls_disable = true for plain HTTP")
		}
		for _, f := range []string{c.TLSCertFile, c.TLSKeyFile} {
			if _, err := os.Stat(f); err != nil {
				return bad("TLS file %s: %v", f, errors.Unwrap(err))
			}
		}
	}
	return nil
}
