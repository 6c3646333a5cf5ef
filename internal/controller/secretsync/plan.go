package secretsync

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

// DefaultRefreshInterval applies when a SecretSync sets none.
const DefaultRefreshInterval = time.Hour

// plan is a validated SecretSync spec with its defaults applied.
type plan struct {
	addr     string
	tokenKey tokenKey

	kv *v1alpha1.KVSource // mount and path cleaned
	db *v1alpha1.DatabaseSource

	refresh    time.Duration // 0: once
	targetName string
	targetType corev1.SecretType
	labels     map[string]string
	annots     map[string]string
	templates  map[string]*template.Template
	mergeKeys  bool // template mergePolicy Merge
	creation   v1alpha1.CreationPolicy
	deletion   v1alpha1.DeletionPolicy
}

// writes reports whether the plan writes a Secret at all.
func (p *plan) writes() bool { return p.creation != v1alpha1.CreationNone }

func specErrorf(format string, args ...any) error {
	return &specError{msg: fmt.Sprintf(format, args...)}
}

// checkSegments validates a logical path given in a spec: relative,
// no empty, "." or ".." segments, no characters with meaning in a URL.
func checkSegments(field, p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", specErrorf("%s is empty", field)
	}
	if len(p) > 512 {
		return "", specErrorf("%s is longer than 512 characters", field)
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return "", specErrorf("%s %q has an empty, \".\" or \"..\" segment", field, p)
		}
	}
	if strings.ContainsAny(p, "?#%\\") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", specErrorf("%s %q contains a character that is not allowed (?, #, %%, \\ or a control character)", field, p)
	}
	return p, nil
}

