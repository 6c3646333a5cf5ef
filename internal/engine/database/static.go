package database

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-dev/coffer/internal/logical"
)

const (
	// minRotationPeriod is the shortest rotation_period (Vault's).
	minRotationPeriod = 5 * time.Second
	// minRotationWindow is the shortest rotation_window (Vault's).
	minRotationWindow = time.Hour
	// defaultStaticRotation is what rotates a static role's password when
	// it has no rotation_statements.
	defaultStaticRotation = `ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`
)

// staticRole is the JSON of a static-role/<name> entry: an existing
// database user whose password the engine owns and rotates.
type staticRole struct {
	DBName                string    `json:"db_name"`
	Username              string    `json:"username"`
	RotationPeriodSeconds int64     `json:"rotation_period,omitempty"`
	RotationSchedule      string    `json:"rotation_schedule,omitempty"`
	RotationWindowSeconds int64     `json:"rotation_window,omitempty"`
	RotationStatements    []string  `json:"rotation_statements"`
	Password              string    `json:"password"`
	LastRotation          time.Time `json:"last_vault_rotation"`
	NextRotation          time.Time `json:"next_rotation"`
}

func (s *staticRole) period() time.Duration {
	return time.Duration(s.RotationPeriodSeconds) * time.Second
}
func (s *staticRole) window() time.Duration {
	return time.Duration(s.RotationWindowSeconds) * time.Second
}

// nextAfter is when the password is next due after a rotation at t.
func (s *staticRole) nextAfter(t time.Time) (time.Time, error) {
	if s.RotationSchedule == "" {
		return t.Add(s.period()), nil
	}
	sc, err := parseSchedule(s.RotationSchedule)
	if err != nil {
		return time.Time{}, err
	}
	next, ok := sc.next(t)
	if !ok {
		return time.Time{}, &ParseError{Field: "rotation_schedule", Msg: "never fires"}
	}
	return next, nil
}

var staticRoleFields = []string{
	"db_name", "username", "rotation_period", "rotation_schedule", "rotation_window", "rotation_statements",
	"credential_type",
}

func (b *Backend) loadStaticRole(ctx context.Context, name string) (*staticRole, error) {
	var s staticRole
	found, err := b.getJSON(ctx, staticRolePrefix+name, &s)
	if err != nil || !found {
		return nil, err
	}
	return &s, nil
}

func (b *Backend) readStaticRole(ctx context.Context, name string) (*logical.Response, error) {
	s, err := b.loadStaticRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, logical.ErrNotFound
	}
	data := map[string]any{
		"db_name":             s.DBName,
		"username":            s.Username,
		"rotation_statements": nonNil(s.RotationStatements),
		"last_vault_rotation": s.LastRotation.Format(time.RFC3339Nano),
		"credential_type":     "password",
	}
	addRotationFields(data, s)
	return &logical.Response{Data: data}, nil
}

func addRotationFields(data map[string]any, s *staticRole) {
	if s.RotationSchedule != "" {
		data["rotation_schedule"] = s.RotationSchedule
		data["rotation_window"] = s.RotationWindowSeconds
	} else {
		data["rotation_period"] = s.RotationPeriodSeconds
	}
}

