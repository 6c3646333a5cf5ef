package transit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage"
)

func (h *harness) latest(name string) int {
	h.t.Helper()
	return h.must(logical.ReadOperation, "keys/"+name, "").Data["latest_version"].(int)
}

func TestRotateDue(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.write("keys/daily", `{"auto_rotate_period":"24h"}`)
	h.write("keys/hourly", `{"auto_rotate_period":"1h","type":"ed25519"}`)
	h.write("keys/never", ``)

	steps := []struct {
		name    string
		at      time.Duration // after t0
		rotated int
		latest  map[string]int
	}{
		{"nothing due yet", 59 * time.Minute, 0, map[string]int{"daily": 1, "hourly": 1, "never": 1}},
		{"hourly due exactly at its period", time.Hour, 1, map[string]int{"daily": 1, "hourly": 2}},
		{"same time again rotates nothing", time.Hour, 0, map[string]int{"hourly": 2}},
		{"half an hour later, nothing", 90 * time.Minute, 0, map[string]int{"hourly": 2}},
		{"overdue by many periods rotates once", 24 * time.Hour, 2, map[string]int{"daily": 2, "hourly": 3, "never": 1}},
		{"next due a period after the rotation", 25*time.Hour - time.Second, 0, map[string]int{"hourly": 3}},
		{"and then", 25 * time.Hour, 1, map[string]int{"daily": 2, "hourly": 4}},
	}
	for _, st := range steps {
		n, err := h.b.RotateDue(ctx, t0.Add(st.at))
		if err != nil || n != st.rotated {
			t.Fatalf("%s: RotateDue(t0+%v) = %d, %v; want %d", st.name, st.at, n, err, st.rotated)
		}
		for name, want := range st.latest {
			if got := h.latest(name); got != want {
				t.Errorf("%s: keys/%s latest_version = %d, want %d", st.name, name, got, want)
			}
		}
	}
	// The new version's creation time is the time RotateDue was given.
	keys := h.must(logical.ReadOperation, "keys/daily", "").Data["keys"].(map[string]any)
	if got, want := keys["2"], t0.Add(24*time.Hour).Unix(); got != want {
		t.Errorf("auto-rotated version created at %v, want %v", got, want)
	}

	// A manual rotation restarts the period; turning it off stops it.
	h.clock.Advance(40 * time.Hour)
	h.write("keys/daily/rotate", "")
	h.write("keys/hourly/config", `{"auto_rotate_period":0}`)
	if n, err := h.b.RotateDue(ctx, t0.Add(50*time.Hour)); err != nil || n != 0 {
		t.Errorf("RotateDue after manual rotation and period off = %d, %v; want 0", n, err)
	}
	if n, err := h.b.RotateDue(ctx, t0.Add(64*time.Hour)); err != nil || n != 1 {
		t.Errorf("RotateDue a period after the manual rotation = %d, %v; want 1", n, err)
	}
	// Turning it on from config schedules it, from the latest version.
	h.write("keys/never/config", `{"auto_rotate_period":"1h"}`)
	if n, err := h.b.RotateDue(ctx, t0.Add(64*time.Hour)); err != nil || n != 1 || h.latest("never") != 2 {
		t.Errorf("RotateDue after enabling it on an old key = %d, %v (latest %d); want 1", n, err, h.latest("never"))
	}
	// Deleting a scheduled key is not an error.
	h.write("keys/never/config", `{"deletion_allowed":true}`)
	h.must(logical.DeleteOperation, "keys/never", "")
	if n, err := h.b.RotateDue(ctx, t0.Add(100*time.Hour)); err != nil || n != 1 {
		t.Errorf("RotateDue after deleting a scheduled key = %d, %v; want 1 (daily)", n, err)
	}
}

