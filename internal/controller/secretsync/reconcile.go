package secretsync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/coffer-dev/coffer/internal/controller/secretsync/v1alpha1"
)

// reconciler syncs SecretSyncs.
type reconciler struct {
	client   client.Client // cached reads of SecretSyncs; writes
	api      client.Reader // uncached reads of Secrets (data is never cached)
	scheme   *runtime.Scheme
	recorder record.EventRecorder
	coffer   *cofferClient
	tokens   *tokenCache
	opts     Options
	now      func() time.Time

	mu    sync.Mutex
	state map[types.NamespacedName]*syncState
}

// syncState is what the controller remembers of a SecretSync between
// reconciles. It is seeded from the status after a restart; in memory it
// is authoritative, because the cached status may lag behind our writes.
type syncState struct {
	uid        types.UID
	generation int64
	ok         bool // the last attempt succeeded
	refreshed  time.Time
	syncedRV   string
	force      string
	lease      *v1alpha1.LeaseStatus
}

func newReconciler(mgr manager.Manager, opts Options) *reconciler {
	cc := &cofferClient{hc: opts.HTTPClient}
	return &reconciler{
		client:   mgr.GetClient(),
		api:      mgr.GetAPIReader(),
		scheme:   mgr.GetScheme(),
		recorder: mgr.GetEventRecorderFor("coffer-secretsync"),
		coffer:   cc,
		tokens:   &tokenCache{kube: mgr.GetClient(), coffer: cc, now: time.Now, entries: map[tokenKey]*tokenEntry{}},
		opts:     opts,
		now:      time.Now,
		state:    map[types.NamespacedName]*syncState{},
	}
}

func (r *reconciler) stateOf(ss *v1alpha1.SecretSync) *syncState {
	key := client.ObjectKeyFromObject(ss)
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.state[key]; st != nil && st.uid == ss.UID {
		return st
	}
	st := &syncState{uid: ss.UID, generation: ss.Status.ObservedGeneration, syncedRV: ss.Status.SyncedResourceVersion,
		force: ss.Status.ForceSyncRequest}
	if ss.Status.RefreshTime != nil {
		st.refreshed = ss.Status.RefreshTime.Time
	}
	if c := meta.FindStatusCondition(ss.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
		st.ok = true
	}
	if ss.Status.Lease != nil {
		st.lease = ss.Status.Lease.DeepCopy()
	}
	r.state[key] = st
	return st
}

func (r *reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.state, key)
}

type action int

const (
	actWait  action = iota // nothing due; requeue after the wait
	actSync                // read the source (or issue new credentials)
	actRenew               // renew the lease of the credentials in place
)

// decide says what is due for ss now, and otherwise how long to wait.
func decide(ss *v1alpha1.SecretSync, st *syncState, p *plan, target *corev1.Secret, now time.Time) (action, time.Duration) {
	switch {
	case st.generation != ss.Generation, !st.ok, st.refreshed.IsZero():
		return actSync, 0
	case ss.Annotations[v1alpha1.ForceSyncAnnotation] != "" && ss.Annotations[v1alpha1.ForceSyncAnnotation] != st.force:
		return actSync, 0
	case p.writes() && target == nil:
		return actSync, 0
	case (p.creation == v1alpha1.CreationOwner || p.creation == v1alpha1.CreationOrphan) && target.ResourceVersion != st.syncedRV:
		return actSync, 0 // someone else changed the Secret: put it back
	}
	if p.db != nil {
		if st.lease == nil {
			return actSync, 0
		}
		if !now.Before(st.lease.RenewTime.Time) {
			return actRenew, 0
		}
		return actWait, st.lease.RenewTime.Sub(now)
	}
	if p.refresh == 0 {
		return actWait, 0
	}
	next := st.refreshed.Add(p.refresh)
	if !now.Before(next) {
		return actSync, 0
	}
	return actWait, next.Sub(now)
}

// Reconcile brings one SecretSync's target Secret in line with Coffer.
func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	res, err := r.reconcile(ctx, req)
	if err != nil && ctx.Err() != nil {
		// The manager is stopping; the error is only the cancellation.
		return reconcile.Result{}, nil
	}
	return res, err
}

