package userpass

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

func TestUserCRUD(t *testing.T) {
	h := newHarness(t, fastOptions)

	_, err := h.do(logical.UpdateOperation, "users/alice", map[string]any{"token_policies": "dev"})
	wantStatus(t, err, 400, "missing password")
	_, err = h.do(logical.UpdateOperation, "users/alice", map[string]any{"password": "pw", "shell": "bash"})
	wantStatus(t, err, 400, `unknown field "shell"`)
	_, err = h.do(logical.UpdateOperation, "users/alice", map[string]any{"password": ""})
	wantStatus(t, err, 400, "password cannot be empty")
	_, err = h.do(logical.UpdateOperation, "users/al%ice", map[string]any{"password": "x"})
	wantStatus(t, err, 400, "")
	_, err = h.do(logical.UpdateOperation, "users/.alice", map[string]any{"password": "x"})
	wantStatus(t, err, 400, "")
	_, err = h.do(logical.ReadOperation, "users/alice", nil)
	wantStatus(t, err, 404, "")
	_, err = h.do(logical.ListOperation, "users/", nil)
	wantStatus(t, err, 404, "")

	h.mustDo(logical.UpdateOperation, "users/Alice", map[string]any{
		"password": "correct horse", "token_policies": []any{"Dev", "ops"}, "token_ttl": "1h", "token_max_ttl": "2h", "token_num_uses": 0,
	})
	resp := h.mustDo(logical.ReadOperation, "users/ALICE", nil)
	want := map[string]any{
		"token_policies": []string{"dev", "ops"}, "token_ttl": int64(3600), "token_max_ttl": int64(7200),
		"token_explicit_max_ttl": int64(0), "token_period": int64(0), "token_num_uses": 0, "token_type": "default",
		"token_no_default_policy": false, "token_bound_cidrs": []string{},
	}
	if diff := cmp.Diff(want, resp.Data); diff != "" {
		t.Errorf("read users/alice (-want +got):\n%s", diff)
	}
	raw, _ := json.Marshal(resp.Data)
	if strings.Contains(string(raw), "argon2") || strings.Contains(string(raw), "correct horse") || strings.Contains(string(raw), "password") {
		t.Fatalf("read users/alice leaks the password or its hash: %s", raw)
	}

	// An update without a password keeps the old one.
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"token_ttl": "30m"})
	if _, err := h.login("alice", "correct horse"); err != nil {
		t.Fatalf("login after update: %v", err)
	}
	resp = h.mustDo(logical.ReadOperation, "users/alice", nil)
	if resp.Data["token_ttl"] != int64(1800) || resp.Data["token_max_ttl"] != int64(7200) {
		t.Fatalf("after update: %v", resp.Data)
	}

	// Legacy policies path and field.
	h.mustDo(logical.UpdateOperation, "users/alice/policies", map[string]any{"policies": "a,b"})
	resp = h.mustDo(logical.ReadOperation, "users/alice", nil)
	if diff := cmp.Diff([]string{"a", "b"}, resp.Data["policies"]); diff != "" {
		t.Errorf("legacy policies (-want +got):\n%s", diff)
	}
	_, err = h.do(logical.UpdateOperation, "users/alice/policies", map[string]any{})
	wantStatus(t, err, 400, "missing token_policies")
	_, err = h.do(logical.UpdateOperation, "users/bob/policies", map[string]any{"token_policies": "x"})
	wantStatus(t, err, 400, "username does not exist")
	_, err = h.do(logical.UpdateOperation, "users/alice", map[string]any{"token_policies": "root"})
	wantStatus(t, err, 400, "")

	// Password change.
	h.mustDo(logical.UpdateOperation, "users/alice/password", map[string]any{"password": "battery staple"})
	_, err = h.login("alice", "correct horse")
	wantStatus(t, err, 400, "invalid username or password")
	if _, err := h.login("alice", "battery staple"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	_, err = h.do(logical.UpdateOperation, "users/bob/password", map[string]any{"password": "x"})
	wantStatus(t, err, 400, "username does not exist")
	_, err = h.do(logical.ReadOperation, "users/alice/password", nil)
	wantStatus(t, err, 405, "")

	h.mustDo(logical.UpdateOperation, "users/bob", map[string]any{"password": "b"})
	resp = h.mustDo(logical.ListOperation, "users/", nil)
	if diff := cmp.Diff([]string{"alice", "bob"}, resp.Data["keys"]); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	h.mustDo(logical.DeleteOperation, "users/alice", nil)
	_, err = h.do(logical.ReadOperation, "users/alice", nil)
	wantStatus(t, err, 404, "")
	_, err = h.login("alice", "battery staple")
	wantStatus(t, err, 400, "invalid username or password")
}

