package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFileFull(t *testing.T) {
	got, err := LoadFile("testdata/full.hcl", Defaults())
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	want := &Server{
		Address:        "0.0.0.0:8201",
		TLSCertFile:    "/etc/coffer/tls.crt",
		TLSKeyFile:     "/etc/coffer/tls.key",
		StorageType:    "bolt",
		StoragePath:    "/var/lib/coffer/coffer.db",
		SealType:       "static",
		SealKeyFile:    "/etc/coffer/unseal.key",
		LogLevel:       "debug",
		LogFormat:      "json",
		MaxRequestSize: 1 << 20,
		RequestTimeout: 30 * time.Second,
		LoginRateLimit: 5,
		LoginRateBurst: 20,
		AuditDir:       "/var/log/coffer",
		ClusterName:    "prod",

		LeaseRevocationWorkers: 8,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadFile(full.hcl) mismatch (-want +got):\n%s", diff)
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name, src string
		wantLine  int
		wantMsg   string
	}{
		{"unknown attribute", "log_level = \"info\"\nfoo = 1\n", 2, "Unsupported argument"},
		{"unknown block", "\n\nbackend \"x\" {}\n", 3, "Unsupported block type"},
		{"wrong type", "max_request_size = \"big\"\n", 1, "Unsuitable value"},
		{"syntax", "listener \"tcp\" {\n  address = \n}\n", 2, "Invalid expression"},
		{"bad duration", "max_request_duration = \"soon\"\n", 0, "max_request_duration"},
		{"listener type", "listener \"udp\" {}\n", 0, "not supported"},
		{"two listeners", "listener \"tcp\" {}\nlistener \"tcp\" {}\n", 0, "only one listener"},
		{"unknown listener attribute", "listener \"tcp\" {\n  tls_min_version = \"tls13\"\n}\n", 2, "Unsupported argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("test.hcl", []byte(tc.src), Defaults())
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseFile(%q) error = %v, want *ParseError", tc.src, err)
			}
			if tc.wantLine != 0 && pe.Line != tc.wantLine {
				t.Errorf("ParseFile(%q) line = %d, want %d (%v)", tc.src, pe.Line, tc.wantLine, err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("ParseFile(%q) = %q, want it to contain %q", tc.src, err, tc.wantMsg)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	// file sets debug, env sets warn: env wins over file; defaults fill the rest.
	cfg, err := ParseFile("x.hcl", []byte("log_level = \"debug\"\ncluster_name = \"file\"\n"), Defaults())
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"COFFER_LOG_LEVEL": "warn", "COFFER_TLS_DISABLE": "true", "COFFER_MAX_REQUEST_DURATION": "5s"}
	if err := ApplyEnv(cfg, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "warn" || cfg.ClusterName != "file" || !cfg.TLSDisable || cfg.RequestTimeout != 5*time.Second || cfg.Address != DefaultAddress {
		t.Errorf("after env: %+v", cfg)
	}
	if err := ApplyEnv(cfg, func(k string) string {
		if k == "COFFER_TLS_DISABLE" {
			return "maybe"
		}
		return ""
	}); err == nil {
		t.Errorf("ApplyEnv(COFFER_TLS_DISABLE=maybe) = nil, want error")
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "tls.crt")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mod     func(c *Server)
		wantErr string
	}{
		{"defaults need TLS files", func(c *Server) {}, "TLS is on by default"},
		{"tls disabled ok", func(c *Server) { c.TLSDisable = true }, ""},
		{"missing key file", func(c *Server) { c.TLSCertFile = cert; c.TLSKeyFile = filepath.Join(dir, "nope.key") }, "nope.key"},
		{"static needs key", func(c *Server) { c.TLSDisable = true; c.SealType = "static" }, "key_file"},
		{"bad seal", func(c *Server) { c.TLSDisable = true; c.SealType = "awskms" }, "not supported"},
		{"bad storage", func(c *Server) { c.TLSDisable = true; c.StorageType = "consul" }, "not supported"},
		{"bad log level", func(c *Server) { c.TLSDisable = true; c.LogLevel = "loud" }, "log level"},
		{"zero size", func(c *Server) { c.TLSDisable = true; c.MaxRequestSize = 0 }, "max request size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.mod(c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid containing %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParseFile(f *testing.F) {
	for _, name := range []string{"testdata/full.hcl", "testdata/minimal.hcl"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("listener \"tcp\" { address = 1 }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := ParseFile("fuzz.hcl", src, Defaults())
		if err == nil && c == nil {
			t.Fatal("ParseFile returned nil config and nil error")
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseFile error %v is not a *ParseError", err)
			}
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	c, err := ParseFile("c.hcl", []byte("login_rate_limit = 50\nlogin_rate_burst = 100\n"), Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if c.LoginRateLimit != 50 || c.LoginRateBurst != 100 {
		t.Fatalf("file: %v/%d", c.LoginRateLimit, c.LoginRateBurst)
	}
	env := map[string]string{"COFFER_LOGIN_RATE_LIMIT": "-1"}
	if err := ApplyEnv(c, func(k string) string { return env[k] }); err != nil || c.LoginRateLimit != -1 {
		t.Fatalf("env: %v, %v", c.LoginRateLimit, err)
	}
	d := Defaults()
	if d.LoginRateLimit != 5 || d.LoginRateBurst != 20 {
		t.Fatalf("defaults: %v/%d", d.LoginRateLimit, d.LoginRateBurst)
	}
	d.TLSDisable = true
	d.LoginRateLimit = 0
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "login_rate_limit") {
		t.Fatalf("zero rate: %v", err)
	}
	env = map[string]string{"COFFER_LOGIN_RATE_BURST": "many"}
	if err := ApplyEnv(Defaults(), func(k string) string { return env[k] }); err == nil {
		t.Fatal("a non-integer burst must be refused")
	}
}

func TestLeaseRevocationWorkers(t *testing.T) {
	if d := Defaults(); d.LeaseRevocationWorkers != 16 {
		t.Fatalf("default %d", d.LeaseRevocationWorkers)
	}
	c, err := ParseFile("c.hcl", []byte("lease_revocation_workers = 4\n"), Defaults())
	if err != nil || c.LeaseRevocationWorkers != 4 {
		t.Fatalf("file: %d, %v", c.LeaseRevocationWorkers, err)
	}
	env := map[string]string{"COFFER_LEASE_REVOCATION_WORKERS": "32"}
	if err := ApplyEnv(c, func(k string) string { return env[k] }); err != nil || c.LeaseRevocationWorkers != 32 {
		t.Fatalf("env: %d, %v", c.LeaseRevocationWorkers, err)
	}
	for _, n := range []int{0, 257} {
		d := Defaults()
		d.TLSDisable = true
		d.LeaseRevocationWorkers = n
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "lease_revocation_workers") {
			t.Fatalf("%d workers: %v", n, err)
		}
	}
	env = map[string]string{"COFFER_LEASE_REVOCATION_WORKERS": "many"}
	if err := ApplyEnv(Defaults(), func(k string) string { return env[k] }); err == nil {
		t.Fatal("a non-integer worker count must be refused")
	}
}
