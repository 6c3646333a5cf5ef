package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/coffer-dev/coffer/internal/audit"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// auditTablePath holds the enabled audit devices and their salts, behind
// the barrier.
const auditTablePath = "core/audit"

type auditRow struct {
	Path        string            `json:"path"` // "file/"
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	Salt        []byte            `json:"salt"`
}

type auditTable struct {
	mu   sync.Mutex
	rows map[string]*auditRow
	devs map[string]*audit.FileDevice
}

func newAuditTable() *auditTable {
	return &auditTable{rows: map[string]*auditRow{}, devs: map[string]*audit.FileDevice{}}
}

func (t *auditTable) persistLocked(ctx context.Context, s storage.Backend) error {
	rows := make([]*auditRow, 0, len(t.rows))
	for _, r := range t.rows {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Path < rows[j].Path })
	raw, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	return s.Put(ctx, &storage.Entry{Key: auditTablePath, Value: raw})
}

// loadAudit reopens the enabled devices at unseal. A device that cannot be
// opened stays enabled but failing: requests are refused unless another
// device records them.
func (c *Core) loadAudit(ctx context.Context) error {
	t := c.auditDevs
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := c.barrier.Get(ctx, auditTablePath)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load audit table: %w", err)
	}
	var rows []*auditRow
	if err := json.Unmarshal(e.Value, &rows); err != nil {
		return fmt.Errorf("decode audit table: %w", err)
	}
	for _, r := range rows {
		t.rows[r.Path] = r
		d, err := openAuditDevice(r)
		if err != nil {
			c.log.Error("audit device cannot be opened; requests fail closed unless another device records them", "path", r.Path, "err", err)
			if err := c.audit.Add(r.Path, failedDevice{err: err}); err != nil {
				return err
			}
			continue
		}
		t.devs[r.Path] = d
		if err := c.audit.Add(r.Path, d); err != nil {
			return err
		}
	}
	return nil
}

func (c *Core) unloadAudit() {
	t := c.auditDevs
	t.mu.Lock()
	defer t.mu.Unlock()
	for name := range t.rows {
		c.audit.Remove(name)
	}
	for _, d := range t.devs {
		if err := d.Close(); err != nil {
			c.log.Error("close audit device", "path", d.Path(), "err", err)
		}
	}
	t.rows = map[string]*auditRow{}
	t.devs = map[string]*audit.FileDevice{}
}

// failedDevice stands in for a device that could not be opened: every
// write fails, so fail-closed auditing stays honest.
type failedDevice struct{ err error }

func (f failedDevice) LogRequest(context.Context, *audit.Request) error   { return f.err }
func (f failedDevice) LogResponse(context.Context, *audit.Response) error { return f.err }

func openAuditDevice(r *auditRow) (*audit.FileDevice, error) {
	salt, err := audit.SaltFromBytes(r.Salt)
	if err != nil {
		return nil, fmt.Errorf("audit salt: %w", err)
	}
	return audit.OpenFile(r.Options["file_path"], audit.FileOptions{Salt: salt, Fsync: r.Options["fsync"] == "true"})
}

// checkAuditPath confines file devices to the configured directory: the
// API must not be a way to write arbitrary files.
func (c *Core) checkAuditPath(p string) (string, error) {
	if c.auditDir == "" {
		return "", logical.BadRequest("file audit devices are disabled: the server has no audit directory configured (audit_dir)")
	}
	if p == "" {
		return "", logical.BadRequest("file_path is required")
	}
	if strings.ContainsRune(p, 0) || !filepath.IsAbs(p) {
		return "", logical.BadRequest("file_path must be an absolute path under the audit directory %s", c.auditDir)
	}
	dir, err := filepath.EvalSymlinks(c.auditDir)
	if err != nil {
		return "", logical.BadRequest("the audit directory %s does not exist", c.auditDir)
	}
	clean := filepath.Clean(p)
	parent, err := filepath.EvalSymlinks(filepath.Dir(clean))
	if err != nil {
		parent = filepath.Dir(clean)
	}
	full := filepath.Join(parent, filepath.Base(clean))
	rel, err := filepath.Rel(dir, full)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", logical.BadRequest("file_path must be under the audit directory %s", c.auditDir)
	}
	if fi, err := os.Lstat(full); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return "", logical.BadRequest("file_path must not be a symbolic link")
	}
	return full, nil
}

