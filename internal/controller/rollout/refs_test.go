package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func podSpec() *corev1.PodSpec {
	return &corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull"}},
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol"}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj"}}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
			}}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm2"}}}},
		},
		InitContainers: []corev1.Container{{Name: "i", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "init-from"}}}}}},
		Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{
			{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env"}, Key: "k"}}},
			{Name: "Y", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm3"}, Key: "k"}}},
			{Name: "Z", Value: "literal"},
		}}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "eph"}}}}}}},
	}
}

func TestWatchedSecrets(t *testing.T) {
	tests := []struct {
		name  string
		annot map[string]string
		want  []string
	}{
		{"not opted in", nil, nil},
		{"false", map[string]string{OptInAnnotation: "false"}, nil},
		{"all references", map[string]string{OptInAnnotation: "true"}, []string{"env", "eph", "init-from", "proj", "vol"}},
		{"explicit list", map[string]string{OptInAnnotation: " vol, other ,Bad_Name"}, []string{"other", "vol"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := watchedSecrets(tc.annot, podSpec())
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("watchedSecrets(%v) (-want +got):\n%s", tc.annot, diff)
			}
		})
	}
	if got := watchedSecrets(map[string]string{OptInAnnotation: "true"}, &corev1.PodSpec{}); got == nil || len(got) != 0 {
		t.Errorf("opted in without references = %#v, want an empty non-nil list", got)
	}
}

func sec(data map[string]string) *corev1.Secret {
	s := &corev1.Secret{Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestSecretHash(t *testing.T) {
	base := secretHash([]string{"a", "b"}, map[string]*corev1.Secret{"a": sec(map[string]string{"k": "v"}), "b": sec(nil)})
	if len(base) != 2*hashLen {
		t.Fatalf("hash %q has length %d, want %d", base, len(base), 2*hashLen)
	}
	same := secretHash([]string{"b", "a"}, map[string]*corev1.Secret{"a": sec(map[string]string{"k": "v"}), "b": sec(nil)})
	if same != base {
		t.Errorf("hash depends on the order of names: %s vs %s", same, base)
	}
	differs := map[string]string{
		"value changed": secretHash([]string{"a", "b"}, map[string]*corev1.Secret{"a": sec(map[string]string{"k": "w"}), "b": sec(nil)}),
		"key renamed":   secretHash([]string{"a", "b"}, map[string]*corev1.Secret{"a": sec(map[string]string{"j": "v"}), "b": sec(nil)}),
		"b absent":      secretHash([]string{"a", "b"}, map[string]*corev1.Secret{"a": sec(map[string]string{"k": "v"})}),
		"boundary":      secretHash([]string{"a", "b"}, map[string]*corev1.Secret{"a": sec(map[string]string{"kv": ""}), "b": sec(nil)}),
		"moved":         secretHash([]string{"a", "b"}, map[string]*corev1.Secret{"b": sec(map[string]string{"k": "v"}), "a": sec(nil)}),
	}
	seen := map[string]string{base: "base"}
	for name, h := range differs {
		if prev, ok := seen[h]; ok {
			t.Errorf("%s hashes like %s: %s", name, prev, h)
		}
		seen[h] = name
	}
}