// TestRotateDueAfterRestart builds the schedule from storage.
func TestRotateDueAfterRestart(t *testing.T) {
	h := newHarness(t)
	h.write("keys/a", `{"auto_rotate_period":"2h"}`)
	h.write("keys/b", `{"auto_rotate_period":"3h"}`)
	h.write("keys/c", ``)
	ct := h.encrypt("a", "kept", "")

	h2 := newHarnessOn(t, h.store)
	n, err := h2.b.RotateDue(context.Background(), t0.Add(150*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("RotateDue on a new backend = %d, %v; want 1", n, err)
	}
	if got := h2.latest("a"); got != 2 {
		t.Errorf("keys/a latest_version = %d, want 2", got)
	}
	if got := h2.decrypt("a", ct, ""); got != "kept" {
		t.Errorf("decrypt v1 after auto-rotation = %q", got)
	}
}

// TestRotateDueStorageFailure: a failing key is reported and retried;
// the others still rotate.
func TestRotateDueStorageFailure(t *testing.T) {
	h := newHarness(t)
	h.write("keys/a", `{"auto_rotate_period":"1h"}`)
	h.write("keys/b", `{"auto_rotate_period":"1h"}`)
	boom := errors.New("disk on fire")
	fs := &failPut{Backend: h.store, key: policyKey("a"), err: boom}
	b, err := New(context.Background(), &logical.BackendConfig{Storage: fs})
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.RotateDue(context.Background(), t0.Add(time.Hour))
	if n != 1 || !errors.Is(err, boom) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("RotateDue with key a failing = %d, %v; want 1 and a's error", n, err)
	}
	fs.mu.Lock()
	fs.err = nil
	fs.mu.Unlock()
	if n, err := b.RotateDue(context.Background(), t0.Add(time.Hour)); n != 1 || err != nil {
		t.Errorf("RotateDue once storage is back = %d, %v; want 1 (a)", n, err)
	}
}

// failPut fails every Put of one key with err.
type failPut struct {
	storage.Backend
	mu  sync.Mutex
	key string
	err error
}

func (f *failPut) Put(ctx context.Context, e *storage.Entry) error {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil && e.Key == f.key {
		return err
	}
	return f.Backend.Put(ctx, e)
}

func TestRotateDueContextCanceled(t *testing.T) {
	h := newHarness(t)
	h.write("keys/a", `{"auto_rotate_period":"1h"}`)
	if _, err := h.b.RotateDue(context.Background(), t0); err != nil { // load the schedule
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := h.b.RotateDue(ctx, t0.Add(time.Hour)); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("RotateDue with a canceled context = %d, %v", n, err)
	}
}

