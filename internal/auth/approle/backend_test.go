package approle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

const remote = "10.1.2.3:50000"

func (h *harness) roleID(name string) string {
	h.t.Helper()
	return h.mustDo(logical.ReadOperation, "role/"+name+"/role-id", nil).Data["role_id"].(string)
}

func (h *harness) newSecretID(name string, data map[string]any) (string, string) {
	h.t.Helper()
	d := h.mustDo(logical.UpdateOperation, "role/"+name+"/secret-id", data).Data
	return d["secret_id"].(string), d["secret_id_accessor"].(string)
}

func TestRoleCRUD(t *testing.T) {
	h := newHarness(t)
	_, err := h.do(logical.ReadOperation, "role/app", nil)
	wantStatus(t, err, 404, "")
	_, err = h.do(logical.ListOperation, "role/", nil)
	wantStatus(t, err, 404, "")
	_, err = h.do(logical.UpdateOperation, "role/app", map[string]any{"colour": "blue"})
	wantStatus(t, err, 400, `unknown field "colour"`)
	_, err = h.do(logical.UpdateOperation, "role/app", map[string]any{"bind_secret_id": false})
	wantStatus(t, err, 400, "at least one constraint should be enabled on the role: bind_secret_id or secret_id_bound_cidrs")
	_, err = h.do(logical.UpdateOperation, "role/app", map[string]any{"secret_id_bound_cidrs": "10.0.0.0/33"})
	wantStatus(t, err, 400, "")
	_, err = h.do(logical.UpdateOperation, "role/app", map[string]any{"token_bound_cidrs": "10.0.0.0/99"})
	wantStatus(t, err, 400, `token_bound_cidrs: invalid CIDR block "10.0.0.0/99": not a CIDR block`)
	_, err = h.do(logical.UpdateOperation, "role/a%b", map[string]any{})
	wantStatus(t, err, 400, "")

	h.mustDo(logical.UpdateOperation, "role/App", map[string]any{
		"token_policies": "dev,ops", "token_ttl": "1h", "token_max_ttl": "4h", "secret_id_ttl": "10m",
		"secret_id_num_uses": 5, "secret_id_bound_cidrs": []any{"10.0.0.0/8", "127.0.0.1"},
		"token_bound_cidrs": []any{}, "token_type": "default",
	})
	resp := h.mustDo(logical.ReadOperation, "role/app", nil)
	want := map[string]any{
		"bind_secret_id": true, "secret_id_bound_cidrs": []string{"10.0.0.0/8", "127.0.0.1/32"}, "secret_id_num_uses": 5,
		"secret_id_ttl": int64(600), "local_secret_ids": false,
		"token_policies": []string{"dev", "ops"}, "token_ttl": int64(3600), "token_max_ttl": int64(14400),
		"token_explicit_max_ttl": int64(0), "token_period": int64(0), "token_num_uses": 0, "token_type": "default",
		"token_no_default_policy": false, "token_bound_cidrs": []string{},
	}
	if diff := cmp.Diff(want, resp.Data); diff != "" {
		t.Errorf("read role/app (-want +got):\n%s", diff)
	}
	id := h.roleID("app")
	if len(id) != 36 {
		t.Fatalf("generated role_id %q is not a UUID", id)
	}
	// An update keeps the role_id and the fields it does not name.
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"token_ttl": "30m"})
	if got := h.roleID("app"); got != id {
		t.Fatalf("role_id changed on update: %q -> %q", id, got)
	}
	resp = h.mustDo(logical.ReadOperation, "role/app", nil)
	if resp.Data["token_ttl"] != int64(1800) || resp.Data["secret_id_num_uses"] != 5 {
		t.Fatalf("after update: %v", resp.Data)
	}
	_, err = h.do(logical.UpdateOperation, "role/app", map[string]any{"local_secret_ids": true})
	wantStatus(t, err, 400, "local_secret_ids can only be modified during role creation")

	// Custom role_id, unique across roles.
	h.mustDo(logical.UpdateOperation, "role/app/role-id", map[string]any{"role_id": "my-app-id"})
	if got := h.roleID("app"); got != "my-app-id" {
		t.Fatalf("role_id = %q after setting it", got)
	}
	h.mustDo(logical.UpdateOperation, "role/other", map[string]any{"role_id": "other-id"})
	_, err = h.do(logical.UpdateOperation, "role/other/role-id", map[string]any{"role_id": "my-app-id"})
	wantStatus(t, err, 400, "role_id already in use")
	_, err = h.do(logical.UpdateOperation, "role/third", map[string]any{"role_id": "my-app-id"})
	wantStatus(t, err, 400, "role_id already in use")
	_, err = h.do(logical.UpdateOperation, "role/nope/role-id", map[string]any{"role_id": "x"})
	wantStatus(t, err, 400, `role "nope" does not exist`)

	resp = h.mustDo(logical.ListOperation, "role/", nil)
	if diff := cmp.Diff([]string{"app", "other"}, resp.Data["keys"]); diff != "" {
		t.Errorf("list roles (-want +got):\n%s", diff)
	}
	h.mustDo(logical.DeleteOperation, "role/other", nil)
	h.mustDo(logical.DeleteOperation, "role/other", nil) // idempotent
	// Its role_id is free again.
	h.mustDo(logical.UpdateOperation, "role/third", map[string]any{"role_id": "other-id"})
}