func (r *reconciler) reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var ss v1alpha1.SecretSync
	if err := r.client.Get(ctx, req.NamespacedName, &ss); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if ss.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	st := r.stateOf(&ss)
	p, err := resolve(ss.Namespace, ss.Name, &ss.Spec, &r.opts)
	if err != nil {
		return r.failed(ctx, &ss, st, err)
	}
	var target *corev1.Secret
	if p.writes() {
		if target, err = r.getSecret(ctx, ss.Namespace, p.targetName); err != nil {
			return reconcile.Result{}, err
		}
	}
	now := r.now()
	act, wait := decide(&ss, st, p, target, now)
	switch act {
	case actWait:
		return reconcile.Result{RequeueAfter: wait}, nil
	case actRenew:
		ok, err := r.renewLease(ctx, &ss, st, p, now)
		if err != nil {
			return reconcile.Result{}, err
		}
		if ok {
			return reconcile.Result{RequeueAfter: st.lease.RenewTime.Sub(now)}, nil
		}
		logger.V(1).Info("lease cannot be extended enough; issuing new credentials")
	}
	return r.sync(ctx, &ss, st, p, target, now)
}

func (r *reconciler) getSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	err := r.api.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read target Secret: %w", err)
	}
	return &s, nil
}

// withToken runs fn with a Coffer token for p, logging in again once if
// Coffer refuses a cached token (it may have been revoked).
func (r *reconciler) withToken(ctx context.Context, p *plan, keep float64, fn func(tok *cofferToken) error) error {
	tok, err := r.tokens.get(ctx, p.tokenKey, keep)
	if err != nil {
		return err
	}
	err = fn(tok)
	if !isStatus(err, http.StatusForbidden) {
		return err
	}
	r.tokens.invalidate(p.tokenKey, tok)
	if tok, err = r.tokens.get(ctx, p.tokenKey, keep); err != nil {
		return err
	}
	return fn(tok)
}

// sync reads the source (or issues credentials), writes the target and
// records the result.
func (r *reconciler) sync(ctx context.Context, ss *v1alpha1.SecretSync, st *syncState, p *plan, target *corev1.Secret, now time.Time) (reconcile.Result, error) {
	var fetched map[string]any
	var kvVersion int64
	var lease *v1alpha1.LeaseStatus
	source := "kv"
	if p.kv != nil {
		where := p.kv.Mount + "/data/" + p.kv.Path
		err := r.withToken(ctx, p, 1.0/3, func(tok *cofferToken) error {
			sec, err := r.coffer.readKV(ctx, p.addr, tok.value, p.kv.Mount, p.kv.Path, p.kv.Version)
			if err != nil {
				return err
			}
			fetched, kvVersion = sec.Data, sec.Version
			return nil
		})
		if errors.Is(err, errSourceNotFound) {
			return r.sourceGone(ctx, ss, st, p, target, where)
		}
		if err != nil {
			syncsTotal.WithLabelValues(source, "error").Inc()
			return r.failed(ctx, ss, st, wrapRead("read "+where, err))
		}
	} else {
		source = "database"
		where := p.db.Mount + "/creds/" + p.db.Role
		err := r.withToken(ctx, p, 1.0/2, func(tok *cofferToken) error {
			l, err := r.coffer.creds(ctx, p.addr, tok.value, p.db.Mount, p.db.Role)
			if err != nil {
				return err
			}
			fetched = l.Data
			lease = newLease(l, tok, now)
			return nil
		})
		if err != nil {
			syncsTotal.WithLabelValues(source, "error").Inc()
			return r.failed(ctx, ss, st, wrapRead("issue credentials from "+where, err))
		}
	}
	data, err := render(p, fetched)
	if err != nil {
		syncsTotal.WithLabelValues(source, "error").Inc()
		return r.failed(ctx, ss, st, &syncError{msg: err.Error()})
	}
	rv, changed, err := r.writeTarget(ctx, ss, p, target, data)
	if err != nil {
		syncsTotal.WithLabelValues(source, "error").Inc()
		return r.failed(ctx, ss, st, err)
	}
	syncsTotal.WithLabelValues(source, "ok").Inc()
	wasOK := st.ok
	st.generation, st.ok, st.refreshed, st.syncedRV = ss.Generation, true, now, rv
	st.force = ss.Annotations[v1alpha1.ForceSyncAnnotation]
	if lease != nil {
		st.lease = lease
	}
	if changed {
		r.recorder.Eventf(ss, corev1.EventTypeNormal, "Updated", "Secret %q updated from Coffer", p.targetName)
	} else if !wasOK {
		r.recorder.Eventf(ss, corev1.EventTypeNormal, v1alpha1.ReasonSynced, "Secret %q in sync with Coffer", p.targetName)
	}
	err = r.writeStatus(ctx, ss, st, metav1.ConditionTrue, v1alpha1.ReasonSynced, "secret synced", func(s *v1alpha1.SecretSyncStatus) {
		s.SourceVersion = kvVersion
	})
	if err != nil {
		return reconcile.Result{}, err
	}
	if p.db != nil {
		return reconcile.Result{RequeueAfter: st.lease.RenewTime.Sub(now)}, nil
	}
	return reconcile.Result{RequeueAfter: p.refresh}, nil
}

