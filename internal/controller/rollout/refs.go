package rollout

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Annotations.
const (
	// OptInAnnotation on a workload: "true" for every Secret its pods
	// reference, or a comma-separated list of Secret names.
	OptInAnnotation = "coffer.dev/rollout-on-secret-change"
	// HashAnnotation on the pod template: the digest of those Secrets.
	HashAnnotation = "coffer.dev/secret-hash"
)

// watchedSecrets returns the Secrets a workload with the given annotations
// and pod spec depends on, sorted, or nil when it has not opted in.
func watchedSecrets(annotations map[string]string, spec *corev1.PodSpec) []string {
	v := strings.TrimSpace(annotations[OptInAnnotation])
	switch strings.ToLower(v) {
	case "", "false", "no", "0":
		return nil
	case "true", "yes", "1":
		return referencedSecrets(spec)
	}
	set := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n != "" && len(validation.IsDNS1123Subdomain(n)) == 0 {
			set[n] = true
		}
	}
	return sortedKeys(set)
}

// referencedSecrets lists the Secrets a pod spec reads: env valueFrom,
// envFrom, secret volumes and projected volume sources, in every kind of
// container. Image pull secrets are not data the application sees and are
// left out.
func referencedSecrets(spec *corev1.PodSpec) []string {
	set := map[string]bool{}
	add := func(n string) {
		if n != "" {
			set[n] = true
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			add(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					add(src.Secret.Name)
				}
			}
		}
	}
	envs := func(env []corev1.EnvVar, from []corev1.EnvFromSource) {
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, f := range from {
			if f.SecretRef != nil {
				add(f.SecretRef.Name)
			}
		}
	}
	for _, c := range spec.InitContainers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range spec.Containers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range spec.EphemeralContainers {
		envs(c.Env, c.EnvFrom)
	}
	return sortedKeys(set)
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return []string{}
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