func TestLoginFlow(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"token_policies": "dev", "token_ttl": "1h", "token_num_uses": 2})
	roleID := h.roleID("app")
	sid, acc := h.newSecretID("app", map[string]any{"metadata": `{"team":"blue"}`})

	resp, err := h.login(roleID, sid, remote)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	want := &logical.Auth{
		Policies: []string{"dev"}, TokenPolicies: []string{"dev"}, Metadata: map[string]string{"role_name": "app", "team": "blue"},
		DisplayName: "app", Alias: "app", TTL: time.Hour, NumUses: 2, Renewable: true,
	}
	if diff := cmp.Diff(want, resp.Auth); diff != "" {
		t.Errorf("login auth (-want +got):\n%s", diff)
	}

	// Unknown role_id, wrong secret_id, another role's secret_id: one
	// answer.
	h.mustDo(logical.UpdateOperation, "role/other", nil)
	otherSID, _ := h.newSecretID("other", nil)
	for _, tc := range []struct{ roleID, sid string }{
		{"no-such-role", sid},
		{roleID, "00000000-0000-0000-0000-000000000000"},
		{roleID, otherSID},
		{roleID, strings.Repeat("x", maxSecretIDLen+1)},
	} {
		_, err := h.login(tc.roleID, tc.sid, remote)
		wantStatus(t, err, 400, "invalid role or secret ID")
	}
	_, err = h.login("", sid, remote)
	wantStatus(t, err, 400, "missing role_id")
	_, err = h.login(roleID, "", remote)
	wantStatus(t, err, 400, "missing secret_id")
	_, err = h.do(logical.UpdateOperation, "login", map[string]any{"role_id": roleID, "secret_id": sid, "x": 1})
	wantStatus(t, err, 400, `unknown field "x"`)

	// Lookup by secret ID and by accessor; the secret ID is never shown.
	look := h.mustDo(logical.UpdateOperation, "role/app/secret-id/lookup", map[string]any{"secret_id": sid})
	if look.Data["secret_id_accessor"] != acc || look.Data["secret_id_num_uses"] != 0 ||
		!cmp.Equal(look.Data["metadata"], map[string]string{"team": "blue"}) {
		t.Fatalf("lookup = %v", look.Data)
	}
	if fmt.Sprint(look.Data) == "" || strings.Contains(fmt.Sprint(look.Data), sid) {
		t.Fatalf("lookup shows the secret ID: %v", look.Data)
	}
	look2 := h.mustDo(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
	if diff := cmp.Diff(look.Data, look2.Data); diff != "" {
		t.Errorf("accessor lookup differs (-secret +accessor):\n%s", diff)
	}
	if r, err := h.do(logical.UpdateOperation, "role/app/secret-id/lookup", map[string]any{"secret_id": "nope"}); err != nil || r != nil {
		t.Fatalf("lookup of an unknown secret ID = %v, %v; want no content", r, err)
	}
	_, err = h.do(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": "nope"})
	wantStatus(t, err, 404, "")
	// Another role cannot look it up.
	if r, err := h.do(logical.UpdateOperation, "role/other/secret-id/lookup", map[string]any{"secret_id": sid}); err != nil || r != nil {
		t.Fatalf("lookup through another role = %v, %v", r, err)
	}

	// LIST gives accessors.
	sid2, acc2 := h.newSecretID("app", nil)
	keys := h.mustDo(logical.ListOperation, "role/app/secret-id/", nil).Data["keys"].([]string)
	if diff := cmp.Diff(sortedPair(acc, acc2), keys); diff != "" {
		t.Errorf("list secret-id (-want +got):\n%s", diff)
	}

	// Destroy by secret ID and by accessor.
	h.mustDo(logical.UpdateOperation, "role/app/secret-id/destroy", map[string]any{"secret_id": sid})
	_, err = h.login(roleID, sid, remote)
	wantStatus(t, err, 400, "invalid role or secret ID")
	h.mustDo(logical.DeleteOperation, "role/app/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": acc2})
	_, err = h.login(roleID, sid2, remote)
	wantStatus(t, err, 400, "invalid role or secret ID")
	_, err = h.do(logical.ListOperation, "role/app/secret-id/", nil)
	wantStatus(t, err, 404, "")
}

