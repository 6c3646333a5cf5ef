package database

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coffer-dev/coffer/internal/logical"
)

const (
	pluginPostgres = "postgresql-database-plugin"
	defaultMaxOpen = 4
	// maxOpenLimit bounds max_open_connections.
	maxOpenLimit = 1000
	// connectTimeout applies when the connection_url sets none.
	connectTimeout = 10 * time.Second
	// opTimeout bounds one operation on the database (issuing, renewing,
	// revoking or rotating a credential).
	opTimeout = 30 * time.Second
)

// defaultRootRotation is the statement rotate-root runs when the config
// has no root_rotation_statements.
const defaultRootRotation = `ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}'`

// dbConfig is the JSON of a config/<name> entry.
type dbConfig struct {
	PluginName    string `json:"plugin_name"`
	ConnectionURL string `json:"connection_url"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	// PendingPassword is the new admin password while rotate-root runs:
	// written before the ALTER ROLE, so that a crash or a failed write
	// after it never loses the only copy. Connecting tries it when the
	// current password is refused, and promotes it if it works.
	PendingPassword        string   `json:"pending_password,omitempty"`
	AllowedRoles           []string `json:"allowed_roles"`
	VerifyConnection       bool     `json:"verify_connection"`
	MaxOpen                int      `json:"max_open_connections"`
	MaxIdle                int      `json:"max_idle_connections"`
	MaxLifetimeSeconds     int64    `json:"max_connection_lifetime_seconds"`
	PasswordAuthentication string   `json:"password_authentication"`
	UsernameTemplate       string   `json:"username_template,omitempty"`
	RootRotationStatements []string `json:"root_rotation_statements,omitempty"`
	DisableEscaping        bool     `json:"disable_escaping,omitempty"`
}

// configFields are the fields a config write accepts.
var configFields = []string{
	"plugin_name", "plugin_version", "connection_url", "username", "password", "allowed_roles",
	"verify_connection", "max_open_connections", "max_idle_connections", "max_connection_lifetime",
	"password_authentication", "username_template", "root_rotation_statements", "password_policy",
	"disable_escaping",
}

// connection is a config in use: its settings, username template and
// connection pool.
type connection struct {
	name    string
	cfg     dbConfig
	literal string // a password the connection_url carries itself
	tmpl    *usernameTemplate
	pool    *pool
}

// secrets are the values to redact from anything said about c.
func (c *connection) secrets(extra ...string) []string {
	return append([]string{c.cfg.Password, c.cfg.PendingPassword, c.literal}, extra...)
}

// fail turns an error of an operation on c into the client's error,
// redacted.
func (c *connection) fail(what string, err error, extra ...string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: database %q did not answer in time", logical.ErrUpstream, what, c.name)
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return asClient(err)
	}
	return dbError(what, err, c.secrets(extra...)...)
}

// connection returns the open connection of config name, or nil if there
// is no such config.
func (b *Backend) connection(ctx context.Context, name string) (*connection, error) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if c := b.conns[name]; c != nil {
		return c, nil
	}
	var cfg dbConfig
	found, err := b.getJSON(ctx, configPrefix+name, &cfg)
	if err != nil || !found {
		return nil, err
	}
	c, err := b.newConnection(name, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: config %q: %v", errCorrupt, name, err)
	}
	b.conns[name] = c
	return c, nil
}

// newConnection builds the connection of cfg without connecting.
func (b *Backend) newConnection(name string, cfg dbConfig) (*connection, error) {
	literal, err := parseConnURL(cfg.ConnectionURL, cfg.DisableEscaping)
	if err != nil {
		return nil, err
	}
	tmpl, err := parseUsernameTemplate(cfg.UsernameTemplate)
	if err != nil {
		return nil, err
	}
	c := &connection{name: name, cfg: cfg, literal: literal, tmpl: tmpl}
	c.pool = newPool(cfg.MaxOpen, cfg.MaxIdle, time.Duration(cfg.MaxLifetimeSeconds)*time.Second, func(ctx context.Context) (*pgx.Conn, error) {
		return b.dial(ctx, name, &c.cfg)
	})
	return c, nil
}

// invalidate closes and forgets the connection of config name.
func (b *Backend) invalidate(name string) {
	b.connMu.Lock()
	c := b.conns[name]
	delete(b.conns, name)
	b.connMu.Unlock()
	if c != nil {
		c.pool.close()
	}
}

// dial opens a connection as the config's admin. If the password is
// refused and a rotate-root left a pending password, that one is tried and,
// if it works, made the password.
func (b *Backend) dial(ctx context.Context, name string, cfg *dbConfig) (*pgx.Conn, error) {
	c, err := connectAs(ctx, cfg, cfg.Password)
	if err != nil && cfg.PendingPassword != "" && isAuthFailure(err) {
		if c2, err2 := connectAs(ctx, cfg, cfg.PendingPassword); err2 == nil {
			go b.promotePending(name, cfg.PendingPassword)
			return c2, nil
		}
	}
	return c, err
}

func connectAs(ctx context.Context, cfg *dbConfig, password string) (*pgx.Conn, error) {
	pc, err := pgx.ParseConfig(connString(cfg.ConnectionURL, cfg.Username, password, cfg.DisableEscaping))
	if err != nil {
		return nil, &ParseError{Field: "connection_url", Msg: "cannot be parsed with the configured username and password"}
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = connectTimeout
	}
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = "coffer"
	}
	return pgx.ConnectConfig(ctx, pc)
}

// isAuthFailure reports whether PostgreSQL refused a login.
func isAuthFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000")
}

// promotePending makes a pending admin password that worked the password.
func (b *Backend) promotePending(name, pending string) {
	l := b.configLock(name)
	l.Lock()
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var cfg dbConfig
	found, err := b.getJSON(ctx, configPrefix+name, &cfg)
	if err != nil || !found || cfg.PendingPassword != pending {
		return
	}
	cfg.Password, cfg.PendingPassword = pending, ""
	if err := b.putJSON(ctx, configPrefix+name, &cfg); err != nil {
		b.log.Error("database: store the admin password of an interrupted root rotation", "config", name, "err", err)
		return
	}
	b.log.Warn("database: finished an interrupted root rotation: the new admin password is in use", "config", name)
	b.invalidate(name)
}

func (b *Backend) readConfig(ctx context.Context, name string) (*logical.Response, error) {
	var cfg dbConfig
	found, err := b.getJSON(ctx, configPrefix+name, &cfg)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, logical.ErrNotFound
	}
	literal, _ := parseConnURL(cfg.ConnectionURL, cfg.DisableEscaping)
	allowed := cfg.AllowedRoles
	if allowed == nil {
		allowed = []string{}
	}
	rot := cfg.RootRotationStatements
	if rot == nil {
		rot = []string{}
	}
	return &logical.Response{Data: map[string]any{
		"plugin_name":    cfg.PluginName,
		"plugin_version": "",
		"connection_details": map[string]any{
			"connection_url":          displayURL(cfg.ConnectionURL, literal),
			"username":                cfg.Username,
			"max_open_connections":    effectiveMaxOpen(cfg.MaxOpen),
			"max_idle_connections":    cfg.MaxIdle,
			"max_connection_lifetime": (time.Duration(cfg.MaxLifetimeSeconds) * time.Second).String(),
			"password_authentication": cfg.PasswordAuthentication,
			"username_template":       cfg.UsernameTemplate,
			"disable_escaping":        cfg.DisableEscaping,
		},
		"allowed_roles":                      allowed,
		"root_credentials_rotate_statements": rot,
		"password_policy":                    "",
		"verify_connection":                  cfg.VerifyConnection,
	}}, nil
}

func effectiveMaxOpen(n int) int {
	if n <= 0 {
		return defaultMaxOpen
	}
	return n
}

// writeConfig creates or updates config name. On update, fields that are
// absent keep their value (the password too).
func (b *Backend) writeConfig(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, configFields...); err != nil {
		return nil, err
	}
	l := b.configLock(name)
	l.Lock()
	defer l.Unlock()
	var cfg dbConfig
	found, err := b.getJSON(ctx, configPrefix+name, &cfg)
	if err != nil {
		return nil, err
	}
	if !found {
		cfg = dbConfig{VerifyConnection: true, PasswordAuthentication: passwordAuthPassword, AllowedRoles: []string{}}
	}
	if err := applyConfigFields(&cfg, d); err != nil {
		return nil, err
	}
	if _, ok := d["password"]; ok {
		// An operator-set password replaces any left pending by an
		// interrupted rotate-root.
		cfg.PendingPassword = ""
	}
	c, err := b.newConnection(name, cfg)
	if err != nil {
		return nil, asClient(err)
	}
	if cfg.VerifyConnection {
		vctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		conn, err := b.dial(vctx, name, &c.cfg)
		if err == nil {
			err = conn.Ping(vctx)
			closeConn(conn)
		}
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				return nil, asClient(err)
			}
			return nil, logical.BadRequest("error verifying connection: %s", redact(err.Error(), c.secrets()...))
		}
	}
	if err := b.putJSON(ctx, configPrefix+name, &cfg); err != nil {
		return nil, err
	}
	b.invalidate(name)
	return nil, nil
}

// applyConfigFields applies the fields present in d to cfg and checks
// the result.
func applyConfigFields(cfg *dbConfig, d map[string]any) error {
	str := func(field string, dst *string) error {
		v, ok := d[field]
		if !ok {
			return nil
		}
		s, err := logical.ParseString(field, v)
		if err != nil {
			return err
		}
		*dst = s
		return nil
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"plugin_name", &cfg.PluginName}, {"connection_url", &cfg.ConnectionURL}, {"username", &cfg.Username},
		{"password", &cfg.Password}, {"password_authentication", &cfg.PasswordAuthentication},
		{"username_template", &cfg.UsernameTemplate},
	} {
		if err := str(f.name, f.dst); err != nil {
			return err
		}
	}
	for _, field := range []string{"plugin_version", "password_policy"} {
		s, err := logical.ParseString(field, d[field])
		if err != nil {
			return err
		}
		if s != "" {
			return logical.BadRequest("%s is not supported by Coffer: leave it empty (see docs/database.md)", field)
		}
	}
	if v, ok := d["allowed_roles"]; ok {
		roles, err := logical.ParseStrings("allowed_roles", v)
		if err != nil {
			return err
		}
		cfg.AllowedRoles = roles
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"verify_connection", &cfg.VerifyConnection}, {"disable_escaping", &cfg.DisableEscaping}} {
		if v, ok := d[f.name]; ok {
			b, err := logical.ParseBool(f.name, v)
			if err != nil {
				return err
			}
			*f.dst = b
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"max_open_connections", &cfg.MaxOpen}, {"max_idle_connections", &cfg.MaxIdle}} {
		if v, ok := d[f.name]; ok {
			n, err := logical.ParseInt(f.name, v)
			if err != nil {
				return err
			}
			if n > maxOpenLimit || n < -maxOpenLimit {
				return logical.BadRequest("%s: %d is out of range", f.name, n)
			}
			*f.dst = int(n)
		}
	}
	if cfg.MaxOpen < 0 {
		return logical.BadRequest("max_open_connections: must not be negative")
	}
	if v, ok := d["max_connection_lifetime"]; ok {
		dur, err := logical.ParseDuration("max_connection_lifetime", v)
		if err != nil {
			return err
		}
		cfg.MaxLifetimeSeconds = int64(dur / time.Second)
	}
	if v, ok := d["root_rotation_statements"]; ok {
		st, err := parseStatements("root_rotation_statements", v)
		if err != nil {
			return err
		}
		cfg.RootRotationStatements = st
	}
	switch {
	case cfg.PluginName == "":
		return logical.BadRequest("plugin_name is required")
	case cfg.PluginName != pluginPostgres:
		return logical.BadRequest("unsupported plugin_name %q: Coffer supports %q", clip(cfg.PluginName), pluginPostgres)
	case cfg.ConnectionURL == "":
		return logical.BadRequest("connection_url is required")
	}
	switch cfg.PasswordAuthentication {
	case "":
		cfg.PasswordAuthentication = passwordAuthPassword
	case passwordAuthPassword, passwordAuthSCRAM:
	default:
		return logical.BadRequest("password_authentication must be %q or %q", passwordAuthPassword, passwordAuthSCRAM)
	}
	if cfg.DisableEscaping && (strings.ContainsAny(cfg.Username, "@:/?#'\\ ") || strings.ContainsAny(cfg.Password, "@:/?#'\\ ")) {
		return logical.BadRequest("disable_escaping: the username or password holds characters that must be escaped")
	}
	return nil
}

func (b *Backend) deleteConfig(ctx context.Context, name string) (*logical.Response, error) {
	l := b.configLock(name)
	l.Lock()
	defer l.Unlock()
	if _, err := b.deleteEntry(ctx, configPrefix+name); err != nil {
		return nil, err
	}
	b.invalidate(name)
	return nil, nil
}

// reset closes the config's connections; the next use reconnects with
// the stored settings.
func (b *Backend) reset(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data); err != nil {
		return nil, err
	}
	c, err := b.connection(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, logical.BadRequest("unknown database config %q", name)
	}
	b.invalidate(name)
	return nil, nil
}

// rotateRoot gives the config's admin a new random password that only
// Coffer knows from then on.
func (b *Backend) rotateRoot(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data); err != nil {
		return nil, err
	}
	l := b.configLock(name)
	l.Lock()
	defer l.Unlock()
	var cfg dbConfig
	found, err := b.getJSON(ctx, configPrefix+name, &cfg)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, logical.BadRequest("unknown database config %q", name)
	}
	switch {
	case cfg.Username == "" || cfg.Password == "":
		return nil, logical.BadRequest("rotate-root needs the config's username and password")
	case !strings.Contains(cfg.ConnectionURL, "{{password}}"):
		return nil, logical.BadRequest("rotate-root needs a connection_url templated with {{password}}")
	}
	if err := validUsername(cfg.Username); err != nil {
		return nil, logical.BadRequest("rotate-root cannot put the username %q in a statement: %v", clip(cfg.Username), err)
	}
	c, err := b.connection(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, logical.BadRequest("unknown database config %q", name)
	}
	newPassword, err := generatePassword()
	if err != nil {
		return nil, err
	}
	secret, err := passwordSecret(cfg.PasswordAuthentication, newPassword)
	if err != nil {
		return nil, err
	}
	stmts := cfg.RootRotationStatements
	if len(stmts) == 0 {
		stmts = []string{defaultRootRotation}
	}
	compiled, err := compileStatements("root_rotation_statements", stmts)
	if err != nil {
		return nil, err
	}
	// The new password is stored before it is set, so that it is never
	// lost: see dbConfig.PendingPassword.
	cfg.PendingPassword = newPassword
	if err := b.putJSON(ctx, configPrefix+name, &cfg); err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err = c.pool.tx(octx, func(tx pgx.Tx) error {
		return execAll(octx, tx, compiled, templateVars{username: cfg.Username, password: secret})
	})
	if err != nil {
		cfg.PendingPassword = ""
		if perr := b.putJSON(context.Background(), configPrefix+name, &cfg); perr != nil {
			b.log.Error("database: clear the pending admin password of a failed root rotation", "config", name, "err", perr)
		}
		return nil, c.fail("root rotation statements failed", err, newPassword, secret)
	}
	cfg.Password, cfg.PendingPassword = newPassword, ""
	if err := b.putJSON(ctx, configPrefix+name, &cfg); err != nil {
		b.log.Error("database: the admin password was rotated but could not be stored; it stays pending and is promoted on the next connection", "config", name, "err", err)
		b.invalidate(name)
		return nil, err
	}
	b.invalidate(name)
	b.log.Info("database: admin password rotated", "config", name)
	return nil, nil
}