// handleAudit serves sys/audit and sys/audit/:path.
func (c *Core) handleAudit(ctx context.Context, req *logical.Request, rest string) (*logical.Response, error) {
	rest = strings.Trim(rest, "/")
	t := c.auditDevs
	if rest == "" {
		if req.Operation != logical.ReadOperation {
			return nil, logical.ErrUnsupportedOperation
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		d := map[string]any{}
		for p, r := range t.rows {
			d[p] = map[string]any{"type": r.Type, "description": r.Description, "options": r.Options, "local": r.Local, "path": p}
		}
		return &logical.Response{Data: d, TopLevel: true}, nil
	}
	path := rest + "/"
	switch req.Operation {
	case logical.CreateOperation, logical.UpdateOperation:
		if err := logical.CheckFields(req.Data, "type", "description", "options", "local"); err != nil {
			return nil, err
		}
		typ, err := logical.ParseString("type", req.Data["type"])
		if err != nil {
			return nil, err
		}
		if typ != "file" {
			return nil, logical.BadRequest("audit device type %q is not supported (want \"file\")", typ)
		}
		desc, err := logical.ParseString("description", req.Data["description"])
		if err != nil {
			return nil, err
		}
		local, err := logical.ParseBool("local", req.Data["local"])
		if err != nil {
			return nil, err
		}
		opts := map[string]string{}
		if o, ok := req.Data["options"].(map[string]any); ok {
			for k, v := range o {
				s, err := logical.ParseString("options."+k, v)
				if err != nil {
					return nil, err
				}
				switch k {
				case "file_path", "path":
					opts["file_path"] = s
				case "fsync":
					if s != "true" && s != "false" {
						return nil, logical.BadRequest("options.fsync must be \"true\" or \"false\"")
					}
					opts["fsync"] = s
				case "mode", "format", "hmac_accessor", "log_raw", "elide_list_responses":
					if k == "log_raw" && s == "true" {
						return nil, logical.BadRequest("log_raw is not supported: audit logs never hold secrets in the clear")
					}
					opts[k] = s
				default:
					return nil, logical.BadRequest("unknown audit option %q", k)
				}
			}
		} else if req.Data["options"] != nil {
			return nil, logical.BadRequest("options must be an object")
		}
		full, err := c.checkAuditPath(opts["file_path"])
		if err != nil {
			return nil, err
		}
		opts["file_path"] = full
		salt, err := audit.NewSalt()
		if err != nil {
			return nil, c.errorInternal("generate audit salt", err)
		}
		row := &auditRow{Path: path, Type: typ, Description: desc, Options: opts, Local: local, Salt: salt.Bytes()}
		t.mu.Lock()
		defer t.mu.Unlock()
		if _, ok := t.rows[path]; ok {
			return nil, logical.BadRequest("path already in use")
		}
		for _, r := range t.rows {
			if r.Options["file_path"] == full {
				return nil, logical.BadRequest("file %s is already used by the audit device at %s", full, r.Path)
			}
		}
		d, err := openAuditDevice(row)
		if err != nil {
			return nil, logical.BadRequest("cannot open the audit file: %v", errors.Unwrap(err))
		}
		t.rows[path] = row
		if err := t.persistLocked(ctx, c.barrier); err != nil {
			delete(t.rows, path)
			_ = d.Close()
			return nil, c.errorInternal("store audit table", err)
		}
		t.devs[path] = d
		if err := c.audit.Add(path, d); err != nil {
			return nil, c.errorInternal("enable audit device", err)
		}
		c.log.Info("audit device enabled", "path", path, "file", full)
		return &logical.Response{Status: 204}, nil
	case logical.DeleteOperation:
		t.mu.Lock()
		defer t.mu.Unlock()
		if _, ok := t.rows[path]; !ok {
			return &logical.Response{Status: 204}, nil
		}
		row := t.rows[path]
		delete(t.rows, path)
		if err := t.persistLocked(ctx, c.barrier); err != nil {
			t.rows[path] = row
			return nil, c.errorInternal("store audit table", err)
		}
		c.audit.Remove(path)
		if d := t.devs[path]; d != nil {
			_ = d.Close()
			delete(t.devs, path)
		}
		c.log.Info("audit device disabled", "path", path)
		return &logical.Response{Status: 204}, nil
	}
	return nil, logical.ErrUnsupportedOperation
}

// handleAuditHash serves sys/audit-hash/:path.
func (c *Core) handleAuditHash(ctx context.Context, req *logical.Request, rest string) (*logical.Response, error) {
	if req.Operation != logical.UpdateOperation && req.Operation != logical.CreateOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	in, err := logical.ParseString("input", req.Data["input"])
	if err != nil {
		return nil, err
	}
	h, err := c.audit.Hash(strings.Trim(rest, "/")+"/", in)
	if err != nil {
		return nil, logical.BadRequest("unknown audit device")
	}
	return &logical.Response{Data: map[string]any{"hash": h}, TopLevel: true}, nil
}

// auditFailing lists the devices whose last write failed, with reasons.
func (c *Core) auditFailing() map[string]string {
	t := c.auditDevs
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]string{}
	for p := range t.rows {
		d := t.devs[p]
		if d == nil {
			out[p] = "device could not be opened"
			continue
		}
		if ok, reason := d.Healthy(); !ok {
			out[p] = reason
		}
	}
	return out
}

