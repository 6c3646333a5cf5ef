package secretsync

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

var testOpts = Options{CofferAddress: "https://coffer.example", AllowedAddresses: []string{"https://other.example"}, MinRefreshInterval: 10 * time.Second}

func baseSpec() v1alpha1.SecretSyncSpec {
	return v1alpha1.SecretSyncSpec{
		Coffer: v1alpha1.CofferRef{Auth: v1alpha1.CofferAuth{Kubernetes: &v1alpha1.KubernetesAuth{Role: "app", ServiceAccountName: "app"}}},
		Source: v1alpha1.Source{KV: &v1alpha1.KVSource{Mount: "secret", Path: "app/db"}},
	}
}

func TestResolveDefaults(t *testing.T) {
	spec := baseSpec()
	p, err := resolve("team-a", "db", &spec, &testOpts)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if p.addr != "https://coffer.example" || p.refresh != time.Hour || p.targetName != "db" || p.targetType != corev1.SecretTypeOpaque ||
		p.creation != v1alpha1.CreationOwner || p.deletion != v1alpha1.DeletionRetain {
		t.Errorf("defaults: %+v", p)
	}
	want := tokenKey{addr: "https://coffer.example", mount: "kubernetes", role: "app", namespace: "team-a", serviceAccount: "app"}
	if p.tokenKey != want {
		t.Errorf("tokenKey = %+v, want %+v", p.tokenKey, want)
	}
	spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
	spec.Coffer.Address = "https://other.example/"
	if p, _ = resolve("team-a", "db", &spec, &testOpts); p.refresh != 10*time.Second || p.addr != "https://other.example" {
		t.Errorf("refresh %s (want raised to 10s), addr %s", p.refresh, p.addr)
	}
	spec.RefreshInterval = &metav1.Duration{}
	if p, _ = resolve("team-a", "db", &spec, &testOpts); p.refresh != 0 {
		t.Errorf("refreshInterval 0 = %s, want 0 (once)", p.refresh)
	}
}

func TestResolveRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.SecretSyncSpec)
		msg    string
	}{
		{"address not allowed", func(s *v1alpha1.SecretSyncSpec) { s.Coffer.Address = "https://evil.example" }, "not one the controller allows"},
		{"no auth", func(s *v1alpha1.SecretSyncSpec) { s.Coffer.Auth.Kubernetes = nil }, "required"},
		{"foreign service account", func(s *v1alpha1.SecretSyncSpec) { s.Coffer.Auth.Kubernetes.ServiceAccountName = "team-b/app" }, "in this namespace"},
		{"role with slash", func(s *v1alpha1.SecretSyncSpec) { s.Coffer.Auth.Kubernetes.Role = "a/b" }, "not a role name"},
		{"both sources", func(s *v1alpha1.SecretSyncSpec) { s.Source.Database = &v1alpha1.DatabaseSource{Role: "x"} }, "exactly one"},
		{"no source", func(s *v1alpha1.SecretSyncSpec) { s.Source.KV = nil }, "exactly one"},
		{"dot-dot path", func(s *v1alpha1.SecretSyncSpec) { s.Source.KV.Path = "app/../../sys/x" }, `".."`},
		{"query in path", func(s *v1alpha1.SecretSyncSpec) { s.Source.KV.Path = "app?version=1" }, "not allowed"},
		{"negative version", func(s *v1alpha1.SecretSyncSpec) { s.Source.KV.Version = -1 }, "negative"},
		{"bad secret key", func(s *v1alpha1.SecretSyncSpec) {
			s.Source.KV.Keys = []v1alpha1.KeySelector{{SecretKey: "a b", Property: "x"}}
		}, "not a valid Secret key"},
		{"duplicate key", func(s *v1alpha1.SecretSyncSpec) {
			s.Source.KV.Keys = []v1alpha1.KeySelector{{SecretKey: "a", Property: "x"}, {SecretKey: "a", Property: "y"}}
		}, "twice"},
		{"negative refresh", func(s *v1alpha1.SecretSyncSpec) { s.RefreshInterval = &metav1.Duration{Duration: -time.Second} }, "negative"},
		{"bad target name", func(s *v1alpha1.SecretSyncSpec) { s.Target.Name = "Not_Valid" }, "not a valid Secret name"},
		{"service account token", func(s *v1alpha1.SecretSyncSpec) { s.Target.Type = corev1.SecretTypeServiceAccountToken }, "not allowed"},
		{"reserved annotation", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Annotations = map[string]string{v1alpha1.ManagedByAnnotation: "other"}
		}, "may not set"},
		{"bad template", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": "{{ .a "}}
		}, "template"},
		{"unknown template function", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": `{{ env "HOME" }}`}}
		}, "not defined"},
		{"define", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": amplifier}}
		}, "not allowed"},
		{"range over a number", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": "{{ range 1000000000 }}{{ end }}"}}
		}, "only over ."},
		{"nested range", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": "{{ range . }}{{ range . }}{{ end }}{{ end }}"}}
		}, "nested range"},
		{"bad merge policy", func(s *v1alpha1.SecretSyncSpec) { s.Target.Template = &v1alpha1.Template{MergePolicy: "Both"} }, "mergePolicy"},
		{"bad creation policy", func(s *v1alpha1.SecretSyncSpec) { s.Target.CreationPolicy = "Adopt" }, "creationPolicy"},
		{"delete with merge", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.CreationPolicy, s.Target.DeletionPolicy = v1alpha1.CreationMerge, v1alpha1.DeletionDelete
		}, "needs creationPolicy Owner or Orphan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			tc.mutate(&spec)
			_, err := resolve("team-a", "db", &spec, &testOpts)
			if _, ok := err.(*specError); !ok || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("resolve = %v, want a spec error containing %q", err, tc.msg)
			}
		})
	}
}