func TestStoredUserHasOnlyTheHash(t *testing.T) {
	h := newHarness(t, fastOptions)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "canary-pw-7731"})
	e, err := h.store.Get(context.Background(), userPrefix+"alice")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value), "canary-pw-7731") {
		t.Fatalf("stored user contains the password: %s", e.Value)
	}
	var u user
	if err := json.Unmarshal(e.Value, &u); err != nil {
		t.Fatal(err)
	}
	hash, err := DecodeHash(u.PasswordHash)
	if err != nil {
		t.Fatalf("DecodeHash(stored) = %v", err)
	}
	if want := (HashParams{Memory: 19456, Time: 2, Threads: 1}); hash.Params != want || len(hash.Salt) != saltLen || len(hash.Key) != keyLen {
		t.Fatalf("stored hash = %+v, want params %+v, %d-byte salt, %d-byte key", hash.Params, want, saltLen, keyLen)
	}
	// Two users with the same password get different salts and keys.
	h.mustDo(logical.UpdateOperation, "users/bob", map[string]any{"password": "canary-pw-7731"})
	ub, _ := h.b.loadUser(context.Background(), "bob")
	if ub.PasswordHash == u.PasswordHash {
		t.Fatalf("two users with one password share a hash")
	}
}

func TestLogin(t *testing.T) {
	h := newHarness(t, fastOptions)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{
		"password": "pw", "token_policies": "dev", "token_ttl": "1h", "token_max_ttl": "2h", "token_num_uses": 3,
	})
	resp, err := h.login("ALICE", "pw")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	want := &logical.Auth{
		Policies: []string{"dev"}, TokenPolicies: []string{"dev"}, Metadata: map[string]string{"username": "alice"},
		DisplayName: "alice", Alias: "alice", TTL: time.Hour, MaxTTL: 2 * time.Hour, NumUses: 3, Renewable: true,
	}
	if diff := cmp.Diff(want, resp.Auth); diff != "" {
		t.Errorf("login auth (-want +got):\n%s", diff)
	}
	if resp.Auth.ClientToken != "" {
		t.Fatalf("the backend issued a token itself")
	}

	// Every failure is the same error value, so the same body.
	_, errWrong := h.login("alice", "nope")
	_, errUnknown := h.login("mallory", "pw")
	_, errBadName := h.login("bad%name", "pw")
	for _, err := range []error{errWrong, errUnknown, errBadName} {
		wantStatus(t, err, 400, "invalid username or password")
	}
	_, err = h.login("alice", strings.Repeat("x", maxPasswordLen+1))
	wantStatus(t, err, 400, "invalid username or password")

	_, err = h.do(logical.UpdateOperation, "login/alice", map[string]any{})
	wantStatus(t, err, 400, "missing password")
	_, err = h.do(logical.UpdateOperation, "login/alice", map[string]any{"password": "pw", "otp": "1"})
	wantStatus(t, err, 400, `unknown field "otp"`)
	_, err = h.do(logical.UpdateOperation, "login/alice", map[string]any{"password": "pw", "username": "bob"})
	wantStatus(t, err, 400, "username in the body does not match the path")
	if _, err := h.do(logical.UpdateOperation, "login/alice", map[string]any{"password": "pw", "username": "Alice"}); err != nil {
		t.Fatalf("login with a matching username in the body: %v", err)
	}
	_, err = h.do(logical.ReadOperation, "login/alice", nil)
	wantStatus(t, err, 405, "")

	if got := h.b.UnauthenticatedPaths(); len(got) != 1 || got[0] != "login/*" {
		t.Fatalf("UnauthenticatedPaths() = %v", got)
	}
}