// writeStaticRole creates or updates a static role. Creating it rotates
// the user's password at once, as Vault does: from then on only Coffer
// knows it. On update, fields that are absent keep their value; username
// and db_name cannot change.
func (b *Backend) writeStaticRole(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	d := req.Data
	if err := logical.CheckFields(d, staticRoleFields...); err != nil {
		return nil, err
	}
	l := b.staticLock(name)
	l.Lock()
	defer l.Unlock()
	s, err := b.loadStaticRole(ctx, name)
	if err != nil {
		return nil, err
	}
	create := s == nil
	if create {
		s = &staticRole{}
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"db_name", &s.DBName}, {"username", &s.Username}} {
		v, ok := d[f.name]
		if !ok {
			continue
		}
		str, err := logical.ParseString(f.name, v)
		if err != nil {
			return nil, err
		}
		if !create && str != *f.dst {
			return nil, logical.BadRequest("%s cannot be changed; delete the static role and create it again", f.name)
		}
		*f.dst = str
	}
	if err := applyRotationFields(s, d); err != nil {
		return nil, err
	}
	if v, ok := d["rotation_statements"]; ok {
		if s.RotationStatements, err = parseStatements("rotation_statements", v); err != nil {
			return nil, err
		}
	}
	if ct, err := logical.ParseString("credential_type", d["credential_type"]); err != nil {
		return nil, err
	} else if ct != "" && ct != "password" {
		return nil, logical.BadRequest("credential_type: Coffer supports only \"password\"")
	}
	switch {
	case s.DBName == "":
		return nil, logical.BadRequest("db_name is required")
	case s.Username == "":
		return nil, logical.BadRequest("username is required")
	}
	if err := validUsername(s.Username); err != nil {
		return nil, logical.BadRequest("username: %v", err)
	}
	c, err := b.staticConnection(ctx, name, s)
	if err != nil {
		return nil, err
	}
	now := b.now()
	if create {
		if err := b.checkUniqueStatic(ctx, name, s); err != nil {
			return nil, err
		}
		if err := b.rotateStatic(ctx, c, name, s, now); err != nil {
			return nil, err
		}
	} else {
		if s.NextRotation, err = s.nextAfter(s.LastRotation); err != nil {
			return nil, asClient(err)
		}
		if err := b.putJSON(ctx, staticRolePrefix+name, s); err != nil {
			return nil, err
		}
	}
	b.schedule(name, s.NextRotation)
	return nil, nil
}

// applyRotationFields reads rotation_period, rotation_schedule and
// rotation_window: exactly one of the first two must be set, and a window
// only goes with a schedule. Setting one of them clears the other.
func applyRotationFields(s *staticRole, d map[string]any) error {
	if v, ok := d["rotation_period"]; ok {
		p, err := logical.ParseDuration("rotation_period", v)
		if err != nil {
			return err
		}
		if p > 0 {
			s.RotationSchedule, s.RotationWindowSeconds = "", 0
		}
		s.RotationPeriodSeconds = int64(p / time.Second)
	}
	if v, ok := d["rotation_schedule"]; ok {
		str, err := logical.ParseString("rotation_schedule", v)
		if err != nil {
			return err
		}
		if str != "" {
			if _, err := parseSchedule(str); err != nil {
				return asClient(err)
			}
			if _, setPeriod := d["rotation_period"]; setPeriod && s.RotationPeriodSeconds > 0 {
				return logical.BadRequest("rotation_period and rotation_schedule are mutually exclusive")
			}
			s.RotationPeriodSeconds = 0
		}
		s.RotationSchedule = strings.TrimSpace(str)
	}
	if v, ok := d["rotation_window"]; ok {
		w, err := logical.ParseDuration("rotation_window", v)
		if err != nil {
			return err
		}
		s.RotationWindowSeconds = int64(w / time.Second)
	}
	switch {
	case s.RotationSchedule == "" && s.RotationPeriodSeconds == 0:
		return logical.BadRequest("one of rotation_period or rotation_schedule is required")
	case s.RotationSchedule == "" && s.period() < minRotationPeriod:
		return logical.BadRequest("rotation_period must be %s or more", minRotationPeriod)
	case s.RotationWindowSeconds != 0 && s.RotationSchedule == "":
		return logical.BadRequest("rotation_window goes only with rotation_schedule")
	case s.RotationWindowSeconds != 0 && s.window() < minRotationWindow:
		return logical.BadRequest("rotation_window must be %s or more", minRotationWindow)
	}
	return nil
}