func fetched(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func strs(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func TestRender(t *testing.T) {
	data := `{"user":"app","password":"s3cr3t-value","port":5432,"tls":true,"db":{"host":"pg","opts":["a"]},"n":null}`
	tests := []struct {
		name   string
		mutate func(*v1alpha1.SecretSyncSpec)
		want   map[string]string
	}{
		{"all keys", func(*v1alpha1.SecretSyncSpec) {}, map[string]string{
			"user": "app", "password": "s3cr3t-value", "port": "5432", "tls": "true", "db": `{"host":"pg","opts":["a"]}`, "n": "",
		}},
		{"selected keys and dotted property", func(s *v1alpha1.SecretSyncSpec) {
			s.Source.KV.Keys = []v1alpha1.KeySelector{{SecretKey: "PASSWORD", Property: "password"}, {SecretKey: "HOST", Property: "db.host"}}
		}, map[string]string{"PASSWORD": "s3cr3t-value", "HOST": "pg"}},
		{"template replaces", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{
				"dsn": "postgres://{{ .user }}:{{ .password }}@{{ index . \"port\" }}", "b64": "{{ .user | b64enc }}", "up": "{{ upper .user }}",
			}}
		}, map[string]string{"dsn": "postgres://app:s3cr3t-value@5432", "b64": "YXBw", "up": "APP"}},
		{"template merges", func(s *v1alpha1.SecretSyncSpec) {
			s.Source.KV.Keys = []v1alpha1.KeySelector{{SecretKey: "user", Property: "user"}}
			s.Target.Template = &v1alpha1.Template{MergePolicy: "Merge", Data: map[string]string{"greeting": "hi {{ .user }}"}}
		}, map[string]string{"user": "app", "greeting": "hi app"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			tc.mutate(&spec)
			p, err := resolve("ns", "s", &spec, &testOpts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := render(p, fetched(t, data))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if diff := cmp.Diff(tc.want, strs(got)); diff != "" {
				t.Errorf("render (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderErrorsHideValues(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.SecretSyncSpec)
		msg    string
	}{
		{"missing property", func(s *v1alpha1.SecretSyncSpec) {
			s.Source.KV.Keys = []v1alpha1.KeySelector{{SecretKey: "x", Property: "nope"}}
		}, `property "nope" not found`},
		{"missing template key", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": "{{ .nope }}"}}
		}, "nope"},
		{"b64dec of a secret", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": "{{ b64dec .password }}"}}
		}, "b64dec"},
		{"template quoting the value", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": "{{ index .password 99 }}"}}
		}, "template"},
		{"huge printf width", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": `{{ printf "%0999999999d" 1 }}`}}
		}, "width"},
		{"output too large", func(s *v1alpha1.SecretSyncSpec) {
			s.Target.Template = &v1alpha1.Template{Data: map[string]string{
				"x": "{{ range $k, $v := . }}" + strings.Repeat("{{ $.password }}", 30000) + "{{ end }}",
			}}
		}, "1 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			tc.mutate(&spec)
			p, err := resolve("ns", "s", &spec, &testOpts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = render(p, fetched(t, `{"password":"s3cr3t-value-that-is-long-enough-0123456789"}`))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("render = %v, want an error containing %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error reveals the value: %v", err)
			}
		})
	}
}

// amplifier would output 10^6 copies of .password; define makes it
// invalid.
var amplifier = func() string {
	var b strings.Builder
	b.WriteString(`{{ define "t0" }}{{ .password }}{{ end }}`)
	for i := 1; i <= 6; i++ {
		b.WriteString(`{{ define "t` + string(rune('0'+i)) + `" }}`)
		for j := 0; j < 10; j++ {
			b.WriteString(`{{ template "t` + string(rune('0'+i-1)) + `" . }}`)
		}
		b.WriteString(`{{ end }}`)
	}
	b.WriteString(`{{ template "t6" . }}`)
	return b.String()
}()

