// Package token is the token store: it issues, looks up, renews and revokes
// the bearer tokens every authenticated request carries.
//
// Token format (docs/token-format.md): "cfr." followed by 32 base62
// characters from crypto/rand (about 190 bits). Tokens are never stored:
// the store keeps HMAC-SHA256(salt, token) as the entry key, with a salt
// generated at initialization and kept behind the barrier, so a copy of the
// storage (even decrypted) does not yield usable tokens. Lookups hash the
// presented token and fetch by hash, so no comparison of token bytes happens
// at all; accessors are stored the same way.
//
// This package reads and writes only through the storage.Backend it is
// given (the barrier in production); it must not import core or server.
package token

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
)

// Prefix starts every service token Coffer issues.
const Prefix = "cfr."

const (
	randomChars = 32
	alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

	saltPath     = "token/salt"
	idPrefix     = "token/id/"
	accessorPref = "token/accessor/"
	parentPrefix = "token/parent/"
)

// Errors.
var (
	// ErrNotFound covers unknown, expired and revoked tokens alike.
	ErrNotFound = errors.New("token not found")
	// ErrBadFormat is returned for a string that cannot be a token.
	ErrBadFormat = errors.New("malformed token")
)

// Entry is a stored token. ID is never persisted: only its hash is.
type Entry struct {
	ID             string            `json:"-"`
	Hash           string            `json:"hash"`
	Accessor       string            `json:"accessor"`
	Parent         string            `json:"parent,omitempty"` // parent's hash
	Policies       []string          `json:"policies"`
	Meta           map[string]string `json:"meta,omitempty"`
	DisplayName    string            `json:"display_name"`
	Path           string            `json:"path"`
	CreationTime   time.Time         `json:"creation_time"`
	TTL            time.Duration     `json:"ttl"`
	ExplicitMaxTTL time.Duration     `json:"explicit_max_ttl,omitempty"`
	Period         time.Duration     `json:"period,omitempty"`
	ExpireTime     time.Time         `json:"expire_time,omitempty"` // zero: never
	NumUses        int               `json:"num_uses,omitempty"`
	Renewable      bool              `json:"renewable"`
	Orphan         bool              `json:"orphan"`
	Type           string            `json:"type"`
	// Revoked is set, in the same write as a pending-revocation marker,
	// before the subtree is deleted: from then on the token is refused, and
	// a revocation cut short by a crash is finished at the next unseal.
	Revoked bool `json:"revoked,omitempty"`
	// BoundCIDRs limits the client addresses the token may be used from
	// (canonical CIDR blocks; empty: anywhere).
	BoundCIDRs []string `json:"bound_cidrs,omitempty"`
}

// IsRoot reports whether the token carries the root policy.
func (e *Entry) IsRoot() bool {
	for _, p := range e.Policies {
		if p == "root" {
			return true
		}
	}
	return false
}

// Store is the token store. It is safe for concurrent use.
type Store struct {
	s      storage.Backend
	now    func() time.Time
	mu     sync.Mutex
	salt   []byte
	leases LeaseRevoker
	// renewCheck, when set, is asked before a token is renewed (see
	// SetRenewCheck).
	renewCheck func(ctx context.Context, e *Entry) error
	useMu      sync.Mutex
	cache      *entryCache
}

// NewStore returns a store over s (the barrier).
func NewStore(s storage.Backend) *Store {
	c := &entryCache{}
	return &Store{s: &invalidatingStorage{Backend: s, cache: c}, now: time.Now, cache: c}
}

// Init loads or creates the hashing salt. It is called after every unseal.
func (st *Store) Init(ctx context.Context) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	e, err := st.s.Get(ctx, saltPath)
	switch {
	case err == nil:
		if len(e.Value) != 32 {
			return fmt.Errorf("token salt has length %d, want 32", len(e.Value))
		}
		st.salt = e.Value
		return nil
	case errors.Is(err, storage.ErrNotFound):
		salt := make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("generate token salt: %w", err)
		}
		if err := st.s.Put(ctx, &storage.Entry{Key: saltPath, Value: salt}); err != nil {
			return fmt.Errorf("store token salt: %w", err)
		}
		st.salt = salt
		return nil
	default:
		return fmt.Errorf("load token salt: %w", err)
	}
}

