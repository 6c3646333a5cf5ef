package approle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/auth/cidr"
	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// Bounds of secret ID inputs.
const (
	maxSecretIDLen     = 512
	maxMetadataKeys    = 64
	maxMetadataKeyLen  = 128
	maxMetadataValLen  = 512
	maxSecretIDNumUses = 1<<31 - 1
)

// secretID is a stored secret ID: its HMAC, never the secret ID itself.
type secretID struct {
	Digest          string            `json:"digest"`
	Accessor        string            `json:"accessor"`
	CreationTime    time.Time         `json:"creation_time"`
	ExpirationTime  time.Time         `json:"expiration_time"` // zero: never
	LastUpdatedTime time.Time         `json:"last_updated_time"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	NumUses         int               `json:"num_uses"` // uses left; 0: unlimited
	TTL             time.Duration     `json:"ttl"`
	CIDRList        []string          `json:"cidr_list,omitempty"`
	// TokenBoundCIDRs binds the tokens of logins with this secret ID
	// (instead of the role's token_bound_cidrs, within which it lies).
	TokenBoundCIDRs []string `json:"token_bound_cidrs,omitempty"`
}

func (s *secretID) expired(now time.Time) bool {
	return !s.ExpirationTime.IsZero() && !now.Before(s.ExpirationTime)
}

func (s *secretID) data() map[string]any {
	cidrs := s.CIDRList
	if cidrs == nil {
		cidrs = []string{}
	}
	meta := s.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	return map[string]any{
		"secret_id_accessor": s.Accessor,
		"creation_time":      s.CreationTime.UTC().Format(time.RFC3339Nano),
		"expiration_time":    s.ExpirationTime.UTC().Format(time.RFC3339Nano),
		"last_updated_time":  s.LastUpdatedTime.UTC().Format(time.RFC3339Nano),
		"metadata":           meta,
		"secret_id_num_uses": s.NumUses,
		"secret_id_ttl":      logical.FormatSeconds(s.TTL),
		"cidr_list":          cidrs,
		"token_bound_cidrs":  append([]string{}, s.TokenBoundCIDRs...),
	}
}

func secretIDKey(roleUUID, digest string) string { return secretIDPrefix + roleUUID + "/" + digest }
func accessorKey(roleUUID, acc string) string    { return accessorPrefix + roleUUID + "/" + acc }

// lockFor returns the stripe lock of a secret ID digest.
func (b *Backend) lockFor(digest string) *sync.Mutex {
	var h uint64
	if len(digest) >= 2 {
		h, _ = strconv.ParseUint(digest[:2], 16, 8)
	}
	return &b.sidLocks[h%uint64(len(b.sidLocks))]
}

func (b *Backend) loadSecretID(ctx context.Context, roleUUID, digest string) (*secretID, error) {
	e, err := b.store.Get(ctx, secretIDKey(roleUUID, digest))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("approle: read secret id: %w", err)
	}
	var s secretID
	if err := json.Unmarshal(e.Value, &s); err != nil {
		return nil, fmt.Errorf("approle: decode secret id: %w", err)
	}
	if !equalDigest(s.Digest, digest) {
		return nil, nil
	}
	return &s, nil
}

func deleteSecretIDOps(roleUUID string, s *secretID) []storage.Op {
	return []storage.Op{
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: secretIDKey(roleUUID, s.Digest)}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: accessorKey(roleUUID, s.Accessor)}},
	}
}

// parseMetadata reads the metadata field: a JSON object of strings, given
// as an object or (as the Vault CLI sends it) a JSON-encoded string.
func parseMetadata(v any) (map[string]string, error) {
	if s, ok := v.(string); ok {
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, logical.BadRequest("metadata: not a JSON object of strings")
		}
		v = m
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, logical.BadRequest("metadata: must be a JSON object of strings")
	}
	if len(m) > maxMetadataKeys {
		return nil, logical.BadRequest("metadata: more than %d keys", maxMetadataKeys)
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		s, ok := val.(string)
		if !ok {
			return nil, logical.BadRequest("metadata: value of %q is not a string", k)
		}
		if k == "" || len(k) > maxMetadataKeyLen || len(s) > maxMetadataValLen {
			return nil, logical.BadRequest("metadata: keys must be 1-%d bytes and values at most %d", maxMetadataKeyLen, maxMetadataValLen)
		}
		if k == "role_name" {
			return nil, logical.BadRequest("metadata: %q is reserved", k)
		}
		out[k] = s
	}
	return out, nil
}

// generateSecretID serves role/:name/secret-id (a new random secret ID)
// and role/:name/custom-secret-id (one given by the caller).
func (b *Backend) generateSecretID(ctx context.Context, req *logical.Request, name string, custom bool) (*logical.Response, error) {
	fields := []string{"metadata", "cidr_list", "token_bound_cidrs", "num_uses", "ttl"}
	if custom {
		fields = append(fields, "secret_id")
	}
	if err := logical.CheckFields(req.Data, fields...); err != nil {
		return nil, err
	}
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("role %q does not exist", name)
	}
	if !r.BindSecretID {
		return nil, logical.BadRequest("bind_secret_id is not set on the role")
	}
	meta, err := parseMetadata(req.Data["metadata"])
	if err != nil {
		return nil, err
	}
	cidrs, err := parseCIDRField("cidr_list", req.Data["cidr_list"])
	if err != nil {
		return nil, err
	}
	bound, err := r.boundCIDRs()
	if err != nil {
		return nil, err
	}
	if !cidrs.SubsetOf(bound) {
		return nil, logical.BadRequest("cidr_list must lie within the role's secret_id_bound_cidrs %v", bound.Strings())
	}
	tokenCIDRs, err := parseCIDRField("token_bound_cidrs", req.Data["token_bound_cidrs"])
	if err != nil {
		return nil, err
	}
	roleTokenCIDRs, err := cidr.Parse(r.Params.BoundCIDRs)
	if err != nil {
		return nil, fmt.Errorf("approle: stored token_bound_cidrs: %w", err)
	}
	if !tokenCIDRs.SubsetOf(roleTokenCIDRs) {
		return nil, logical.BadRequest("token_bound_cidrs must lie within the role's token_bound_cidrs %v", roleTokenCIDRs.Strings())
	}
	uses := r.SecretIDNumUses
	if v, ok := req.Data["num_uses"]; ok {
		n, err := logical.ParseInt("num_uses", v)
		if err != nil {
			return nil, err
		}
		if n < 0 || n > maxSecretIDNumUses {
			return nil, logical.BadRequest("num_uses cannot be negative")
		}
		if r.SecretIDNumUses > 0 && (n == 0 || int(n) > r.SecretIDNumUses) {
			return nil, logical.BadRequest("num_uses cannot be higher than the role's secret_id_num_uses (%d)", r.SecretIDNumUses)
		}
		uses = int(n)
	}
	ttl := r.SecretIDTTL
	if v, ok := req.Data["ttl"]; ok {
		d, err := logical.ParseDuration("ttl", v)
		if err != nil {
			return nil, err
		}
		if r.SecretIDTTL > 0 && (d == 0 || d > r.SecretIDTTL) {
			return nil, logical.BadRequest("ttl cannot be longer than the role's secret_id_ttl (%ds)", logical.FormatSeconds(r.SecretIDTTL))
		}
		ttl = d
	}
	var sid string
	if custom {
		if sid, err = logical.ParseString("secret_id", req.Data["secret_id"]); err != nil {
			return nil, err
		}
		sid = strings.TrimSpace(sid)
		if sid == "" {
			return nil, logical.BadRequest("missing secret_id")
		}
		if len(sid) > maxSecretIDLen {
			return nil, logical.BadRequest("secret_id is longer than %d bytes", maxSecretIDLen)
		}
	} else if sid, err = newUUID(); err != nil {
		return nil, err
	}
	acc, err := newUUID()
	if err != nil {
		return nil, err
	}
	digest, err := b.digest(ctx, "secret_id", sid)
	if err != nil {
		return nil, err
	}
	now := b.now().UTC()
	s := &secretID{
		Digest: digest, Accessor: acc, CreationTime: now, LastUpdatedTime: now,
		Metadata: meta, NumUses: uses, TTL: ttl, CIDRList: cidrs.Strings(),
	}
	if len(tokenCIDRs) > 0 {
		s.TokenBoundCIDRs = tokenCIDRs.Strings()
	}
	if ttl > 0 {
		s.ExpirationTime = now.Add(ttl)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("approle: encode secret id: %w", err)
	}
	mu := b.lockFor(digest)
	mu.Lock()
	defer mu.Unlock()
	if custom {
		existing, err := b.loadSecretID(ctx, r.UUID, digest)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			return nil, logical.BadRequest("secret_id is already registered")
		}
	}
	err = b.store.Batch(ctx, []storage.Op{
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: secretIDKey(r.UUID, digest), Value: raw}},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: accessorKey(r.UUID, acc), Value: []byte(digest)}},
	})
	if err != nil {
		return nil, fmt.Errorf("approle: store secret id: %w", err)
	}
	return &logical.Response{Data: map[string]any{
		"secret_id":          sid,
		"secret_id_accessor": acc,
		"secret_id_ttl":      logical.FormatSeconds(ttl),
		"secret_id_num_uses": uses,
	}}, nil
}

func (b *Backend) listSecretIDs(ctx context.Context, name string) (*logical.Response, error) {
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("role %q does not exist", name)
	}
	accs, err := b.store.List(ctx, accessorPrefix+r.UUID+"/")
	if err != nil {
		return nil, fmt.Errorf("approle: list secret id accessors: %w", err)
	}
	if len(accs) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": accs}}, nil
}

// handleSecretIDOp serves secret-id/lookup, secret-id/destroy,
// secret-id-accessor/lookup and secret-id-accessor/destroy.
func (b *Backend) handleSecretIDOp(ctx context.Context, req *logical.Request, name, op string) (*logical.Response, error) {
	byAccessor := strings.HasPrefix(op, "secret-id-accessor/")
	field := "secret_id"
	if byAccessor {
		field = "secret_id_accessor"
	}
	if err := logical.CheckFields(req.Data, field); err != nil {
		return nil, err
	}
	v, err := logical.ParseString(field, req.Data[field])
	if err != nil {
		return nil, err
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, logical.BadRequest("missing %s", field)
	}
	r, err := b.loadRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("role %q does not exist", name)
	}
	var digest string
	if byAccessor {
		if len(v) > 64 || strings.Contains(v, "/") {
			return nil, &logical.CodedError{Status: 404, Msg: "failed to find accessor entry for secret_id_accessor"}
		}
		e, err := b.store.Get(ctx, accessorKey(r.UUID, v))
		if errors.Is(err, storage.ErrNotFound) {
			return nil, &logical.CodedError{Status: 404, Msg: "failed to find accessor entry for secret_id_accessor"}
		}
		if err != nil {
			return nil, fmt.Errorf("approle: read accessor: %w", err)
		}
		digest = string(e.Value)
	} else if digest, err = b.digest(ctx, "secret_id", v); err != nil {
		return nil, err
	}
	mu := b.lockFor(digest)
	mu.Lock()
	defer mu.Unlock()
	s, err := b.loadSecretID(ctx, r.UUID, digest)
	if err != nil {
		return nil, err
	}
	if s != nil && s.expired(b.now()) {
		if err := b.store.Batch(ctx, deleteSecretIDOps(r.UUID, s)); err != nil {
			return nil, fmt.Errorf("approle: delete expired secret id: %w", err)
		}
		s = nil
	}
	if strings.HasSuffix(op, "/lookup") {
		if s == nil {
			if byAccessor {
				return nil, &logical.CodedError{Status: 404, Msg: "failed to find accessor entry for secret_id_accessor"}
			}
			return nil, nil // as Vault: no content for an unknown secret ID
		}
		return &logical.Response{Data: s.data()}, nil
	}
	if s != nil {
		if err := b.store.Batch(ctx, deleteSecretIDOps(r.UUID, s)); err != nil {
			return nil, fmt.Errorf("approle: destroy secret id: %w", err)
		}
	} else if byAccessor {
		// A dangling accessor (its secret ID is gone): remove it too.
		if err := b.store.Delete(ctx, accessorKey(r.UUID, v)); err != nil {
			return nil, fmt.Errorf("approle: delete accessor: %w", err)
		}
	}
	return &logical.Response{Status: 204}, nil
}

// consumeSecretID checks a presented secret ID for role r and spends one
// use: it must exist, not be expired, and allow the caller's address. The
// check and the update happen under the secret ID's lock.
func (b *Backend) consumeSecretID(ctx context.Context, r *role, sid, remoteAddr string) (*secretID, error) {
	digest, err := b.digest(ctx, "secret_id", sid)
	if err != nil {
		return nil, err
	}
	mu := b.lockFor(digest)
	mu.Lock()
	defer mu.Unlock()
	s, err := b.loadSecretID(ctx, r.UUID, digest)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errInvalidCredentials
	}
	now := b.now().UTC()
	if s.expired(now) {
		if err := b.store.Batch(ctx, deleteSecretIDOps(r.UUID, s)); err != nil {
			return nil, fmt.Errorf("approle: delete expired secret id: %w", err)
		}
		return nil, errInvalidCredentials
	}
	if len(s.CIDRList) > 0 {
		l, err := cidr.Parse(s.CIDRList)
		if err != nil || !l.AllowsRemote(remoteAddr) {
			return nil, logical.BadRequest("source address unauthorized through CIDR restrictions on the secret ID")
		}
	}
	switch {
	case s.NumUses == 0:
		// Unlimited: nothing to write.
	case s.NumUses == 1:
		if err := b.store.Batch(ctx, deleteSecretIDOps(r.UUID, s)); err != nil {
			return nil, fmt.Errorf("approle: delete used-up secret id: %w", err)
		}
	default:
		s.NumUses--
		s.LastUpdatedTime = now
		raw, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("approle: encode secret id: %w", err)
		}
		if err := b.store.Put(ctx, &storage.Entry{Key: secretIDKey(r.UUID, digest), Value: raw}); err != nil {
			return nil, fmt.Errorf("approle: update secret id: %w", err)
		}
	}
	return s, nil
}
