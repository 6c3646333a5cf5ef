package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"k8s.io/client-go/rest"

	"github.com/coffer-dev/coffer/internal/logical"
)

// reviewTimeout bounds one TokenReview call.
const reviewTimeout = 10 * time.Second

// reviewer is the credential and trust used to call the TokenReview API.
type reviewer struct {
	host      string
	caPEM     string
	token     string
	clientJWT bool // the reviewer is the logging-in token itself
}

// reviewerFor picks the reviewer credential and CA for a login: the
// configured ones, else the pod's own (re-read from disk periodically, so a
// rotated projected token is picked up), else the client's JWT and the
// system roots.
func (b *Backend) reviewerFor(cfg *config, clientJWT string) (*reviewer, error) {
	rv := &reviewer{host: cfg.Host, caPEM: cfg.CACert, token: cfg.TokenReviewerJWT}
	now := b.now()
	if rv.token == "" && !cfg.DisableLocalCAJWT {
		tok, ok, err := b.tokenFile.get(now)
		if err != nil {
			b.log.Error("kubernetes auth: cannot read the local service account token", "path", b.tokenFile.path, "err", err)
			return nil, fmt.Errorf("%w: kubernetes: cannot read the local service account token", logical.ErrInternal)
		}
		if ok {
			rv.token = tok
		}
	}
	if rv.caPEM == "" && !cfg.DisableLocalCAJWT {
		ca, ok, err := b.caFile.get(now)
		if err != nil {
			b.log.Error("kubernetes auth: cannot read the local CA certificate", "path", b.caFile.path, "err", err)
			return nil, fmt.Errorf("%w: kubernetes: cannot read the local CA certificate", logical.ErrInternal)
		}
		if ok {
			rv.caPEM = ca
		}
	}
	if rv.token == "" {
		rv.token, rv.clientJWT = clientJWT, true
	}
	return rv, nil
}

// review sends jwt to the TokenReview API. API and transport failures
// become 502 errors naming the cause; neither token ever appears in them.
// When the reviewer is the client's own JWT, the API server refusing it
// means the login is refused (403).
func (b *Backend) review(ctx context.Context, rv *reviewer, jwt string, audiences []string) (*authv1.TokenReviewStatus, error) {
	rc := &rest.Config{
		Host:            rv.host,
		BearerToken:     rv.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte(rv.caPEM)},
		Timeout:         reviewTimeout,
		UserAgent:       "coffer-auth-kubernetes",
		QPS:             -1, // no client-side rate limit: logins are not batch work
	}
	cl, err := authclient.NewForConfig(rc)
	if err != nil {
		b.log.Error("kubernetes auth: build API client", "err", err)
		return nil, fmt.Errorf("%w: kubernetes: cannot build an API client for kubernetes_host", logical.ErrUpstream)
	}
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	res, err := cl.TokenReviews().Create(ctx, &authv1.TokenReview{
		Spec: authv1.TokenReviewSpec{Token: jwt, Audiences: audiences},
	}, metav1.CreateOptions{})
	if err == nil {
		return &res.Status, nil
	}
	var status apierrors.APIStatus
	var uerr *url.Error
	switch {
	case rv.clientJWT && (apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err)):
		b.log.Debug("kubernetes auth: login token refused as reviewer", "code", apiCode(err))
		return nil, logical.ErrPermissionDenied
	case apierrors.IsUnauthorized(err):
		b.log.Warn("kubernetes auth: the API server refused the token reviewer's credentials", "host", rv.host)
		return nil, fmt.Errorf("%w: kubernetes: the API server refused the token reviewer's credentials (401); check token_reviewer_jwt", logical.ErrUpstream)
	case apierrors.IsForbidden(err):
		b.log.Warn("kubernetes auth: the token reviewer may not create tokenreviews", "host", rv.host)
		return nil, fmt.Errorf("%w: kubernetes: the token reviewer is not allowed to create tokenreviews (403); bind it to the system:auth-delegator cluster role", logical.ErrUpstream)
	case errors.As(err, &status):
		s := status.Status()
		b.log.Warn("kubernetes auth: token review failed", "host", rv.host, "code", s.Code, "reason", s.Reason)
		return nil, fmt.Errorf("%w: kubernetes: token review failed: the API server answered %d %s", logical.ErrUpstream, s.Code, s.Reason)
	case errors.As(err, &uerr):
		b.log.Warn("kubernetes auth: API server unreachable", "host", rv.host, "err", uerr.Err)
		return nil, fmt.Errorf("%w: kubernetes: API server %s unreachable: %s", logical.ErrUpstream, rv.host, causeOf(uerr.Err))
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: kubernetes: API server %s did not answer within %s", logical.ErrUpstream, rv.host, reviewTimeout)
	default:
		b.log.Warn("kubernetes auth: token review failed", "host", rv.host, "err", err)
		return nil, fmt.Errorf("%w: kubernetes: token review against %s failed", logical.ErrUpstream, rv.host)
	}
}

func apiCode(err error) int32 {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code
	}
	return 0
}

// causeOf describes a transport error in a few words. The errors of
// net/http's transport name addresses and TLS problems, never headers or
// bodies, so the reviewer token cannot leak through them.
func causeOf(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}