// wrapRead turns a Coffer error into a status message: "read
// secret/data/app: permission denied".
func wrapRead(what string, err error) error {
	var se *syncError
	if errors.As(err, &se) {
		return err
	}
	return &syncError{msg: what + ": " + err.Error(), err: err}
}

// newLease computes the renewal schedule of freshly issued credentials:
// they stop working when their lease ends or when the token that issued
// them expires (Coffer revokes a token's leases with it), and are renewed
// or replaced at two thirds of that time.
func newLease(l *leased, tok *cofferToken, now time.Time) *v1alpha1.LeaseStatus {
	expire := now.Add(l.TTL)
	ls := &v1alpha1.LeaseStatus{ID: l.LeaseID, Renewable: l.Renewable, DurationSeconds: int64(l.TTL / time.Second),
		IssueTime: metav1.NewTime(now)}
	if te := tok.expire(); !te.IsZero() {
		ls.TokenExpireTime = ptr(metav1.NewTime(te))
		if te.Before(expire) {
			expire = te
		}
	}
	ls.ExpireTime = metav1.NewTime(expire)
	ls.RenewTime = metav1.NewTime(now.Add(expire.Sub(now) * 2 / 3))
	return ls
}

// renewLease extends the lease of the credentials in the target Secret.
// It reports false when the lease cannot be extended by at least half its
// original duration (its max TTL or the issuing token's life is near), so
// new credentials must be issued.
func (r *reconciler) renewLease(ctx context.Context, ss *v1alpha1.SecretSync, st *syncState, p *plan, now time.Time) (bool, error) {
	l := st.lease
	if !l.Renewable {
		return false, nil
	}
	dur := time.Duration(l.DurationSeconds) * time.Second
	var granted time.Duration
	err := r.withToken(ctx, p, 1.0/3, func(tok *cofferToken) error {
		var err error
		granted, err = r.coffer.renew(ctx, p.addr, tok.value, l.ID, dur)
		return err
	})
	if err != nil {
		log.FromContext(ctx).Info("lease renewal failed; issuing new credentials", "reason", err.Error())
		return false, nil
	}
	expire := now.Add(granted)
	if l.TokenExpireTime != nil && l.TokenExpireTime.Time.Before(expire) {
		expire = l.TokenExpireTime.Time
	}
	if expire.Sub(now) < dur/2 {
		return false, nil
	}
	nl := l.DeepCopy()
	nl.ExpireTime = metav1.NewTime(expire)
	nl.RenewTime = metav1.NewTime(now.Add(expire.Sub(now) * 2 / 3))
	st.lease = nl
	r.recorder.Eventf(ss, corev1.EventTypeNormal, "LeaseRenewed", "lease of the credentials in Secret %q renewed until %s", p.targetName, expire.UTC().Format(time.RFC3339))
	return true, r.writeStatus(ctx, ss, st, metav1.ConditionTrue, v1alpha1.ReasonSynced, "secret synced", nil)
}