// staticConnection returns the connection of a static role's config,
// checking that the role may use it.
func (b *Backend) staticConnection(ctx context.Context, name string, s *staticRole) (*connection, error) {
	c, err := b.connection(ctx, s.DBName)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, logical.BadRequest("static role %q uses the database config %q, which does not exist", name, s.DBName)
	}
	if !allowedRole(c.cfg.AllowedRoles, name) {
		return nil, logical.BadRequest("%q is not an allowed role of database config %q", name, s.DBName)
	}
	return c, nil
}

// checkUniqueStatic refuses a second static role for the same user of the
// same config: two owners would rotate each other's password away.
func (b *Backend) checkUniqueStatic(ctx context.Context, name string, s *staticRole) error {
	names, err := b.store.List(ctx, staticRolePrefix)
	if err != nil {
		return fmt.Errorf("database: list static roles: %w", err)
	}
	for _, other := range names {
		if other == name || strings.HasSuffix(other, "/") {
			continue
		}
		o, err := b.loadStaticRole(ctx, other)
		if err != nil {
			return err
		}
		if o != nil && o.DBName == s.DBName && o.Username == s.Username {
			return logical.BadRequest("the user %q of database config %q is already managed by static role %q", s.Username, s.DBName, other)
		}
	}
	return nil
}

// rotateStatic sets a new password for the static role's user and stores
// it. The caller holds the role's lock.
func (b *Backend) rotateStatic(ctx context.Context, c *connection, name string, s *staticRole, now time.Time) error {
	password, err := generatePassword()
	if err != nil {
		return err
	}
	secret, err := passwordSecret(c.cfg.PasswordAuthentication, password)
	if err != nil {
		return err
	}
	stmts := s.RotationStatements
	if len(stmts) == 0 {
		stmts = []string{defaultStaticRotation}
	}
	compiled, err := compileStatements("rotation_statements", stmts)
	if err != nil {
		return err
	}
	next, err := s.nextAfter(now)
	if err != nil {
		return asClient(err)
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	err = c.pool.tx(octx, func(tx pgx.Tx) error {
		return execAll(octx, tx, compiled, templateVars{username: s.Username, password: secret})
	})
	if err != nil {
		return c.fail(fmt.Sprintf("rotate the password of %q", s.Username), err, password, secret)
	}
	s.Password, s.LastRotation, s.NextRotation = password, now, next
	if err := b.putJSON(ctx, staticRolePrefix+name, s); err != nil {
		// The user has a password nobody knows: rotate again as soon as
		// the storage takes writes.
		b.schedule(name, now)
		return fmt.Errorf("database: the password of static role %q was rotated but could not be stored (it will be rotated again): %w", name, err)
	}
	return nil
}

// staticCreds returns a static role's current password.
func (b *Backend) staticCreds(ctx context.Context, name string) (*logical.Response, error) {
	s, err := b.loadStaticRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, logical.BadRequest("unknown static role: %s", name)
	}
	ttl := s.NextRotation.Sub(b.now())
	if ttl < 0 {
		ttl = 0
	}
	data := map[string]any{
		"username":            s.Username,
		"password":            s.Password,
		"last_vault_rotation": s.LastRotation.Format(time.RFC3339Nano),
		"ttl":                 int64(ttl / time.Second),
	}
	addRotationFields(data, s)
	return &logical.Response{Data: data}, nil
}

// rotateRole rotates a static role's password now.
func (b *Backend) rotateRole(ctx context.Context, req *logical.Request, name string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data); err != nil {
		return nil, err
	}
	l := b.staticLock(name)
	l.Lock()
	defer l.Unlock()
	s, err := b.loadStaticRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, logical.BadRequest("unknown static role: %s", name)
	}
	c, err := b.staticConnection(ctx, name, s)
	if err != nil {
		return nil, err
	}
	if err := b.rotateStatic(ctx, c, name, s, b.now()); err != nil {
		return nil, err
	}
	b.schedule(name, s.NextRotation)
	return nil, nil
}