func sortedPair(a, b string) []string {
	if a > b {
		a, b = b, a
	}
	return []string{a, b}
}

func TestSecretIDNumUses(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"secret_id_num_uses": 3})
	roleID := h.roleID("app")
	sid, _ := h.newSecretID("app", nil)
	for i := 0; i < 3; i++ {
		if _, err := h.login(roleID, sid, remote); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
		if i == 0 {
			look := h.mustDo(logical.UpdateOperation, "role/app/secret-id/lookup", map[string]any{"secret_id": sid})
			if look.Data["secret_id_num_uses"] != 2 {
				t.Fatalf("uses left after one login = %v, want 2", look.Data["secret_id_num_uses"])
			}
		}
	}
	_, err := h.login(roleID, sid, remote)
	wantStatus(t, err, 400, "invalid role or secret ID")
	// The last use deleted it, accessor included.
	if _, err := h.do(logical.ListOperation, "role/app/secret-id/", nil); err == nil {
		t.Fatalf("the used-up secret ID is still listed")
	}

	// Per-secret-ID num_uses within the role's.
	d := h.mustDo(logical.UpdateOperation, "role/app/secret-id", map[string]any{"num_uses": 1}).Data
	if d["secret_id_num_uses"] != 1 {
		t.Fatalf("secret-id response = %v", d)
	}
	_, err = h.do(logical.UpdateOperation, "role/app/secret-id", map[string]any{"num_uses": 4})
	wantStatus(t, err, 400, "num_uses cannot be higher than the role's secret_id_num_uses (3)")
	_, err = h.do(logical.UpdateOperation, "role/app/secret-id", map[string]any{"num_uses": 0})
	wantStatus(t, err, 400, "")
}

// TestSecretIDConcurrentUse: of concurrent logins with a secret ID that
// has n uses, exactly n succeed.
func TestSecretIDConcurrentUse(t *testing.T) {
	for _, uses := range []int{1, 3} {
		t.Run(fmt.Sprintf("uses=%d", uses), func(t *testing.T) {
			h := newHarness(t)
			h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"secret_id_num_uses": uses})
			roleID := h.roleID("app")
			sid, _ := h.newSecretID("app", nil)
			const logins = 12
			var wg sync.WaitGroup
			start := make(chan struct{})
			results := make(chan error, logins)
			for i := 0; i < logins; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := h.login(roleID, sid, remote)
					results <- err
				}()
			}
			close(start)
			wg.Wait()
			close(results)
			ok := 0
			for err := range results {
				if err == nil {
					ok++
				} else {
					wantStatus(t, err, 400, "invalid role or secret ID")
				}
			}
			if ok != uses {
				t.Fatalf("%d of %d concurrent logins succeeded with a %d-use secret ID", ok, logins, uses)
			}
		})
	}
}

func TestSecretIDTTL(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"secret_id_ttl": "10m"})
	roleID := h.roleID("app")
	sid, _ := h.newSecretID("app", nil)
	short := h.mustDo(logical.UpdateOperation, "role/app/secret-id", map[string]any{"ttl": "1m"}).Data
	if short["secret_id_ttl"] != int64(60) {
		t.Fatalf("secret-id ttl = %v", short["secret_id_ttl"])
	}
	_, err := h.do(logical.UpdateOperation, "role/app/secret-id", map[string]any{"ttl": "1h"})
	wantStatus(t, err, 400, "ttl cannot be longer than the role's secret_id_ttl (600s)")

	h.clock.advance(time.Minute)
	_, err = h.login(roleID, short["secret_id"].(string), remote)
	wantStatus(t, err, 400, "invalid role or secret ID")
	h.clock.advance(9*time.Minute - time.Second)
	if _, err := h.login(roleID, sid, remote); err != nil {
		t.Fatalf("login before expiry: %v", err)
	}
	look := h.mustDo(logical.UpdateOperation, "role/app/secret-id/lookup", map[string]any{"secret_id": sid})
	if look.Data["expiration_time"] != "2030-01-01T00:10:00Z" {
		t.Fatalf("expiration_time = %v", look.Data["expiration_time"])
	}
	h.clock.advance(time.Second)
	_, err = h.login(roleID, sid, remote)
	wantStatus(t, err, 400, "invalid role or secret ID")
}

