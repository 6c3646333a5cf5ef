package secretsync

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// saTokenSeconds is the lifetime asked for the service account tokens
// used to log in: the API server's minimum. Each is used once, at once.
const saTokenSeconds = 600

// tokenKey identifies one Coffer identity: a service account of one
// namespace logging in to one role. Tokens are never shared across keys,
// so a namespace never uses another namespace's token.
type tokenKey struct {
	addr, mount, role, namespace, serviceAccount, audiences string
}

type cofferToken struct {
	value  string
	issued time.Time
	ttl    time.Duration // zero: no expiry
}

// expire is when the token stops working (zero: never).
func (t *cofferToken) expire() time.Time {
	if t.ttl == 0 {
		return time.Time{}
	}
	return t.issued.Add(t.ttl)
}

// fresh reports whether at least the fraction keep of the token's lifetime
// is left. Tokens without expiry are refreshed hourly all the same.
func (t *cofferToken) fresh(now time.Time, keep float64) bool {
	ttl := t.ttl
	if ttl == 0 {
		ttl = 3 * time.Hour / 2
	}
	return now.Before(t.issued.Add(time.Duration(float64(ttl) * (1 - keep))))
}

type tokenEntry struct {
	mu  sync.Mutex // one login at a time per key
	tok *cofferToken
}

// tokenCache keeps one Coffer token per tokenKey, in memory only, and logs
// in again at two thirds of a token's lifetime.
type tokenCache struct {
	kube   client.Client
	coffer *cofferClient
	now    func() time.Time

	mu      sync.Mutex
	entries map[tokenKey]*tokenEntry
}

func (c *tokenCache) entry(k tokenKey) *tokenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil {
		e = &tokenEntry{}
		c.entries[k] = e
	}
	return e
}

// get returns a token for k with at least the fraction keep of its
// lifetime left, logging in if needed. KV reads use keep 1/3 (a new login
// at two thirds of a token's life); issuing leased credentials uses 1/2,
// because the leases die with the token that created them.
func (c *tokenCache) get(ctx context.Context, k tokenKey, keep float64) (*cofferToken, error) {
	e := c.entry(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	if e.tok != nil && e.tok.fresh(now, keep) {
		return e.tok, nil
	}
	tok, err := c.login(ctx, k)
	if err != nil {
		return nil, err
	}
	e.tok = tok
	c.sweep(now, e)
	return tok, nil
}

// sweep forgets the identities whose token has expired (their SecretSyncs
// are gone or failing), so deleted namespaces do not accumulate. Logins
// are rare, so the scan is cheap.
func (c *tokenCache) sweep(now time.Time, keep *tokenEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e == keep || !e.mu.TryLock() {
			continue
		}
		if e.tok == nil || (e.tok.ttl > 0 && !now.Before(e.tok.expire())) {
			delete(c.entries, k)
		}
		e.mu.Unlock()
	}
}

// invalidate drops tok for k (after Coffer refused it), unless another
// login already replaced it.
func (c *tokenCache) invalidate(k tokenKey, tok *cofferToken) {
	e := c.entry(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok == tok {
		e.tok = nil
	}
}

func (c *tokenCache) login(ctx context.Context, k tokenKey) (*cofferToken, error) {
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(saTokenSeconds))}}
	if k.audiences != "" {
		tr.Spec.Audiences = strings.Split(k.audiences, ",")
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: k.serviceAccount, Namespace: k.namespace}}
	if err := c.kube.SubResource("token").Create(ctx, sa, tr); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return nil, &syncError{msg: fmt.Sprintf("service account %q not found in namespace %q", k.serviceAccount, k.namespace), err: err}
		case apierrors.IsForbidden(err):
			return nil, &syncError{msg: fmt.Sprintf("the controller may not request a token for service account %q (it needs create on serviceaccounts/token)", k.serviceAccount), err: err}
		}
		return nil, &syncError{msg: fmt.Sprintf("request a token for service account %q: %v", k.serviceAccount, err), err: err}
	}
	jwt := tr.Status.Token
	if jwt == "" {
		return nil, &syncError{msg: "the API server returned an empty service account token"}
	}
	now := c.now()
	value, ttl, err := c.coffer.login(ctx, k.addr, k.mount, k.role, jwt)
	loginsTotal.Inc()
	if err != nil {
		what := fmt.Sprintf("coffer login (auth/%s, role %q, service account %s/%s)", k.mount, k.role, k.namespace, k.serviceAccount)
		if isStatus(err, http.StatusForbidden) || isStatus(err, http.StatusBadRequest) {
			return nil, &syncError{msg: what + " refused: " + err.Error(), err: err}
		}
		return nil, &syncError{msg: what + " failed: " + err.Error(), err: err}
	}
	return &cofferToken{value: value, issued: now, ttl: ttl}, nil
}

func ptr[T any](v T) *T { return &v }
