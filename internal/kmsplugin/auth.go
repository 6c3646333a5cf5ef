package kmsplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// authenticator holds the plugin's Coffer token: read from a file or
// obtained by AppRole login, renewed at two thirds of its TTL, and replaced
// (file re-read, or a new login) when renewal fails or Coffer refuses it.
// The token is never logged.
type authenticator struct {
	t         *Transit
	tokenFile string
	appRole   *AppRole
	kube      *KubernetesLogin
	log       *slog.Logger

	loginMu sync.Mutex // one login at a time
	mu      sync.Mutex // guards the fields below
	tok     string
	ttl     time.Duration // 0: the token does not expire
	renew   bool          // renewable
	at      time.Time     // when tok was obtained or last renewed
	lastTry time.Time     // last login attempt
	lastErr error         // its error
	changed chan struct{} // closed and replaced when tok changes
}

func newAuthenticator(t *Transit, tokenFile string, ar *AppRole, kube *KubernetesLogin, log *slog.Logger) *authenticator {
	return &authenticator{t: t, tokenFile: tokenFile, appRole: ar, kube: kube, log: log, changed: make(chan struct{})}
}

// minLoginInterval spaces failed login attempts made on behalf of
// requests, so that a down Coffer is not hammered and requests fail fast.
const minLoginInterval = time.Second

// token returns the current token, logging in first if there is none.
func (a *authenticator) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	tok := a.tok
	a.mu.Unlock()
	if tok != "" {
		return tok, nil
	}
	return a.relogin(ctx, "")
}

