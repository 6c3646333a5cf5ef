package userpass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

// login checks name's password. Known and unknown users go through the
// same steps: one user read, one lockout read, one argon2id verification
// with the same parameters, one lockout write on failure.
func (b *Backend) login(ctx context.Context, req *logical.Request, rawName string) (*logical.Response, error) {
	if err := logical.CheckFields(req.Data, "password", "username"); err != nil {
		return nil, err
	}
	pw, err := logical.ParseString("password", req.Data["password"])
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, logical.BadRequest("missing password")
	}
	if v, ok := req.Data["username"]; ok {
		s, err := logical.ParseString("username", v)
		if err != nil {
			return nil, err
		}
		if s != "" && !strings.EqualFold(s, rawName) {
			return nil, logical.BadRequest("username in the body does not match the path")
		}
	}
	if len(pw) > maxPasswordLen {
		// No stored password is this long: nothing about the user to hide.
		return nil, errInvalidCredentials
	}
	conf := b.config()
	var u *user
	name, nameErr := checkName(rawName)
	if nameErr == nil {
		if u, err = b.loadUser(ctx, name); err != nil {
			return nil, err
		}
	}
	encoded, key := conf.dummy, padKey
	if u != nil {
		encoded, key = u.PasswordHash, lockoutPrefix+name
	}
	att, err := b.beginAttempt(ctx, conf, key)
	if err != nil {
		return nil, err
	}
	ok, verr := b.verify(ctx, encoded, pw)
	ok = verr == nil && ok && u != nil
	success := ok && !att.locked
	if err := b.endAttempt(ctx, conf, att, success, ok); err != nil {
		return nil, err
	}
	if verr != nil {
		if errors.Is(verr, ctx.Err()) {
			return nil, verr
		}
		b.log.Error("userpass: stored password hash is unusable", "user", name, "err", verr)
		return nil, logical.ErrInternal
	}
	if att.locked && ok {
		b.log.Info("userpass: login with the right password refused: user locked out or too many logins in flight", "user", name)
	}
	if !success {
		return nil, errInvalidCredentials
	}
	if h, err := DecodeHash(encoded); err == nil && h.Params != conf.hash {
		b.rehash(ctx, conf, name, encoded, pw)
	}
	a := &logical.Auth{
		Metadata:    map[string]string{"username": name},
		DisplayName: name,
		Alias:       name,
	}
	u.Params.Auth(a)
	return &logical.Response{Auth: a}, nil
}

// verify checks pw against an encoded hash, holding a slot of hashSem.
func (b *Backend) verify(ctx context.Context, encoded, pw string) (bool, error) {
	select {
	case b.hashSem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-b.hashSem }()
	h, err := DecodeHash(encoded)
	if err != nil {
		return false, err
	}
	return h.Verify(pw), nil
}

// rehash replaces a user's hash made with other parameters by one made
// with the mount's current ones, unless the hash changed meanwhile.
// Failures are logged: the login itself has succeeded.
func (b *Backend) rehash(ctx context.Context, conf *config, name, old, pw string) {
	encoded, err := NewHash(pw, conf.hash)
	if err != nil {
		b.log.Error("userpass: rehash password", "user", name, "err", err)
		return
	}
	b.userMu.Lock()
	defer b.userMu.Unlock()
	u, err := b.loadUser(ctx, name)
	if err != nil || u == nil || u.PasswordHash != old {
		return
	}
	u.PasswordHash = encoded
	e, err := encodeUser(name, u)
	if err == nil {
		err = b.store.Put(ctx, e)
	}
	if err != nil {
		b.log.Error("userpass: store rehashed password", "user", name, "err", err)
	}
}

// lockRecord is a user's persisted lockout state.
type lockRecord struct {
	Failed      int       `json:"failed_attempts"`
	LastFailure time.Time `json:"last_failure"`
	LockedUntil time.Time `json:"locked_until"`
}

// normalize forgets failures that no longer count: an expired lock, or
// failures older than the counter reset.
func (r *lockRecord) normalize(now time.Time, c *config) {
	switch {
	case !r.LockedUntil.IsZero():
		if !now.Before(r.LockedUntil) {
			*r = lockRecord{}
		}
	case !r.LastFailure.IsZero() && now.Sub(r.LastFailure) >= c.counterReset:
		*r = lockRecord{}
	}
}

// attempt is a login between beginAttempt and endAttempt.
type attempt struct {
	key     string
	locked  bool // refused whatever the password
	counted bool // holds an in-flight slot
}

func (b *Backend) loadLock(ctx context.Context, key string) (*lockRecord, error) {
	var r lockRecord
	e, err := b.store.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return &r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("userpass: read lockout state: %w", err)
	}
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return nil, fmt.Errorf("userpass: decode lockout state: %w", err)
	}
	return &r, nil
}

// beginAttempt reads the lockout state of key and decides whether the
// attempt is refused outright. An attempt that is not refused takes an
// in-flight slot: failures plus logins in flight never exceed the
// threshold, so parallel guesses cannot overshoot it.
func (b *Backend) beginAttempt(ctx context.Context, c *config, key string) (*attempt, error) {
	att := &attempt{key: key}
	if c.disabled {
		return att, nil
	}
	b.lockMu.Lock()
	defer b.lockMu.Unlock()
	r, err := b.loadLock(ctx, key)
	if err != nil {
		return nil, err
	}
	now := b.now()
	r.normalize(now, c)
	switch {
	case now.Before(r.LockedUntil), r.Failed+b.inflight[key] >= c.threshold:
		att.locked = true
	default:
		b.inflight[key]++
		att.counted = true
	}
	return att, nil
}

// endAttempt records the outcome. A failure always writes one entry (the
// user's record, or the padding key for unknown users). A success clears
// the user's record. A refused attempt with the right password (locked, or
// over the in-flight budget) is not counted as a failure, but its record
// is written back unchanged so that it costs what a failure does.
func (b *Backend) endAttempt(ctx context.Context, c *config, att *attempt, success, passwordOK bool) error {
	if c.disabled {
		return nil
	}
	b.lockMu.Lock()
	defer b.lockMu.Unlock()
	if att.counted {
		if b.inflight[att.key]--; b.inflight[att.key] <= 0 {
			delete(b.inflight, att.key)
		}
	}
	r, err := b.loadLock(ctx, att.key)
	if err != nil {
		return err
	}
	stored := *r != (lockRecord{})
	now := b.now()
	r.normalize(now, c)
	switch {
	case success:
		if !stored {
			return nil
		}
		if err := b.store.Delete(ctx, att.key); err != nil {
			return fmt.Errorf("userpass: clear lockout state: %w", err)
		}
		return nil
	case att.key == padKey:
		// Keep the padding record the size of a real one without letting
		// it count anything.
		*r = lockRecord{Failed: 1, LastFailure: now, LockedUntil: now}
	case passwordOK:
	default:
		r.Failed++
		r.LastFailure = now
		if r.LockedUntil.IsZero() && r.Failed >= c.threshold {
			r.LockedUntil = now.Add(c.duration)
			b.log.Warn("userpass: user locked out after repeated failed logins",
				"user", strings.TrimPrefix(att.key, lockoutPrefix), "failed_attempts", r.Failed,
				"locked_until", r.LockedUntil.UTC().Format(time.RFC3339))
		}
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("userpass: encode lockout state: %w", err)
	}
	if err := b.store.Put(ctx, &storage.Entry{Key: att.key, Value: raw}); err != nil {
		return fmt.Errorf("userpass: write lockout state: %w", err)
	}
	return nil
}