func TestCIDRBindings(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"secret_id_bound_cidrs": "10.0.0.0/8"})
	roleID := h.roleID("app")
	sid, _ := h.newSecretID("app", nil)
	_, err := h.login(roleID, sid, "192.168.1.1:4000")
	wantStatus(t, err, 400, "source address unauthorized by CIDR restrictions on the role")
	_, err = h.login(roleID, sid, "garbage")
	wantStatus(t, err, 400, "source address unauthorized by CIDR restrictions on the role")
	if _, err := h.login(roleID, sid, "10.200.0.1:4000"); err != nil {
		t.Fatalf("login from inside the role's CIDR: %v", err)
	}

	// A secret ID's cidr_list must lie within the role's, and narrows it.
	_, err = h.do(logical.UpdateOperation, "role/app/secret-id", map[string]any{"cidr_list": "192.168.0.0/16"})
	wantStatus(t, err, 400, "")
	narrow, _ := h.newSecretID("app", map[string]any{"cidr_list": []any{"10.1.0.0/16"}})
	_, err = h.login(roleID, narrow, "10.2.0.1:1")
	wantStatus(t, err, 400, "source address unauthorized through CIDR restrictions on the secret ID")
	if _, err := h.login(roleID, narrow, "10.1.0.1:1"); err != nil {
		t.Fatalf("login from inside the secret ID's CIDR: %v", err)
	}
	look := h.mustDo(logical.UpdateOperation, "role/app/secret-id/lookup", map[string]any{"secret_id": narrow})
	if diff := cmp.Diff([]string{"10.1.0.0/16"}, look.Data["cidr_list"]); diff != "" {
		t.Errorf("cidr_list (-want +got):\n%s", diff)
	}

	// Without bind_secret_id, the CIDR binding alone admits.
	h.mustDo(logical.UpdateOperation, "role/open", map[string]any{"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32"})
	openID := h.roleID("open")
	if _, err := h.login(openID, "", "127.0.0.1:9"); err != nil {
		t.Fatalf("login without secret ID: %v", err)
	}
	_, err = h.login(openID, "", "127.0.0.2:9")
	wantStatus(t, err, 400, "source address unauthorized by CIDR restrictions on the role")
	_, err = h.do(logical.UpdateOperation, "role/open/secret-id", nil)
	wantStatus(t, err, 400, "bind_secret_id is not set on the role")
}

func TestCustomSecretID(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", nil)
	roleID := h.roleID("app")
	d := h.mustDo(logical.UpdateOperation, "role/app/custom-secret-id", map[string]any{"secret_id": "my-own-secret"}).Data
	if d["secret_id"] != "my-own-secret" || d["secret_id_accessor"] == "" {
		t.Fatalf("custom-secret-id = %v", d)
	}
	_, err := h.do(logical.UpdateOperation, "role/app/custom-secret-id", map[string]any{"secret_id": "my-own-secret"})
	wantStatus(t, err, 400, "secret_id is already registered")
	_, err = h.do(logical.UpdateOperation, "role/app/custom-secret-id", map[string]any{})
	wantStatus(t, err, 400, "missing secret_id")
	if _, err := h.login(roleID, "my-own-secret", remote); err != nil {
		t.Fatalf("login with a custom secret ID: %v", err)
	}
}