// resolve validates spec for an object in namespace (the SecretSync's own)
// and applies defaults. name is the SecretSync's name.
func resolve(namespace, name string, spec *v1alpha1.SecretSyncSpec, opts *Options) (*plan, error) {
	p := &plan{}
	addr := strings.TrimRight(strings.TrimSpace(spec.Coffer.Address), "/")
	switch {
	case addr == "" || addr == opts.CofferAddress:
		p.addr = opts.CofferAddress
	case slices.Contains(opts.AllowedAddresses, addr):
		p.addr = addr
	default:
		return nil, specErrorf("coffer address %q is not one the controller allows", addr)
	}
	if p.addr == "" {
		return nil, specErrorf("no coffer address: set spec.coffer.address or start the controller with a default address")
	}
	k := spec.Coffer.Auth.Kubernetes
	if k == nil {
		return nil, specErrorf("spec.coffer.auth.kubernetes is required")
	}
	mount := k.MountPath
	if mount == "" {
		mount = "kubernetes"
	}
	mount, err := checkSegments("spec.coffer.auth.kubernetes.mountPath", strings.TrimPrefix(strings.Trim(mount, "/"), "auth/"))
	if err != nil {
		return nil, err
	}
	if _, err := checkSegments("spec.coffer.auth.kubernetes.role", k.Role); err != nil || strings.Contains(k.Role, "/") {
		return nil, specErrorf("spec.coffer.auth.kubernetes.role %q is not a role name", k.Role)
	}
	if errs := validation.IsDNS1123Subdomain(k.ServiceAccountName); len(errs) > 0 {
		// Also refuses "ns:name" or "ns/name": the account is always in
		// the SecretSync's own namespace.
		return nil, specErrorf("spec.coffer.auth.kubernetes.serviceAccountName %q is not a service account name in this namespace", k.ServiceAccountName)
	}
	for _, a := range k.Audiences {
		if a == "" || strings.Contains(a, ",") {
			return nil, specErrorf("spec.coffer.auth.kubernetes.audiences: empty entry or entry with a comma")
		}
	}
	p.tokenKey = tokenKey{
		addr: p.addr, mount: mount, role: k.Role, namespace: namespace,
		serviceAccount: k.ServiceAccountName, audiences: strings.Join(k.Audiences, ","),
	}

	src := spec.Source
	switch {
	case src.KV != nil && src.Database != nil, src.KV == nil && src.Database == nil:
		return nil, specErrorf("exactly one of source.kv and source.database must be set")
	case src.KV != nil:
		kv := *src.KV
		if kv.Mount, err = checkSegments("source.kv.mount", kv.Mount); err != nil {
			return nil, err
		}
		if kv.Path, err = checkSegments("source.kv.path", kv.Path); err != nil {
			return nil, err
		}
		if kv.Version < 0 {
			return nil, specErrorf("source.kv.version must not be negative")
		}
		seen := map[string]bool{}
		for _, ks := range kv.Keys {
			if errs := validation.IsConfigMapKey(ks.SecretKey); len(errs) > 0 {
				return nil, specErrorf("source.kv.keys: %q is not a valid Secret key", ks.SecretKey)
			}
			if seen[ks.SecretKey] {
				return nil, specErrorf("source.kv.keys: secretKey %q appears twice", ks.SecretKey)
			}
			seen[ks.SecretKey] = true
			if ks.Property == "" {
				return nil, specErrorf("source.kv.keys: secretKey %q has no property", ks.SecretKey)
			}
		}
		p.kv = &kv
	default:
		db := *src.Database
		if db.Mount == "" {
			db.Mount = "database"
		}
		if db.Mount, err = checkSegments("source.database.mount", db.Mount); err != nil {
			return nil, err
		}
		if _, err := checkSegments("source.database.role", db.Role); err != nil || strings.Contains(db.Role, "/") {
			return nil, specErrorf("source.database.role %q is not a role name", db.Role)
		}
		p.db = &db
	}

	p.refresh = DefaultRefreshInterval
	if spec.RefreshInterval != nil {
		p.refresh = spec.RefreshInterval.Duration
	}
	if p.refresh < 0 {
		return nil, specErrorf("refreshInterval must not be negative")
	}
	if p.refresh > 0 && p.refresh < opts.MinRefreshInterval {
		p.refresh = opts.MinRefreshInterval
	}

	t := spec.Target
	p.targetName = t.Name
	if p.targetName == "" {
		p.targetName = name
	}
	if errs := validation.IsDNS1123Subdomain(p.targetName); len(errs) > 0 {
		return nil, specErrorf("target.name %q is not a valid Secret name", p.targetName)
	}
	p.targetType = t.Type
	if p.targetType == "" {
		p.targetType = corev1.SecretTypeOpaque
	}
	if p.targetType == corev1.SecretTypeServiceAccountToken {
		return nil, specErrorf("target.type %s is not allowed: the controller never writes service account tokens", corev1.SecretTypeServiceAccountToken)
	}
	p.labels = maps.Clone(t.Labels)
	p.annots = maps.Clone(t.Annotations)
	for k := range p.annots {
		if k == v1alpha1.ManagedByAnnotation || k == v1alpha1.AllowMergeAnnotation {
			return nil, specErrorf("target.annotations may not set %s", k)
		}
	}
	if t.Template != nil {
		switch t.Template.MergePolicy {
		case "", "Replace":
		case "Merge":
			p.mergeKeys = true
		default:
			return nil, specErrorf("target.template.mergePolicy must be Replace or Merge")
		}
		p.templates = map[string]*template.Template{}
		for key, text := range t.Template.Data {
			if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
				return nil, specErrorf("target.template.data: %q is not a valid Secret key", key)
			}
			tp, err := template.New(key).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
			if err != nil {
				return nil, specErrorf("target.template.data[%q]: %v", key, err)
			}
			if err := checkTemplate(tp); err != nil {
				return nil, specErrorf("target.template.data[%q]: %v", key, err)
			}
			p.templates[key] = tp
		}
	}
	p.creation = t.CreationPolicy
	if p.creation == "" {
		p.creation = v1alpha1.CreationOwner
	}
	switch p.creation {
	case v1alpha1.CreationOwner, v1alpha1.CreationOrphan, v1alpha1.CreationMerge, v1alpha1.CreationNone:
	default:
		return nil, specErrorf("target.creationPolicy must be Owner, Orphan, Merge or None")
	}
	p.deletion = t.DeletionPolicy
	if p.deletion == "" {
		p.deletion = v1alpha1.DeletionRetain
	}
	switch p.deletion {
	case v1alpha1.DeletionRetain:
	case v1alpha1.DeletionDelete:
		if p.creation != v1alpha1.CreationOwner && p.creation != v1alpha1.CreationOrphan {
			return nil, specErrorf("target.deletionPolicy Delete needs creationPolicy Owner or Orphan")
		}
	default:
		return nil, specErrorf("target.deletionPolicy must be Retain or Delete")
	}
	return p, nil
}
