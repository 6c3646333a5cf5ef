package secretsync

import (
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

// FuzzTemplate feeds tenant-written templates and property paths through
// the spec validation and the renderer: no panic, output within the size
// limit, and no secret value in an error.
func FuzzTemplate(f *testing.F) {
	f.Add("{{ .user }}:{{ .password }}", "db.host", "user")
	f.Add(`{{ range $k, $v := . }}{{ $k }}={{ $v | b64enc }}{{ end }}`, "password", "x")
	f.Add(`{{ index . "db" | b64dec }}`, "a.b.c", "k")
	f.Add(`{{ template "x" }}`, "", "")
	f.Add(`{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}`, "..", "a")
	f.Fuzz(func(t *testing.T, text, property, key string) {
		spec := baseSpec()
		if property != "" {
			spec.Source.KV.Keys = []v1alpha1.KeySelector{{SecretKey: "k", Property: property}}
		}
		spec.Target.Template = &v1alpha1.Template{Data: map[string]string{"out": text}, MergePolicy: "Merge"}
		if key != "" {
			spec.Target.Template.Data[key] = text
		}
		p, err := resolve("ns", "s", &spec, &testOpts)
		if err != nil {
			return
		}
		const secret = "Zx9-fuzz-secret-value-Qw7"
		out, err := render(p, map[string]any{"user": "app", "password": secret, "db": map[string]any{"host": secret}})
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error reveals the value: %v", err)
			}
			return
		}
		total := 0
		for k, v := range out {
			total += len(k) + len(v)
		}
		if total > maxSecretBytes {
			t.Fatalf("rendered %d bytes, over the limit", total)
		}
	})
}