func TestLockout(t *testing.T) {
	h := newHarness(t, fastOptions)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "right"})
	for i := 0; i < defaultThreshold; i++ {
		_, err := h.login("alice", "wrong")
		wantStatus(t, err, 400, "invalid username or password")
		h.clock.advance(time.Second)
	}
	// Locked: the right password is refused with the same answer.
	_, err := h.login("alice", "right")
	wantStatus(t, err, 400, "invalid username or password")

	// The lock survives a restart (a new backend over the same storage).
	h2 := newHarnessOn(t, h.store, fastOptions, h.clock)
	_, err = h2.login("alice", "right")
	wantStatus(t, err, 400, "invalid username or password")

	// Attempts while locked do not extend the lock: 15 minutes after it
	// started, the user is back.
	h2.clock.advance(defaultDuration - 2*time.Second)
	_, err = h2.login("alice", "right")
	wantStatus(t, err, 400, "invalid username or password")
	h2.clock.advance(2 * time.Second)
	if _, err := h2.login("alice", "right"); err != nil {
		t.Fatalf("login after the lock expired: %v", err)
	}
	// A success clears the record.
	if _, err := h2.store.Get(context.Background(), lockoutPrefix+"alice"); err == nil {
		t.Fatalf("lockout record still present after a successful login")
	}

	// Failures further apart than lockout_counter_reset do not add up.
	for round := 0; round < 3; round++ {
		for i := 0; i < defaultThreshold-1; i++ {
			_, _ = h2.login("alice", "wrong")
		}
		h2.clock.advance(defaultCounterReset)
	}
	if _, err := h2.login("alice", "right"); err != nil {
		t.Fatalf("login after spaced-out failures: %v", err)
	}

	// A new password unlocks.
	for i := 0; i < defaultThreshold; i++ {
		_, _ = h2.login("alice", "wrong")
	}
	_, err = h2.login("alice", "right")
	wantStatus(t, err, 400, "invalid username or password")
	h2.mustDo(logical.UpdateOperation, "users/alice/password", map[string]any{"password": "fresh"})
	if _, err := h2.login("alice", "fresh"); err != nil {
		t.Fatalf("login after a password reset: %v", err)
	}
}

func TestLockoutOptions(t *testing.T) {
	opts := map[string]string{optThreshold: "2", optDuration: "1m", optCounterReset: "30s"}
	for k, v := range fastOptions {
		opts[k] = v
	}
	h := newHarness(t, opts)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "right"})
	_, _ = h.login("alice", "wrong")
	_, _ = h.login("alice", "wrong")
	_, err := h.login("alice", "right")
	wantStatus(t, err, 400, "invalid username or password")
	h.clock.advance(time.Minute)
	if _, err := h.login("alice", "right"); err != nil {
		t.Fatalf("login after a 1m lock: %v", err)
	}

	// disable_lockout, applied by tune.
	opts[optDisable] = "true"
	if err := h.b.UpdateOptions(opts); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		_, _ = h.login("alice", "wrong")
	}
	if _, err := h.login("alice", "right"); err != nil {
		t.Fatalf("login with lockout disabled: %v", err)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, opts := range []map[string]string{
		{"colour": "blue"},
		{optThreshold: "0"},
		{optThreshold: "x"},
		{optDuration: "0s"},
		{optCounterReset: "soon"},
		{optDisable: "maybe"},
		{optMemory: "1024"},
		{optIterations: "1"},
		{optParallelism: "0"},
		{optParallelism: "300"},
		{optMemory: "-5"},
	} {
		_, err := parseOptions(opts)
		wantStatus(t, err, 400, "")
		_, err = Factory(context.Background(), &logical.BackendConfig{Storage: inmem.New(), Options: opts})
		wantStatus(t, err, 400, "")
	}
}

// TestUnknownUserLeavesNoTrace: failures for names that do not exist write
// only the fixed padding key, never the name.
func TestUnknownUserLeavesNoTrace(t *testing.T) {
	h := newHarness(t, fastOptions)
	for i := 0; i < 7; i++ {
		_, err := h.login("ghost-user-123", "pw")
		wantStatus(t, err, 400, "invalid username or password")
	}
	ctx := context.Background()
	for _, prefix := range []string{"", lockoutPrefix, userPrefix} {
		names, err := h.store.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.Contains(n, "ghost") {
				t.Fatalf("storage lists %q under %q", n, prefix)
			}
		}
	}
	if _, err := h.store.Get(ctx, padKey); err != nil {
		t.Fatalf("padding key not written: %v", err)
	}
}