// TestStorageHoldsNoSecretIDs: neither secret IDs nor role IDs appear in
// storage keys, and secret IDs not in values either.
func TestStorageHoldsNoSecretIDs(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"role_id": "canary-role-id-5521"})
	sid, _ := h.newSecretID("app", nil)
	h.mustDo(logical.UpdateOperation, "role/app/custom-secret-id", map[string]any{"secret_id": "canary-secret-9917"})
	ctx := context.Background()
	var walk func(prefix string)
	walk = func(prefix string) {
		names, err := h.store.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			key := prefix + n
			for _, canary := range []string{sid, "canary-secret-9917", "canary-role-id-5521"} {
				if strings.Contains(key, canary) {
					t.Fatalf("storage key %q contains a credential", key)
				}
			}
			if strings.HasSuffix(n, "/") {
				walk(key)
				continue
			}
			e, err := h.store.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			for _, canary := range []string{sid, "canary-secret-9917"} {
				if strings.Contains(string(e.Value), canary) {
					t.Fatalf("storage value at %q contains a secret ID", key)
				}
			}
		}
	}
	walk("")
}

func TestDeleteRoleRevokesSecretIDs(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"role_id": "fixed"})
	sid, _ := h.newSecretID("app", nil)
	h.mustDo(logical.DeleteOperation, "role/app", nil)
	h.mustDo(logical.UpdateOperation, "role/app", map[string]any{"role_id": "fixed"})
	_, err := h.login("fixed", sid, remote)
	wantStatus(t, err, 400, "invalid role or secret ID")
	names, err := h.store.List(context.Background(), secretIDPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Fatalf("secret ids left after the role was deleted: %v", names)
	}
}

func TestTidy(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", nil)
	roleID := h.roleID("app")
	keep, _ := h.newSecretID("app", nil)
	for i := 0; i < 3; i++ {
		h.newSecretID("app", map[string]any{"ttl": "1m"})
	}
	// A secret ID left under a role UUID that no longer exists (as a
	// crash between writes could leave) is removed too.
	r, _ := h.b.loadRole(context.Background(), "app")
	orphan := *r
	orphan.UUID = "00000000-dead-4000-8000-000000000000"
	sOrphan := h.mustDo(logical.UpdateOperation, "role/app/secret-id", nil).Data["secret_id"].(string)
	d, _ := h.b.digest(context.Background(), "secret_id", sOrphan)
	s, _ := h.b.loadSecretID(context.Background(), r.UUID, d)
	if err := h.store.Batch(context.Background(), deleteSecretIDOps(r.UUID, s)); err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`{"digest":%q,"accessor":"a","creation_time":"2030-01-01T00:00:00Z","expiration_time":"0001-01-01T00:00:00Z","last_updated_time":"2030-01-01T00:00:00Z","num_uses":0,"ttl":0}`, d)
	if err := h.store.Put(context.Background(), storageEntry(secretIDKey(orphan.UUID, d), raw)); err != nil {
		t.Fatal(err)
	}

	h.clock.advance(2 * time.Minute)
	n, err := h.b.RotateDue(context.Background(), h.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("scheduled tidy removed %d entries, want 4", n)
	}
	// Not due again right away.
	if n, err := h.b.RotateDue(context.Background(), h.clock.now()); n != 0 || err != nil {
		t.Fatalf("second RotateDue = %d, %v", n, err)
	}
	resp := h.mustDo(logical.UpdateOperation, "tidy/secret-id", nil)
	if resp.Data["secret_ids_removed"] != 0 {
		t.Fatalf("tidy after tidy = %v", resp.Data)
	}
	keys := h.mustDo(logical.ListOperation, "role/app/secret-id/", nil).Data["keys"].([]string)
	if len(keys) != 1 {
		t.Fatalf("secret ids left = %v, want the one without a TTL", keys)
	}
	if _, err := h.login(roleID, keep, remote); err != nil {
		t.Fatalf("the kept secret ID: %v", err)
	}
}

func TestFactoryRefusesOptions(t *testing.T) {
	_, err := Factory(context.Background(), &logical.BackendConfig{Storage: newHarness(t).store, Options: map[string]string{"x": "y"}})
	wantStatus(t, err, 400, `unknown approle option "x": approle takes no options`)
}

// TestKeySurvivesRestart: secret IDs issued before a restart (a new
// backend over the same storage) still work.
func TestKeySurvivesRestart(t *testing.T) {
	h := newHarness(t)
	h.mustDo(logical.UpdateOperation, "role/app", nil)
	roleID := h.roleID("app")
	sid, _ := h.newSecretID("app", nil)
	h2 := newHarnessOn(t, h.store, h.clock)
	if _, err := h2.login(roleID, sid, remote); err != nil {
		t.Fatalf("login after restart: %v", err)
	}
}