func auditAuth(a *logical.Auth) *audit.Auth {
	if a == nil {
		return nil
	}
	return &audit.Auth{
		ClientToken: a.ClientToken, Accessor: a.Accessor, DisplayName: a.DisplayName,
		Policies: a.Policies, TokenPolicies: a.TokenPolicies, Metadata: a.Metadata,
		EntityID: a.EntityID, TokenType: a.TokenType, TokenTTL: int64(a.TTL.Seconds()),
	}
}

func auditRequestInfo(req *logical.Request) *audit.RequestInfo {
	ri := &audit.RequestInfo{
		ID: req.ID, Operation: string(req.Operation), MountType: req.MountType,
		ClientToken: req.ClientToken, Namespace: audit.Namespace{ID: "root"},
		Path: req.Path, Data: req.Data, RemoteAddress: hostOf(req.RemoteAddr),
		Headers: req.Headers,
	}
	if req.Auth != nil {
		ri.ClientTokenAccessor = req.Auth.Accessor
	}
	return ri
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i > 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// auditRequest records the request with every enabled device; if none can,
// the request is refused (fail closed).
func (c *Core) auditRequest(ctx context.Context, req *logical.Request, errMsg string) error {
	if !c.audit.Enabled() {
		return nil
	}
	err := c.audit.LogRequest(ctx, &audit.Request{Auth: auditAuth(req.Auth), Request: auditRequestInfo(req), Error: errMsg})
	return c.auditOutcome(err)
}

// auditResponse records the response; if no device can, the response is
// withheld and the request fails.
func (c *Core) auditResponse(ctx context.Context, req *logical.Request, resp *logical.Response, herr error) error {
	if !c.audit.Enabled() {
		return nil
	}
	r := &audit.Response{Auth: auditAuth(req.Auth), Request: auditRequestInfo(req), Response: &audit.ResponseInfo{MountType: req.MountType}}
	if resp != nil {
		r.Response.Data = resp.Data
		r.Response.Warnings = resp.Warnings
		r.Response.Auth = auditAuth(resp.Auth)
		if resp.Secret != nil {
			r.Response.Secret = &audit.Secret{LeaseID: resp.Secret.LeaseID}
		}
	}
	if herr != nil {
		r.Error = clientMessage(herr)
	}
	return c.auditOutcome(c.audit.LogResponse(ctx, r))
}

// clientMessage is the error text a client sees, safe to log.
func clientMessage(err error) string {
	var ire *logical.InvalidRequestError
	var ce *logical.CodedError
	switch {
	case errors.As(err, &ire):
		return ire.Msg
	case errors.As(err, &ce):
		return ce.Msg
	case errors.Is(err, logical.ErrPermissionDenied):
		return "permission denied"
	case errors.Is(err, logical.ErrNotFound), errors.Is(err, logical.ErrUnsupportedPath):
		return "not found"
	}
	return "internal error"
}

func (c *Core) auditOutcome(err error) error {
	if err == nil {
		return nil
	}
	for p := range c.auditFailing() {
		c.metrics.AuditFailure(p)
	}
	if errors.Is(err, audit.ErrNoDeviceRecorded) {
		c.metrics.AuditRefused()
		c.log.Error("request refused: no audit device could record it", "err", err)
		return fmt.Errorf("%w: no audit device recorded the request", logical.ErrInternal)
	}
	// At least one device recorded it; report the failing ones.
	c.log.Warn("an audit device failed", "err", err)
	return nil
}

// ReopenAudit reopens every file audit device (log rotation, on SIGHUP).
// A device whose file cannot be reopened is left failing: requests fail
// closed unless another device records them.
func (c *Core) ReopenAudit() {
	t := c.auditDevs
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, d := range t.devs {
		if err := d.Reopen(); err != nil {
			c.log.Error("reopen audit device", "path", p, "err", err)
			continue
		}
		c.log.Info("audit device reopened", "path", p)
	}
}