// TestInflightAttemptsCountAgainstThreshold: logins that have begun but
// not finished use up the threshold, so parallel guesses cannot exceed
// it.
func TestInflightAttemptsCountAgainstThreshold(t *testing.T) {
	h := newHarness(t, fastOptions)
	ctx := context.Background()
	conf := h.b.config()
	var atts []*attempt
	for i := 0; i < 2*defaultThreshold; i++ {
		a, err := h.b.beginAttempt(ctx, conf, lockoutPrefix+"alice")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := a.locked, i >= defaultThreshold; got != want {
			t.Fatalf("attempt %d: locked = %v, want %v", i, got, want)
		}
		atts = append(atts, a)
	}
	for _, a := range atts {
		if err := h.b.endAttempt(ctx, conf, a, false, false); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.b.inflight) != 0 {
		t.Fatalf("inflight = %v after every attempt ended", h.b.inflight)
	}
	r, err := h.b.loadLock(ctx, lockoutPrefix+"alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.Failed != 2*defaultThreshold || !h.clock.now().Before(r.LockedUntil) {
		t.Fatalf("lock record = %+v, want %d failures and locked", r, 2*defaultThreshold)
	}
}

// TestConcurrentLogins runs parallel right and wrong logins (for -race).
// Right passwords never count as failures, even when refused for being
// over the in-flight budget; the wrong ones lock their user.
func TestConcurrentLogins(t *testing.T) {
	h := newHarness(t, fastOptions)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "right"})
	h.mustDo(logical.UpdateOperation, "users/bob", map[string]any{"password": "right"})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 2*defaultThreshold; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); _, err := h.login("bob", "right"); errs <- err }()
		go func() { defer wg.Done(); _, _ = h.login("alice", "wrong") }()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantStatus(t, err, 400, "invalid username or password")
	}
	if ok == 0 {
		t.Fatalf("no parallel login of bob succeeded")
	}
	if _, err := h.login("bob", "right"); err != nil {
		t.Fatalf("bob's login after the burst: %v (right passwords counted as failures?)", err)
	}
	_, err := h.login("alice", "right")
	wantStatus(t, err, 400, "invalid username or password")
}

// TestRehashOnLogin: after the mount's parameters are raised, a user's old
// hash still verifies and is replaced by one with the new parameters.
func TestRehashOnLogin(t *testing.T) {
	h := newHarness(t, fastOptions)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "pw"})
	raised := map[string]string{optMemory: "20480", optIterations: "3", optParallelism: "1"}
	if err := h.b.UpdateOptions(raised); err != nil {
		t.Fatal(err)
	}
	if _, err := h.login("alice", "pw"); err != nil {
		t.Fatalf("login with an old-parameter hash: %v", err)
	}
	u, _ := h.b.loadUser(context.Background(), "alice")
	hash, err := DecodeHash(u.PasswordHash)
	if err != nil {
		t.Fatal(err)
	}
	if want := (HashParams{Memory: 20480, Time: 3, Threads: 1}); hash.Params != want {
		t.Fatalf("after login the hash has %+v, want %+v", hash.Params, want)
	}
	if _, err := h.login("alice", "pw"); err != nil {
		t.Fatalf("login with the new hash: %v", err)
	}
	if d, err := DecodeHash(h.b.config().dummy); err != nil || d.Params != (HashParams{Memory: 20480, Time: 3, Threads: 1}) {
		t.Fatalf("dummy hash after tune = %+v, %v", d, err)
	}
}

func TestCorruptStoredHashIsInternalError(t *testing.T) {
	h := newHarness(t, fastOptions)
	h.mustDo(logical.UpdateOperation, "users/alice", map[string]any{"password": "pw"})
	u, _ := h.b.loadUser(context.Background(), "alice")
	u.PasswordHash = "$argon2id$v=19$m=99999999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"
	e, _ := encodeUser("alice", u)
	if err := h.store.Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	_, err := h.login("alice", "pw")
	wantStatus(t, err, 500, "")
}
