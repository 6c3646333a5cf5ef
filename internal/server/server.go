// Package server is Coffer's HTTP front: it turns /v1/ requests into
// logical requests for the core, enforces the request size limit and the
// request timeout, and maps errors to HTTP statuses in exactly one place
// (status.go).
//
// It must not be imported by core or anything below it.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/metrics"
)

// Handler is what the server needs from the core.
type Handler interface {
	HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error)
}

// Options configure the HTTP front.
type Options struct {
	// MaxRequestSize bounds every request body (413 beyond it).
	MaxRequestSize int64
	// RequestTimeout bounds the handling of one request.
	RequestTimeout time.Duration
	Logger         *slog.Logger
	// Metrics, if set, records every request by mount and status.
	Metrics *metrics.Set
	// LoginRate and LoginBurst bound login attempts per client address
	// (per second, and the burst allowed). LoginRate < 0 disables the limit;
	// 0 means the default (5/s, burst 20).
	LoginRate  float64
	LoginBurst int
}

// maxJSONDepth bounds the nesting of request bodies so a deeply nested
// document is refused before it costs memory or stack.
const maxJSONDepth = 64

// Server serves the /v1/ API.
type Server struct {
	h      Handler
	opts   Options
	log    *slog.Logger
	logins *loginLimiter
}

// New returns a server in front of h.
func New(h Handler, opts Options) *Server {
	if opts.MaxRequestSize <= 0 {
		opts.MaxRequestSize = 32 << 20
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 90 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.LoginRate == 0:
		opts.LoginRate, opts.LoginBurst = 5, 20
	case opts.LoginBurst <= 0:
		opts.LoginBurst = 1
	}
	return &Server{h: h, opts: opts, log: log, logins: newLoginLimiter(opts.LoginRate, opts.LoginBurst)}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		s.writeError(w, r, logical.ErrUnsupportedPath)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	var req *logical.Request
	defer func() {
		mount, op := "", ""
		if req != nil {
			mount, op = req.MountPoint, string(req.Operation)
		}
		s.opts.Metrics.ObserveRequest(mount, op, sw.status, time.Since(start))
	}()
	if isLoginPath(strings.TrimPrefix(r.URL.Path, "/v1/")) && !s.logins.allow(r.RemoteAddr, start) {
		s.opts.Metrics.LoginLimited()
		sw.Header().Set("Retry-After", "1")
		s.writeError(sw, r, logical.ErrRateLimited)
		return
	}
	var err error
	req, err = s.buildRequest(sw, r)
	if err != nil {
		s.writeError(sw, r, err)
		return
	}
	resp, err := s.h.HandleRequest(ctx, req)
	if err != nil {
		s.writeError(sw, r, err)
		return
	}
	s.writeResponse(sw, r, req, resp)
}

// statusWriter remembers the status written, for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) buildRequest(w http.ResponseWriter, r *http.Request) (*logical.Request, error) {
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if ns := strings.Trim(r.Header.Get("X-Vault-Namespace"), "/"); ns != "" && ns != "root" {
		return nil, logical.BadRequest("namespaces are not supported (got namespace %q)", ns)
	}
	q := r.URL.Query()
	var op logical.Operation
	switch r.Method {
	case http.MethodGet:
		op = logical.ReadOperation
		if l := q.Get("list"); l != "" {
			if b, err := parseBool(l); err == nil && b {
				op = logical.ListOperation
			}
		}
	case "LIST":
		op = logical.ListOperation
	case http.MethodPost, http.MethodPut:
		op = logical.UpdateOperation
	case http.MethodDelete:
		op = logical.DeleteOperation
	case http.MethodPatch:
		op = logical.PatchOperation
	case http.MethodHead:
		op = logical.HeadOperation
	default:
		return nil, logical.ErrUnsupportedOperation
	}
	if op == logical.ListOperation && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	req := &logical.Request{
		ID:          newRequestID(),
		Operation:   op,
		Path:        path,
		Query:       q,
		ClientToken: requestToken(r),
		RemoteAddr:  r.RemoteAddr,
		ContentType: r.Header.Get("Content-Type"),
		Headers:     safeHeaders(r.Header),
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	body, err := readBody(w, r, s.opts.MaxRequestSize)
	if err != nil {
		return nil, err
	}
	data, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	if data == nil {
		data = map[string]any{}
	}
	// Vault merges query parameters into the data of bodiless requests.
	if op == logical.ReadOperation || op == logical.ListOperation || op == logical.DeleteOperation || op == logical.HeadOperation {
		for k, v := range q {
			if k == "list" || len(v) == 0 {
				continue
			}
			if _, ok := data[k]; !ok {
				data[k] = v[0]
			}
		}
	}
	req.Data = data
	return req, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "t", "true":
		return true, nil
	case "0", "f", "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

// checkPath refuses paths that cannot name anything: "..", empty segments
// and control characters.
func checkPath(p string) error {
	if p == "" {
		return logical.ErrUnsupportedPath
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return logical.BadRequest("path contains a control character")
		}
	}
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for _, s := range segs {
		switch s {
		case "":
			return logical.BadRequest("path contains an empty segment")
		case "..", ".":
			return logical.BadRequest("path contains a %q segment", s)
		}
	}
	return nil
}

func requestToken(r *http.Request) string {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// safeHeaders copies the request headers minus credentials.
func safeHeaders(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		switch http.CanonicalHeaderKey(k) {
		case "X-Vault-Token", "Authorization", "Cookie", "Proxy-Authorization":
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, logical.ErrTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, logical.ErrTooLarge
		}
		return nil, logical.BadRequest("failed to read request body")
	}
	return body, nil
}

// decodeBody parses a JSON object body. Numbers stay json.Number so that
// large integers survive; nesting is bounded before decoding.
func decodeBody(body []byte) (map[string]any, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	if err := checkDepth(body, maxJSONDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, logical.BadRequest("failed to parse JSON input: %s", jsonErrorMsg(err))
	}
	if dec.More() {
		return nil, logical.BadRequest("failed to parse JSON input: trailing data after the JSON object")
	}
	if v == nil {
		// A JSON null is an empty body: the Vault client sends "null" for
		// Logical().Write(path, nil), and Vault accepts it.
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, logical.BadRequest("failed to parse JSON input: the body must be a JSON object")
	}
	return m, nil
}

func jsonErrorMsg(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "invalid JSON"
}

// checkDepth scans body for nesting deeper than max without decoding it.
func checkDepth(body []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return logical.BadRequest("failed to parse JSON input: nesting deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// Serve serves on ln until ctx is done, then shuts down gracefully,
// waiting up to grace for requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
