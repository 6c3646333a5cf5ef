package sealedsecret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// DefaultListenAddr is the Bitnami controller's: the Service in front of
// it (and kubeseal through the API server proxy) uses port 8080.
const DefaultListenAddr = ":8080"

// maxBody bounds a SealedSecret sent to /v1/verify or /v1/rotate (an
// object cannot exceed ~1.5 MiB in etcd anyway).
const maxBody = 2 << 20

// Server is the HTTP API kubeseal talks to (through the API server's
// service proxy): /healthz, /v1/cert.pem, /v1/verify and /v1/rotate. It
// serves no secret material: verify answers only 200 or 409, and rotate
// returns ciphertext. Neither ever renders spec.template.data, so they
// cannot be used as an oracle over sealed values.
type Server struct {
	addr   string
	keys   *KeyRegistry
	legacy bool
	limits *limiter
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
}

// NewServer makes the API server; rps and burst limit /v1/verify and
// /v1/rotate per client (Bitnami's --rate-limit and --rate-limit-burst).
func NewServer(addr string, keys *KeyRegistry, acceptLegacy bool, rps float64, burst int, log *slog.Logger) *Server {
	s := &Server{addr: addr, keys: keys, legacy: acceptLegacy, limits: newLimiter(rps, burst), log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /v1/cert.pem", s.instrument("/v1/cert.pem", s.cert))
	mux.HandleFunc("POST /v1/verify", s.instrument("/v1/verify", s.limited(s.verify)))
	mux.HandleFunc("POST /v1/rotate", s.instrument("/v1/rotate", s.limited(s.rotate)))
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	return s
}

// Handler returns the routes (for tests).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Addr returns the listening address once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Listen binds the address, so that a port in use fails Setup, not later.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("sealed secrets API: %w", err)
	}
	s.ln = ln
	return nil
}

// NeedLeaderElection: every replica serves the API.
func (s *Server) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (s *Server) Start(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.log.Info("sealed secrets API serving", "addr", s.ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return s.srv.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) instrument(path string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		httpRequests.WithLabelValues(path, strconv.Itoa(sw.code), strings.ToLower(r.Method)).Inc()
	}
}

func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.limits.allow(r) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		h(w, r)
	}
}

func (s *Server) cert(w http.ResponseWriter, r *http.Request) {
	k := s.keys.Newest()
	if k == nil {
		http.Error(w, "cannot get certificate: no sealing key yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(k.CertPEM())
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.readSealedSecret(w, r)
	if !ok {
		return
	}
	if err := sealedsecrets.Verify(ss, s.keys.Keys(), sealedsecrets.UnsealOptions{AcceptLegacyData: s.legacy}); err != nil {
		if errors.Is(err, sealedsecrets.ErrLegacyData) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.readSealedSecret(w, r)
	if !ok {
		return
	}
	newest := s.keys.Newest()
	if newest == nil {
		http.Error(w, "no sealing key yet", http.StatusServiceUnavailable)
		return
	}
	out, err := sealedsecrets.Reencrypt(ss, s.keys.Keys(), newest.Public(), sealedsecrets.UnsealOptions{AcceptLegacyData: s.legacy})
	switch {
	case errors.Is(err, sealedsecrets.ErrScopeWidened), errors.Is(err, sealedsecrets.ErrLegacyData):
		s.log.Info("refused re-encryption", "namespace", ss.Namespace, "name", ss.Name, "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		// One answer for every decryption failure.
		http.Error(w, "unable to decrypt sealed secret", http.StatusConflict)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// readSealedSecret decodes one SealedSecret (JSON or YAML) from the body;
// anything else is a 400 with a reason that quotes nothing from the body.
func (s *Server) readSealedSecret(w http.ResponseWriter, r *http.Request) (*sealedsecrets.SealedSecret, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return nil, false
	}
	ss, err := DecodeSealedSecret(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return ss, true
}

// DecodeSealedSecret parses exactly one bitnami.com/v1alpha1
// SealedSecret, JSON or YAML.
func DecodeSealedSecret(b []byte) (*sealedsecrets.SealedSecret, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errors.New("invalid SealedSecret: not a JSON or YAML object")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid SealedSecret: expected exactly one object")
	}
	var ss sealedsecrets.SealedSecret
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, errors.New("invalid SealedSecret: malformed object")
	}
	if ss.APIVersion != sealedsecrets.GroupVersion.String() || ss.Kind != sealedsecrets.Kind {
		return nil, fmt.Errorf("unexpected resource type %q %q: want %s %s", ss.APIVersion, ss.Kind, sealedsecrets.GroupVersion, sealedsecrets.Kind)
	}
	return &ss, nil
}

// limiter is a token bucket per client and path, and one per path for
// everyone (ten times the per-client allowance), so that a client that
// spoofs X-Forwarded-For to get fresh buckets is still bounded.
type limiter struct {
	rps   rate.Limit
	burst int
	now   func() time.Time // time.Now; tests freeze it

	mu      sync.Mutex
	clients map[string]*clientBucket
	global  map[string]*rate.Limiter
}

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const maxClients = 10000

func newLimiter(rps float64, burst int) *limiter {
	return &limiter{rps: rate.Limit(rps), burst: max(burst, 1), now: time.Now, clients: map[string]*clientBucket{}, global: map[string]*rate.Limiter{}}
}

// clientKey: the peer address, plus the last X-Forwarded-For entry, which
// the API server's proxy appends with the real client's address.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		parts := strings.Split(xff[len(xff)-1], ",")
		host += "|" + strings.TrimSpace(parts[len(parts)-1])
	}
	return host
}

func (l *limiter) allow(r *http.Request) bool {
	if l.rps <= 0 {
		return true
	}
	path := r.URL.Path
	key := path + " " + clientKey(r)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	g, ok := l.global[path]
	if !ok {
		g = rate.NewLimiter(l.rps*10, l.burst*10)
		l.global[path] = g
	}
	b, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= maxClients {
			for k, v := range l.clients {
				if now.Sub(v.seen) > time.Minute {
					delete(l.clients, k)
				}
			}
			if len(l.clients) >= maxClients {
				clear(l.clients)
			}
		}
		b = &clientBucket{lim: rate.NewLimiter(l.rps, l.burst)}
		l.clients[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1) && g.AllowN(now, 1)
}