// Reset forgets the salt (on seal).
func (st *Store) Reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range st.salt {
		st.salt[i] = 0
	}
	st.salt = nil
	st.cache.invalidate("")
}

func (st *Store) hash(kind, v string) (string, error) {
	st.mu.Lock()
	salt := st.salt
	st.mu.Unlock()
	if salt == nil {
		return "", errors.New("token store is not initialized")
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// Generate returns a new random token string with the given prefix.
func Generate(prefix string) (string, error) {
	var b strings.Builder
	b.WriteString(prefix)
	max := big.NewInt(int64(len(alphabet)))
	for i := 0; i < randomChars; i++ {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate token: %w", err)
		}
		b.WriteByte(alphabet[n.Int64()])
	}
	return b.String(), nil
}

// ValidFormat reports whether s looks like a token at all: printable ASCII,
// bounded length. It does not say whether the token exists.
func ValidFormat(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Create stores e, generating its ID and accessor unless e.ID is already
// set (dev mode's chosen root token). It returns e with ID and Accessor set.
func (st *Store) Create(ctx context.Context, e *Entry) (*Entry, error) {
	if e.ID == "" {
		id, err := Generate(Prefix)
		if err != nil {
			return nil, err
		}
		e.ID = id
	} else if !ValidFormat(e.ID) {
		return nil, ErrBadFormat
	}
	acc, err := Generate("")
	if err != nil {
		return nil, err
	}
	e.Accessor = acc
	if e.CreationTime.IsZero() {
		e.CreationTime = st.now().UTC()
	}
	if e.TTL > 0 && e.ExpireTime.IsZero() {
		e.ExpireTime = e.CreationTime.Add(e.TTL)
	}
	if e.Type == "" {
		e.Type = "service"
	}
	h, err := st.hash("id", e.ID)
	if err != nil {
		return nil, err
	}
	e.Hash = h
	ah, err := st.hash("accessor", acc)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode token: %w", err)
	}
	ops := []storage.Op{
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: idPrefix + h, Value: raw}},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: accessorPref + ah, Value: []byte(h)}},
	}
	if e.Parent != "" {
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: parentPrefix + e.Parent + "/" + h, Value: []byte{}}})
	}
	if err := st.s.Batch(ctx, ops); err != nil {
		return nil, fmt.Errorf("store token: %w", err)
	}
	return e, nil
}

// Lookup returns the live entry for token id. Unknown, malformed and expired
// tokens all return ErrNotFound.
func (st *Store) Lookup(ctx context.Context, id string) (*Entry, error) {
	return st.lookup(ctx, id, false)
}

// lookupCaller is Lookup for the token making the current request: a token
// whose last use is this very request is still its caller.
func (st *Store) lookupCaller(ctx context.Context, id string) (*Entry, error) {
	return st.lookup(ctx, id, true)
}

func (st *Store) lookup(ctx context.Context, id string, allowSpent bool) (*Entry, error) {
	if !ValidFormat(id) {
		return nil, ErrNotFound
	}
	h, err := st.hash("id", id)
	if err != nil {
		return nil, err
	}
	e, err := st.byHashSpent(ctx, h, allowSpent)
	if err != nil {
		return nil, err
	}
	e.ID = id
	return e, nil
}

func (st *Store) byHash(ctx context.Context, h string) (*Entry, error) {
	return st.byHashSpent(ctx, h, false)
}

func (st *Store) byHashSpent(ctx context.Context, h string, allowSpent bool) (*Entry, error) {
	e, gen := st.cache.get(h)
	if e == nil {
		raw, err := st.s.Get(ctx, idPrefix+h)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("load token: %w", err)
		}
		e = new(Entry)
		if err := json.Unmarshal(raw.Value, e); err != nil {
			return nil, fmt.Errorf("decode token entry: %w", err)
		}
		st.cache.put(h, e, gen)
	}
	if e.Revoked || (e.NumUses < 0 && !allowSpent) || (!e.ExpireTime.IsZero() && !st.now().Before(e.ExpireTime)) {
		return nil, ErrNotFound
	}
	return e, nil
}