func (b *Backend) deleteStaticRole(ctx context.Context, name string) (*logical.Response, error) {
	l := b.staticLock(name)
	l.Lock()
	defer l.Unlock()
	if _, err := b.deleteEntry(ctx, staticRolePrefix+name); err != nil {
		return nil, err
	}
	b.schedMu.Lock()
	delete(b.due, name)
	b.schedMu.Unlock()
	return nil, nil
}

// schedule records when static role name is next due.
func (b *Backend) schedule(name string, at time.Time) {
	b.schedMu.Lock()
	defer b.schedMu.Unlock()
	b.due[name] = at
}

// RotateDue rotates the password of every static role that is due at
// now, and returns how many it rotated. It implements logical.Rotator.
//
// A role on a rotation_schedule with a rotation_window whose window has
// passed (the server was down, or the database was) is not rotated late:
// it waits for its next scheduled time. A failed rotation is tried again
// on the next call. The first call lists and reads every static role to
// build the index of due times; later calls read only the roles due.
func (b *Backend) RotateDue(ctx context.Context, now time.Time) (int, error) {
	if err := b.loadSchedule(ctx); err != nil {
		return 0, err
	}
	b.schedMu.Lock()
	var names []string
	for name, at := range b.due {
		if !now.Before(at) {
			names = append(names, name)
		}
	}
	b.schedMu.Unlock()
	sort.Strings(names)
	var errs []error
	rotated := 0
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		ok, err := b.rotateIfDue(ctx, name, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("static role %q: %w", name, err))
			continue
		}
		if ok {
			rotated++
			b.log.Info("database: static role password rotated on schedule", "static_role", name)
		}
	}
	return rotated, errors.Join(errs...)
}

func (b *Backend) rotateIfDue(ctx context.Context, name string, now time.Time) (bool, error) {
	l := b.staticLock(name)
	l.Lock()
	defer l.Unlock()
	s, err := b.loadStaticRole(ctx, name)
	if err != nil {
		return false, err
	}
	if s == nil {
		b.schedMu.Lock()
		delete(b.due, name)
		b.schedMu.Unlock()
		return false, nil
	}
	if now.Before(s.NextRotation) {
		b.schedule(name, s.NextRotation)
		return false, nil
	}
	if s.RotationSchedule != "" && s.RotationWindowSeconds > 0 && now.After(s.NextRotation.Add(s.window())) {
		// The window was missed: wait for the next scheduled time.
		next, err := s.nextAfter(now)
		if err != nil {
			return false, err
		}
		s.NextRotation = next
		if err := b.putJSON(ctx, staticRolePrefix+name, s); err != nil {
			return false, err
		}
		b.schedule(name, next)
		b.log.Warn("database: static role missed its rotation window; it waits for the next scheduled time", "static_role", name, "next", next)
		return false, nil
	}
	c, err := b.staticConnection(ctx, name, s)
	if err != nil {
		return false, err
	}
	if err := b.rotateStatic(ctx, c, name, s, now); err != nil {
		return false, err
	}
	b.schedule(name, s.NextRotation)
	return true, nil
}

// loadSchedule fills the index of due times on first use. A role that
// cannot be read is indexed as due at once, so that rotateIfDue reports
// its error on every call until it reads.
func (b *Backend) loadSchedule(ctx context.Context) error {
	b.schedMu.Lock()
	loaded := b.loaded
	b.schedMu.Unlock()
	if loaded {
		return nil
	}
	names, err := b.store.List(ctx, staticRolePrefix)
	if err != nil {
		return fmt.Errorf("database: list static roles: %w", err)
	}
	due := map[string]time.Time{}
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			continue
		}
		s, err := b.loadStaticRole(ctx, name)
		switch {
		case err != nil:
			due[name] = time.Time{}
		case s != nil:
			due[name] = s.NextRotation
		}
	}
	b.schedMu.Lock()
	defer b.schedMu.Unlock()
	if b.loaded {
		return nil
	}
	for name, at := range due {
		if _, ok := b.due[name]; !ok {
			b.due[name] = at
		}
	}
	b.loaded = true
	return nil
}