func TestDecide(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	ss := &v1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Generation: 2, UID: "u"}}
	synced := func() *syncState {
		return &syncState{uid: "u", generation: 2, ok: true, refreshed: now.Add(-time.Minute), syncedRV: "7"}
	}
	target := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7"}}
	spec := baseSpec()
	spec.RefreshInterval = &metav1.Duration{Duration: 5 * time.Minute}
	p, err := resolve("ns", "s", &spec, &testOpts)
	if err != nil {
		t.Fatal(err)
	}
	once := *p
	once.refresh = 0
	db := *p
	db.kv, db.db = nil, &v1alpha1.DatabaseSource{Mount: "database", Role: "r"}
	lease := &v1alpha1.LeaseStatus{RenewTime: metav1.NewTime(now.Add(time.Minute))}
	tests := []struct {
		name     string
		st       func(*syncState)
		p        *plan
		target   *corev1.Secret
		annot    string
		want     action
		wantWait time.Duration
	}{
		{"in sync", nil, p, target, "", actWait, 4 * time.Minute},
		{"refresh due", func(s *syncState) { s.refreshed = now.Add(-5 * time.Minute) }, p, target, "", actSync, 0},
		{"generation changed", func(s *syncState) { s.generation = 1 }, p, target, "", actSync, 0},
		{"last attempt failed", func(s *syncState) { s.ok = false }, p, target, "", actSync, 0},
		{"force-sync", nil, p, target, "now", actSync, 0},
		{"force-sync already handled", func(s *syncState) { s.force = "now" }, p, target, "now", actWait, 4 * time.Minute},
		{"target deleted", nil, p, nil, "", actSync, 0},
		{"target edited", nil, p, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "8"}}, "", actSync, 0},
		{"once", nil, &once, target, "", actWait, 0},
		{"database, no lease", nil, &db, target, "", actSync, 0},
		{"database, lease fresh", func(s *syncState) { s.lease = lease }, &db, target, "", actWait, time.Minute},
		{"database, renewal due", func(s *syncState) {
			s.lease = &v1alpha1.LeaseStatus{RenewTime: metav1.NewTime(now)}
		}, &db, target, "", actRenew, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := synced()
			if tc.st != nil {
				tc.st(st)
			}
			s := ss.DeepCopy()
			if tc.annot != "" {
				s.Annotations = map[string]string{v1alpha1.ForceSyncAnnotation: tc.annot}
			}
			got, wait := decide(s, st, tc.p, tc.target, now)
			if got != tc.want || wait != tc.wantWait {
				t.Errorf("decide = %v, %s; want %v, %s", got, wait, tc.want, tc.wantWait)
			}
		})
	}
}

func TestNewLease(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := &leased{LeaseID: "database/creds/r/x", TTL: 30 * time.Minute, Renewable: true}
	// The token outlives the lease: renew at 2/3 of the lease.
	ls := newLease(l, &cofferToken{issued: now.Add(-time.Minute), ttl: 2 * time.Hour}, now)
	if ls.ExpireTime.Time != now.Add(30*time.Minute) || ls.RenewTime.Time != now.Add(20*time.Minute) {
		t.Errorf("expire %s renew %s", ls.ExpireTime, ls.RenewTime)
	}
	// The token ends first: its leases die with it.
	ls = newLease(l, &cofferToken{issued: now.Add(-50 * time.Minute), ttl: time.Hour}, now)
	if ls.ExpireTime.Time != now.Add(10*time.Minute) || ls.TokenExpireTime == nil {
		t.Errorf("expire %s, token expire %v; want the token's end", ls.ExpireTime, ls.TokenExpireTime)
	}
}

func TestTokenCacheSweep(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := &tokenCache{entries: map[tokenKey]*tokenEntry{}}
	live, expired, failed, current := tokenKey{role: "live"}, tokenKey{role: "expired"}, tokenKey{role: "failed"}, tokenKey{role: "current"}
	c.entry(live).tok = &cofferToken{issued: now.Add(-time.Minute), ttl: time.Hour}
	c.entry(expired).tok = &cofferToken{issued: now.Add(-2 * time.Hour), ttl: time.Hour}
	c.entry(failed)
	cur := c.entry(current)
	cur.mu.Lock()
	c.sweep(now, cur)
	cur.mu.Unlock()
	var got []string
	for k := range c.entries {
		got = append(got, k.role)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{"current", "live"}, got); diff != "" {
		t.Errorf("entries after sweep (-want +got):\n%s", diff)
	}
	// Freshness: KV reads log in again at 2/3 of the TTL, credentials at 1/2.
	tok := &cofferToken{issued: now, ttl: 60 * time.Minute}
	if !tok.fresh(now.Add(39*time.Minute), 1.0/3) || tok.fresh(now.Add(41*time.Minute), 1.0/3) || tok.fresh(now.Add(31*time.Minute), 1.0/2) {
		t.Error("fresh() thresholds are wrong")
	}
}
