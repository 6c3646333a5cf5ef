package sealedsecret

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
	"github.com/coffer-dev/coffer/internal/sealedsecrets/sealedsecretstest"
)

// testServer serves the API with key2 (old) and key (newest) loaded.
func testServer(t *testing.T, rps float64, burst int) (*Server, *sealedsecrets.Key, *sealedsecrets.Key) {
	t.Helper()
	oldKey := sealedsecretstest.Key(t, "key2")
	newKey := sealedsecretstest.Key(t, "key")
	reg := NewKeyRegistry(nil, nil, "kube-system", DefaultKeyPrefix, slog.New(slog.DiscardHandler))
	reg.set([]keyEntry{{secret: "k2", key: oldKey}, {secret: "k1", key: newKey}})
	// Both test certificates may share a NotBefore second: whichever the
	// registry ranks first is the sealing key.
	if reg.Newest() != newKey {
		oldKey, newKey = newKey, oldKey
	}
	s := NewServer("127.0.0.1:0", reg, true, rps, burst, slog.New(slog.DiscardHandler))
	// A frozen clock: buckets never refill during a test, however slow.
	frozen := time.Now()
	s.limits.now = func() time.Time { return frozen }
	return s, oldKey, newKey
}

func do(t *testing.T, h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = "10.0.0.1:1234"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func sealFor(t *testing.T, k *sealedsecrets.Key, ns, name string, scope sealedsecrets.Scope, data map[string]string) *sealedsecrets.SealedSecret {
	t.Helper()
	ss, err := sealedsecrets.Seal(k.Public(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: sealedsecrets.SetScope(nil, scope)},
		StringData: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func TestServerCertAndHealth(t *testing.T) {
	s, _, newest := testServer(t, 0, 0)
	w := do(t, s.Handler(), "GET", "/v1/cert.pem", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-pem-file" || !bytes.Equal(w.Body.Bytes(), newest.CertPEM()) {
		t.Errorf("cert.pem = %d %q, want the newest certificate", w.Code, w.Header().Get("Content-Type"))
	}
	if w := do(t, s.Handler(), "GET", "/healthz", nil); w.Code != 200 || w.Body.String() != "ok\n" {
		t.Errorf("healthz = %d %q", w.Code, w.Body.String())
	}
	if w := do(t, s.Handler(), "POST", "/v1/cert.pem", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST cert.pem = %d", w.Code)
	}
	empty := NewServer("127.0.0.1:0", NewKeyRegistry(nil, nil, "x", "p", slog.New(slog.DiscardHandler)), true, 0, 0, slog.New(slog.DiscardHandler))
	if w := do(t, empty.Handler(), "GET", "/v1/cert.pem", nil); w.Code != http.StatusServiceUnavailable {
		t.Errorf("cert.pem without keys = %d", w.Code)
	}
}

func TestServerVerify(t *testing.T) {
	s, oldKey, _ := testServer(t, 0, 0)
	good := sealFor(t, oldKey, "ns", "n", sealedsecrets.ScopeStrict, map[string]string{"a": "1"})
	// A template that cannot render: verify must not care (no oracle).
	good.Spec.Template.Data = map[string]string{"t": "{{ b64dec .a }}"}
	body, _ := json.Marshal(good)
	if w := do(t, s.Handler(), "POST", "/v1/verify", body); w.Code != 200 {
		t.Errorf("verify(good) = %d %s", w.Code, w.Body)
	}
	yml, _ := yaml.Marshal(good)
	if w := do(t, s.Handler(), "POST", "/v1/verify", yml); w.Code != 200 {
		t.Errorf("verify(yaml) = %d %s", w.Code, w.Body)
	}
	moved := good.DeepCopy()
	moved.Namespace = "other"
	body, _ = json.Marshal(moved)
	w := do(t, s.Handler(), "POST", "/v1/verify", body)
	if w.Code != http.StatusConflict || w.Body.Len() != 0 {
		t.Errorf("verify(moved) = %d %q, want 409 and no body", w.Code, w.Body)
	}
	for name, b := range map[string]string{
		"not an object": "[1,2",
		"wrong kind":    `{"apiVersion":"v1","kind":"Secret"}`,
		"two objects":   "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\n",
	} {
		if w := do(t, s.Handler(), "POST", "/v1/verify", []byte(b)); w.Code != http.StatusBadRequest {
			t.Errorf("verify(%s) = %d, want 400", name, w.Code)
		}
	}
	big := bytes.Repeat([]byte(" "), maxBody+1)
	if w := do(t, s.Handler(), "POST", "/v1/verify", big); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("verify(huge) = %d, want 413", w.Code)
	}
}

func TestServerRotate(t *testing.T) {
	s, oldKey, newKey := testServer(t, 0, 0)
	in := sealFor(t, oldKey, "ns", "n", sealedsecrets.ScopeNamespaceWide, map[string]string{"a": "1", "b": "2"})
	in.Spec.Template.Data = map[string]string{"t": "{{ .a }}"}
	in.Labels = map[string]string{"keep": "me"}
	body, _ := json.Marshal(in)
	w := do(t, s.Handler(), "POST", "/v1/rotate", body)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("rotate = %d %s", w.Code, w.Body)
	}
	out, err := DecodeSealedSecret(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if out.Labels["keep"] != "me" || out.Scope() != sealedsecrets.ScopeNamespaceWide || out.Spec.Template.Data["t"] != "{{ .a }}" {
		t.Errorf("rotate changed the object: %+v", out)
	}
	if err := sealedsecrets.Verify(out, []*sealedsecrets.Key{newKey}, sealedsecrets.UnsealOptions{}); err != nil {
		t.Errorf("rotated object does not open with the newest key: %v", err)
	}
	if strings.Contains(w.Body.String(), `"1"`) {
		t.Error("rotate answer contains a plaintext value")
	}

	// Scope widening through template annotations: refused.
	wide := in.DeepCopy()
	wide.Spec.Template.Annotations = sealedsecrets.SetScope(nil, sealedsecrets.ScopeClusterWide)
	body, _ = json.Marshal(wide)
	if w := do(t, s.Handler(), "POST", "/v1/rotate", body); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "widen") {
		t.Errorf("rotate(widened) = %d %s, want 400", w.Code, w.Body)
	}
	// Widening the object's own annotations makes it undecryptable.
	wide = in.DeepCopy()
	wide.Annotations = sealedsecrets.SetScope(nil, sealedsecrets.ScopeClusterWide)
	body, _ = json.Marshal(wide)
	if w := do(t, s.Handler(), "POST", "/v1/rotate", body); w.Code != http.StatusConflict {
		t.Errorf("rotate(annotated wider) = %d %s, want 409", w.Code, w.Body)
	}
}

func TestServerRateLimit(t *testing.T) {
	s, oldKey, _ := testServer(t, 1, 2)
	body, _ := json.Marshal(sealFor(t, oldKey, "ns", "n", sealedsecrets.ScopeStrict, map[string]string{"a": "1"}))
	var codes []int
	for range 4 {
		codes = append(codes, do(t, s.Handler(), "POST", "/v1/verify", body).Code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests {
		t.Errorf("codes = %v, want burst of 2 then 429", codes)
	}
	// Another client (as the API server's proxy reports it) has its own
	// bucket.
	req := httptest.NewRequest("POST", "/v1/verify", bytes.NewReader(body))
	req.RemoteAddr = "10.0.0.1:1234"
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Errorf("other client = %d, want 200", w.Code)
	}
	// /v1/cert.pem is not limited.
	for range 5 {
		if w := do(t, s.Handler(), "GET", "/v1/cert.pem", nil); w.Code != 200 {
			t.Fatalf("cert.pem = %d", w.Code)
		}
	}
}

// Spoofing X-Forwarded-For to get fresh buckets is bounded by the global
// per-path bucket.
func TestServerRateLimitGlobalCap(t *testing.T) {
	s, oldKey, _ := testServer(t, 1, 1)
	body, _ := json.Marshal(sealFor(t, oldKey, "ns", "n", sealedsecrets.ScopeStrict, map[string]string{"a": "1"}))
	ok := 0
	for i := range 50 {
		req := httptest.NewRequest("POST", "/v1/verify", bytes.NewReader(body))
		req.RemoteAddr = "10.0.0.1:1234"
		req.Header.Set("X-Forwarded-For", "198.51.100."+string(rune('0'+i%10))+string(rune('0'+i/10)))
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code == 200 {
			ok++
		}
	}
	if ok != 10 {
		t.Errorf("%d requests allowed with spoofed X-Forwarded-For, want the global burst (10)", ok)
	}
}
