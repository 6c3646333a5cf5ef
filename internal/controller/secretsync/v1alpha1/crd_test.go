package v1alpha1

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// schemaFields lists the dotted paths of every property in an OpenAPI
// schema, stopping at leaves and string maps.
func schemaFields(s map[string]any, prefix string, out map[string]bool) {
	props, _ := s["properties"].(map[string]any)
	for name, v := range props {
		p := prefix + "." + name
		out[p] = true
		sub := v.(map[string]any)
		if items, ok := sub["items"].(map[string]any); ok {
			schemaFields(items, p+"[]", out)
		} else {
			schemaFields(sub, p, out)
		}
	}
}

var marshalerType = reflect.TypeFor[json.Marshaler]()

// typeFields lists the dotted JSON paths of every field of t.
func typeFields(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")
		if tag[0] == "-" || !f.IsExported() {
			continue
		}
		if tag[0] == "" { // inline
			typeFields(f.Type, prefix, out)
			continue
		}
		p := prefix + "." + tag[0]
		out[p] = true
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			typeFields(ft.Elem(), p+"[]", out)
		} else if ft.Kind() != reflect.Map {
			typeFields(ft, p, out)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestCRDsMatchTypes(t *testing.T) {
	tests := []struct {
		file string
		typ  reflect.Type
	}{
		{"coffer.dev_secretsyncs.yaml", reflect.TypeFor[SecretSync]()},
		{"coffer.dev_clustersecretsyncs.yaml", reflect.TypeFor[ClusterSecretSync]()},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "crds", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var crd map[string]any
			if err := yaml.Unmarshal(raw, &crd); err != nil {
				t.Fatalf("parse %s: %v", tc.file, err)
			}
			spec := crd["spec"].(map[string]any)
			if spec["group"] != GroupVersion.Group {
				t.Errorf("group = %v, want %s", spec["group"], GroupVersion.Group)
			}
			names := spec["names"].(map[string]any)
			if names["kind"] != tc.typ.Name() {
				t.Errorf("kind = %v, want %s", names["kind"], tc.typ.Name())
			}
			v := spec["versions"].([]any)[0].(map[string]any)
			if v["name"] != GroupVersion.Version {
				t.Errorf("version = %v, want %s", v["name"], GroupVersion.Version)
			}
			schema := v["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
			got := map[string]bool{}
			schemaFields(schema, "", got)
			for k := range got {
				if k == ".metadata" || k == ".apiVersion" || k == ".kind" || strings.HasPrefix(k, ".metadata.") {
					delete(got, k)
				}
			}
			want := map[string]bool{}
			typeFields(tc.typ, "", want)
			for k := range want {
				if k == ".metadata" || k == ".apiVersion" || k == ".kind" || strings.HasPrefix(k, ".metadata.") {
					delete(want, k)
				}
			}
			if diff := cmp.Diff(keys(want), keys(got)); diff != "" {
				t.Errorf("CRD schema fields differ from the Go type (-go +crd):\n%s", diff)
			}
		})
	}
}