// relogin replaces the token stale with a fresh one (unless another
// caller already did) and returns the token to use.
func (a *authenticator) relogin(ctx context.Context, stale string) (string, error) {
	a.loginMu.Lock()
	defer a.loginMu.Unlock()
	a.mu.Lock()
	if a.tok != "" && a.tok != stale {
		tok := a.tok
		a.mu.Unlock()
		return tok, nil
	}
	if a.lastErr != nil && time.Since(a.lastTry) < minLoginInterval {
		err := a.lastErr
		a.mu.Unlock()
		return "", err
	}
	a.mu.Unlock()
	tok, ttl, renewable, err := a.login(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastTry, a.lastErr = time.Now(), err
	if err != nil {
		return "", err
	}
	if tok != a.tok {
		close(a.changed)
		a.changed = make(chan struct{})
	}
	a.tok, a.ttl, a.renew, a.at = tok, ttl, renewable, time.Now()
	method := "token file"
	switch {
	case a.appRole != nil:
		method = "approle"
	case a.kube != nil:
		method = "kubernetes"
	}
	a.log.Info("logged in to coffer", "method", method, "ttl", ttl, "renewable", renewable)
	return tok, nil
}

// login obtains a token: AppRole or kubernetes login, or the token file
// (checked with lookup-self, which also tells its TTL).
func (a *authenticator) login(ctx context.Context) (string, time.Duration, bool, error) {
	if a.kube != nil {
		jwt, err := readCredentialFile(a.kube.JWTFile, "service account token", maxJWTFile)
		if err != nil {
			return "", 0, false, err
		}
		return a.loginWith(ctx, "kubernetes", "auth/"+a.kube.Mount+"/login", map[string]any{"role": a.kube.Role, "jwt": jwt})
	}
	if a.appRole != nil {
		roleID, err := readSecretFile(a.appRole.RoleIDFile, "role_id")
		if err != nil {
			return "", 0, false, err
		}
		secretID, err := readSecretFile(a.appRole.SecretIDFile, "secret_id")
		if err != nil {
			return "", 0, false, err
		}
		return a.loginWith(ctx, "approle", "auth/"+a.appRole.Mount+"/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	}
	tok, err := readSecretFile(a.tokenFile, "token")
	if err != nil {
		return "", 0, false, err
	}
	d, err := a.t.call(ctx, http.MethodGet, "auth/token/lookup-self", nil, tok)
	if errors.Is(err, ErrPermissionDenied) {
		return "", 0, false, fmt.Errorf("%w: the token in %s is invalid or expired, or may not look itself up (give it the default policy)", ErrPermissionDenied, a.tokenFile)
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("look up token: %w", err)
	}
	ttl, _ := jsonInt64(d["ttl"])
	if exp, _ := d["expire_time"].(string); exp != "" && ttl < 1 {
		ttl = 1 // expiring within the second, not a token without expiry
	}
	renewable, _ := d["renewable"].(bool)
	return tok, time.Duration(ttl) * time.Second, renewable, nil
}

// loginWith posts a login request of the named method to path.
func (a *authenticator) loginWith(ctx context.Context, method, path string, body map[string]any) (string, time.Duration, bool, error) {
	auth, err := a.t.call(ctx, http.MethodPost, path, body, "")
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return "", 0, false, fmt.Errorf("%w: %s login refused: %s", ErrPermissionDenied, method, strings.Join(ae.errors, "; "))
		}
		return "", 0, false, fmt.Errorf("%s login: %w", method, err)
	}
	tok, _ := auth["client_token"].(string)
	if tok == "" {
		return "", 0, false, fmt.Errorf("%w: %s login answered without a token", ErrUnavailable, method)
	}
	ttl, _ := jsonInt64(auth["lease_duration"])
	renewable, _ := auth["renewable"].(bool)
	return tok, time.Duration(ttl) * time.Second, renewable, nil
}

// run renews the token at two thirds of its TTL; when renewal is refused
// (maximum TTL reached, token revoked, not renewable) it logs in again.
// Failed attempts are retried with backoff (1 s doubling to 30 s).
func (a *authenticator) run(ctx context.Context) {
	backoff := time.Second
	for {
		a.mu.Lock()
		tok, ttl, renewable, at, changed := a.tok, a.ttl, a.renew, a.at, a.changed
		a.mu.Unlock()
		var wait time.Duration
		forever := false
		var act func() error
		switch {
		case tok == "":
			act = func() error { _, err := a.relogin(ctx, ""); return err }
		case ttl <= 0:
			forever = true // does not expire: wait for a change
		default:
			wait = time.Until(at.Add(ttl * 2 / 3))
			if renewable {
				act = func() error { return a.renewOrRelogin(ctx, tok) }
			} else {
				act = func() error { _, err := a.relogin(ctx, tok); return err }
			}
		}
		if forever || wait > 0 {
			var tc <-chan time.Time
			var tm *time.Timer
			if !forever {
				tm = time.NewTimer(wait)
				tc = tm.C
			}
			select {
			case <-ctx.Done():
			case <-changed:
			case <-tc:
			}
			if tm != nil {
				tm.Stop()
			}
			if ctx.Err() != nil {
				return
			}
			a.mu.Lock()
			moved := a.tok != tok || !a.at.Equal(at)
			a.mu.Unlock()
			if moved {
				continue
			}
		}
		if act == nil {
			continue
		}
		if err := act(); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("coffer token not refreshed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = time.Second
	}
}

// renewOrRelogin renews tok; if Coffer refuses the renewal, it logs in
// again. While Coffer is unreachable or sealed the error is returned (and
// retried) without giving up on tok, which may still be valid after.
func (a *authenticator) renewOrRelogin(ctx context.Context, tok string) error {
	auth, err := a.t.call(ctx, http.MethodPost, "auth/token/renew-self", map[string]any{}, tok)
	if err == nil {
		ttl, _ := jsonInt64(auth["lease_duration"])
		renewable, _ := auth["renewable"].(bool)
		a.mu.Lock()
		if a.tok == tok {
			a.ttl, a.renew, a.at = time.Duration(ttl)*time.Second, renewable, time.Now()
		}
		a.mu.Unlock()
		a.log.Debug("renewed coffer token", "ttl", time.Duration(ttl)*time.Second)
		// A renewal capped by the token's maximum TTL comes back short;
		// the next round logs in again before it runs out.
		return nil
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSealed) {
		return fmt.Errorf("renew token: %w", err)
	}
	a.log.Info("coffer token renewal refused; logging in again", "err", err)
	_, err = a.relogin(ctx, tok)
	return err
}

// maxJWTFile bounds a service account token file.
const maxJWTFile = 16 << 10

// readSecretFile reads a one-line credential file (token, role_id,
// secret_id). It must be non-empty and at most 4 kB.
func readSecretFile(path, what string) (string, error) {
	return readCredentialFile(path, what, 4096)
}

// readCredentialFile reads a one-line credential file of at most limit
// bytes.
func readCredentialFile(path, what string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("%s file %s is larger than %d kB", what, path, limit>>10)
	}
	s := strings.TrimSpace(string(b))
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s file %s must hold exactly one non-empty line", what, path)
	}
	return s, nil
}