// sourceGone handles a KV source that no longer exists.
func (r *reconciler) sourceGone(ctx context.Context, ss *v1alpha1.SecretSync, st *syncState, p *plan, target *corev1.Secret, where string) (reconcile.Result, error) {
	st.generation, st.ok = ss.Generation, false
	st.force = ss.Annotations[v1alpha1.ForceSyncAnnotation]
	requeue := reconcile.Result{RequeueAfter: p.refresh}
	if p.refresh == 0 {
		requeue = reconcile.Result{}
	}
	if p.deletion == v1alpha1.DeletionDelete && (target == nil || manages(ss, target)) {
		if target != nil {
			err := r.client.Delete(ctx, target, client.Preconditions{UID: &target.UID, ResourceVersion: &target.ResourceVersion})
			if err != nil && !apierrors.IsNotFound(err) {
				return r.failed(ctx, ss, st, &syncError{msg: fmt.Sprintf("delete Secret %q: %v", p.targetName, err), err: err})
			}
			r.recorder.Eventf(ss, corev1.EventTypeNormal, "Deleted", "source secret %s not found; Secret %q deleted", where, p.targetName)
		}
		st.syncedRV = ""
		msg := fmt.Sprintf("source secret %s not found; Secret %q deleted (deletionPolicy Delete)", where, p.targetName)
		return requeue, r.writeStatus(ctx, ss, st, metav1.ConditionFalse, v1alpha1.ReasonSecretDeleted, msg, nil)
	}
	msg := fmt.Sprintf("source secret %s not found", where)
	if target != nil {
		msg += "; the last synced Secret is kept (deletionPolicy Retain)"
	}
	prev := meta.FindStatusCondition(ss.Status.Conditions, v1alpha1.ConditionReady)
	if prev == nil || prev.Message != msg {
		r.recorder.Event(ss, corev1.EventTypeWarning, "SyncFailed", msg)
	}
	return requeue, r.writeStatus(ctx, ss, st, metav1.ConditionFalse, v1alpha1.ReasonSyncedError, msg, nil)
}

// failed records a failed sync. Spec errors wait for the spec to change;
// other errors are retried with backoff.
func (r *reconciler) failed(ctx context.Context, ss *v1alpha1.SecretSync, st *syncState, err error) (reconcile.Result, error) {
	st.generation, st.ok = ss.Generation, false
	msg := err.Error()
	prev := meta.FindStatusCondition(ss.Status.Conditions, v1alpha1.ConditionReady)
	if prev == nil || prev.Message != msg || prev.Status != metav1.ConditionFalse {
		r.recorder.Event(ss, corev1.EventTypeWarning, "SyncFailed", msg)
	}
	if serr := r.writeStatus(ctx, ss, st, metav1.ConditionFalse, v1alpha1.ReasonSyncedError, msg, nil); serr != nil {
		return reconcile.Result{}, serr
	}
	var se *specError
	if errors.As(err, &se) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, err
}

// writeStatus patches the status from st and the Ready condition, if
// anything changed.
func (r *reconciler) writeStatus(ctx context.Context, ss *v1alpha1.SecretSync, st *syncState, status metav1.ConditionStatus, reason, msg string, extra func(*v1alpha1.SecretSyncStatus)) error {
	orig := ss.DeepCopy()
	s := &ss.Status
	s.ObservedGeneration = ss.Generation
	meta.SetStatusCondition(&s.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: ss.Generation,
	})
	if !st.refreshed.IsZero() {
		s.RefreshTime = ptr(metav1.NewTime(st.refreshed).Rfc3339Copy())
	}
	s.SyncedResourceVersion = st.syncedRV
	s.ForceSyncRequest = st.force
	if st.lease != nil {
		l := st.lease.DeepCopy()
		l.IssueTime, l.ExpireTime, l.RenewTime = l.IssueTime.Rfc3339Copy(), l.ExpireTime.Rfc3339Copy(), l.RenewTime.Rfc3339Copy()
		if l.TokenExpireTime != nil {
			l.TokenExpireTime = ptr(l.TokenExpireTime.Rfc3339Copy())
		}
		s.Lease = l
	}
	if extra != nil {
		extra(s)
	}
	if equalStatus(&orig.Status, s) {
		return nil
	}
	if err := r.client.Status().Patch(ctx, ss, client.MergeFrom(orig)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func equalStatus(a, b *v1alpha1.SecretSyncStatus) bool {
	ac, bc := a.DeepCopy(), b.DeepCopy()
	// Transition times move only with the status; compare the rest.
	for i := range ac.Conditions {
		ac.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	for i := range bc.Conditions {
		bc.Conditions[i].LastTransitionTime = metav1.Time{}
	}
	return equality.Semantic.DeepEqual(ac, bc)
}