// TestConcurrentRotateAndEncrypt races rotations (manual and scheduled)
// against encryptions and decryptions of one key; run with -race. Every
// ciphertext must decrypt afterwards, and versions must be consistent.
func TestConcurrentRotateAndEncrypt(t *testing.T) {
	h := newHarness(t)
	h.write("keys/k", `{"auto_rotate_period":"1h"}`)
	const workers, perWorker, rotations = 4, 40, 20
	var wg sync.WaitGroup
	cts := make([][]string, workers)
	errs := make(chan error, workers*perWorker+2*rotations)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				pt := fmt.Sprintf("w%d-%d", w, i)
				resp, err := h.b.HandleRequest(context.Background(), &logical.Request{
					Operation: logical.UpdateOperation, MountPath: "encrypt/k", Data: map[string]any{"plaintext": b64(pt)},
				})
				if err != nil {
					errs <- err
					continue
				}
				cts[w] = append(cts[w], resp.Data["ciphertext"].(string))
				_, err = h.b.HandleRequest(context.Background(), &logical.Request{
					Operation: logical.UpdateOperation, MountPath: "decrypt/k", Data: map[string]any{"ciphertext": cts[w][len(cts[w])-1]},
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		for range rotations {
			if _, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, MountPath: "keys/k/rotate"}); err != nil {
				errs <- err
			}
		}
	})
	wg.Go(func() {
		for i := range rotations {
			if _, err := h.b.RotateDue(context.Background(), t0.Add(time.Duration(i+1)*time.Hour)); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent request failed: %v", err)
	}
	latest := h.latest("k")
	if s := h.stored("k"); s.LatestVersion != latest || len(s.Versions) != latest || latest < rotations+1 {
		t.Errorf("after the race: latest_version %d, stored %d with %d versions; want at least %d", latest, s.LatestVersion, len(s.Versions), rotations+1)
	}
	for w := range workers {
		for i, ct := range cts[w] {
			if got := h.decrypt("k", ct, ""); got != fmt.Sprintf("w%d-%d", w, i) {
				t.Errorf("decrypt(%q) = %q", ct, got)
			}
		}
	}
}

// TestCacheEviction fills the cache past its bound: evicted keys are
// zeroed only when unused, and still work (reloaded from storage).
func TestCacheEviction(t *testing.T) {
	if testing.Short() {
		t.Skip("creates maxCached+10 keys")
	}
	h := newHarness(t)
	cts := map[string]string{}
	for i := range maxCached + 10 {
		name := fmt.Sprintf("k%d", i)
		cts[name] = h.encrypt(name, name, "")
	}
	h.b.cacheMu.Lock()
	n := len(h.b.cache)
	h.b.cacheMu.Unlock()
	if n > maxCached {
		t.Errorf("cache holds %d keys, want at most %d", n, maxCached)
	}
	for name, ct := range cts {
		if got := h.decrypt(name, ct, ""); got != name {
			t.Fatalf("decrypt(%q) after eviction = %q", name, got)
		}
	}
}

// TestCorruptKey: a stored key that does not decode or is inconsistent is
// an internal error, never a 4xx that would blame the client, and the
// error never quotes the entry.
func TestCorruptKey(t *testing.T) {
	h := newHarness(t)
	k32 := `"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="`
	ver := func(key string) string {
		return `{"key":` + key + `,"hmac_key":` + k32 + `,"creation_time":"2024-05-01T12:00:00Z"}`
	}
	entry := func(fields, versions string) string {
		return `{"format":1,"name":"k","type":"aes256-gcm96","latest_version":1,"min_decryption_version":1` + fields +
			`,"versions":{` + versions + `}}`
	}
	tests := []struct{ name, raw string }{
		{"not JSON", `{`},
		{"no versions", entry(``, ``)},
		{"unknown format", strings.Replace(entry(``, `"1":`+ver(k32)), `"format":1`, `"format":2`, 1)},
		{"other name", strings.Replace(entry(``, `"1":`+ver(k32)), `"name":"k"`, `"name":"j"`, 1)},
		{"unknown type", strings.Replace(entry(``, `"1":`+ver(k32)), `aes256-gcm96`, `des`, 1)},
		{"derived without kdf", entry(`,"derived":true`, `"1":`+ver(k32))},
		{"kdf without derived", entry(`,"kdf":"hkdf_sha256"`, `"1":`+ver(k32))},
		{"min decryption above latest", entry(`,"min_decryption_version":2`, `"1":`+ver(k32))},
		{"min encryption above latest", entry(`,"min_encryption_version":2`, `"1":`+ver(k32))},
		{"negative rotate period", entry(`,"auto_rotate_period_seconds":-1`, `"1":`+ver(k32))},
		{"short key", entry(``, `"1":`+ver(`"AAEC"`))},
		{"missing version", entry(``, `"2":`+ver(k32))},
		{"ed25519 public key not matching its seed", strings.Replace(entry(``, `"1":`+ver(
			`"QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="`)),
			`aes256-gcm96`, `ed25519`, 1)},
	}
	for _, tc := range tests {
		raw := tc.raw
		if err := h.store.Put(context.Background(), &storage.Entry{Key: policyKey("k"), Value: []byte(raw)}); err != nil {
			t.Fatal(err)
		}
		h.b.cacheDrop("k")
		if _, err := h.b.Exists(context.Background(), &logical.Request{MountPath: "encrypt/k"}); !errors.Is(err, errCorrupt) {
			t.Errorf("Exists(encrypt/k) with stored key %s = %v, want errCorrupt", raw, err)
		}
		resp, err := h.send(&logical.Request{Operation: logical.UpdateOperation, MountPath: "encrypt/k", Data: body(t, `{"plaintext":""}`)}, true)
		if status(resp, err) != 500 || !errors.Is(err, errCorrupt) || strings.Contains(err.Error(), "AAEC") {
			t.Errorf("%s: encrypt = %d, %v; want 500 wrapping errCorrupt", tc.name, status(resp, err), err)
		}
	}
	// A good entry written by hand works: the table above differs from it
	// in one thing each.
	if err := h.store.Put(context.Background(), &storage.Entry{Key: policyKey("k"), Value: []byte(entry(``, `"1":`+ver(k32)))}); err != nil {
		t.Fatal(err)
	}
	h.b.cacheDrop("k")
	h.encrypt("k", "fine", "")
}

func TestFactory(t *testing.T) {
	if _, err := Factory(context.Background(), &logical.BackendConfig{}); err == nil {
		t.Errorf("Factory without storage = nil error")
	}
	b, err := Factory(context.Background(), &logical.BackendConfig{Storage: newHarness(t).store})
	if err != nil {
		t.Fatalf("Factory() = %v", err)
	}
	if _, ok := b.(logical.Rotator); !ok {
		t.Errorf("Factory() = %T, which is not a logical.Rotator", b)
	}
}
