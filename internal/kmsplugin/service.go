package kmsplugin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	kmsapi "k8s.io/kms/apis/v2"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// KEK is a key-encryption key the plugin wraps the apiserver's DEK seeds
// with: a Coffer transit key (Transit) or a local key (LocalKey).
type KEK interface {
	// Encrypt wraps plaintext with the key's current version and returns
	// the ciphertext and the key_id of the version used.
	Encrypt(ctx context.Context, plaintext []byte) (ciphertext []byte, keyID string, err error)
	// Decrypt unwraps a ciphertext that Encrypt returned with keyID.
	Decrypt(ctx context.Context, keyID string, ciphertext []byte) ([]byte, error)
	// Describe names the key for logs (no secrets).
	Describe() string
}

// Limits of the KMS v2 API (k8s.io/kms apis/v2) and of this plugin.
const (
	// APIVersion is the KMS plugin API version Status reports.
	APIVersion = "v2"
	// MaxPlaintext bounds Encrypt's input: the apiserver sends a 32-byte
	// DEK seed; anything much bigger would not fit the 1 kB ciphertext
	// limit once wrapped by transit.
	MaxPlaintext = 512
	// maxCiphertext is the KMS v2 limit on ciphertext (less than 1 kB).
	maxCiphertext = 1023
	// maxAnnotations is the KMS v2 limit on the total size of annotation
	// keys and values (32 kB).
	maxAnnotations = 32 * 1024

	// FormatAnnotation is the annotation Encrypt adds: the plugin's
	// ciphertext format version. Decrypt refuses ciphertexts without it.
	FormatAnnotation = "version.kms.coffer.dev"
	formatVersion    = "1"

	// healthPlaintext is what the health probe encrypts and decrypts.
	healthPlaintext = "coffer kms-plugin health probe"
)

// Options configure a Service.
type Options struct {
	// Logger receives structured logs; never plaintext or ciphertext.
	Logger *slog.Logger
	// HealthCacheTTL is how long a health probe result is reused by
	// Status (default 5 s). Failures are cached for at most 1 s, so that
	// recovery shows at once.
	HealthCacheTTL time.Duration
	// ProbeTimeout bounds one health probe (default 3 s).
	ProbeTimeout time.Duration
	// Metrics, if set, records requests; see NewMetrics.
	Metrics *Metrics
}

// Service implements the KMS v2 KeyManagementService on top of a KEK.
type Service struct {
	kmsapi.UnimplementedKeyManagementServiceServer

	kek     KEK
	log     *slog.Logger
	metrics *Metrics
	ttl     time.Duration
	timeout time.Duration

	probeMu   sync.Mutex // serializes probes; guards the fields below
	checkedAt time.Time
	lastErr   error
	lastKeyID string // key_id of the last successful probe
}

var _ kmsapi.KeyManagementServiceServer = (*Service)(nil)

// NewService returns a Service for kek.
func NewService(kek KEK, o Options) *Service {
	s := &Service{kek: kek, log: o.Logger, metrics: o.Metrics, ttl: o.HealthCacheTTL, timeout: o.ProbeTimeout}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.ttl <= 0 {
		s.ttl = 5 * time.Second
	}
	if s.timeout <= 0 {
		s.timeout = 3 * time.Second
	}
	return s
}

// Status reports healthz "ok" and the current key_id when an
// encrypt/decrypt round trip through the KEK works; otherwise the reason,
// and no key_id. kube-apiserver extends the life of its current write seed
// whenever Status names that seed's key_id, even with an unhealthy
// healthz; withholding the key_id makes it stop writing with a seed the
// key store can no longer vouch for (after its 3-minute grace), while
// reads keep working from its cache.
func (s *Service) Status(ctx context.Context, _ *kmsapi.StatusRequest) (*kmsapi.StatusResponse, error) {
	keyID, err := s.Health(ctx)
	if err != nil {
		return &kmsapi.StatusResponse{Version: APIVersion, Healthz: healthReason(err)}, nil
	}
	return &kmsapi.StatusResponse{Version: APIVersion, Healthz: "ok", KeyId: keyID}, nil
}

// Health runs (or reuses, within the cache TTL) the health probe and
// returns the current key_id, or why the KEK does not work.
func (s *Service) Health(ctx context.Context) (string, error) {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	age := time.Since(s.checkedAt)
	if !s.checkedAt.IsZero() && (age < s.ttl && s.lastErr == nil || age < time.Second && s.lastErr != nil) {
		if s.lastErr != nil {
			return "", s.lastErr
		}
		return s.lastKeyID, nil
	}
	// A caller that gives up must not leave a cached failure behind.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	keyID, err := s.probe(ctx)
	s.checkedAt = time.Now()
	wasErr, prevKeyID := s.lastErr, s.lastKeyID
	s.lastErr = err
	if err == nil {
		s.lastKeyID = keyID
		if wasErr != nil || prevKeyID == "" {
			s.log.Info("kms backend healthy", "key_id", keyID)
		}
		if prevKeyID != "" && prevKeyID != keyID {
			s.log.Info("key_id changed", "key_id", keyID, "previous_key_id", prevKeyID)
		}
	} else if wasErr == nil || wasErr.Error() != err.Error() {
		s.log.Warn("kms backend unhealthy", "reason", healthReason(err))
	}
	s.metrics.setHealthy(err == nil)
	if err != nil {
		return "", err
	}
	return s.lastKeyID, nil
}

func (s *Service) probe(ctx context.Context) (string, error) {
	ct, keyID, err := s.kek.Encrypt(ctx, []byte(healthPlaintext))
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	if err := checkKeyID(keyID); err != nil {
		return "", err
	}
	pt, err := s.kek.Decrypt(ctx, keyID, ct)
	if err != nil {
		return "", fmt.Errorf("decrypt: %w", err)
	}
	if subtle.ConstantTimeCompare(pt, []byte(healthPlaintext)) != 1 {
		return "", errors.New("round trip returned different plaintext")
	}
	return keyID, nil
}

// healthReason is the healthz text for err: one line, bounded.
func healthReason(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(msg) > 400 {
		msg = msg[:400] + "…"
	}
	return msg
}

func checkKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Errorf("backend returned a key_id of %d bytes (want 1 to %d)", len(id), maxKeyIDLen)
	}
	return nil
}

// Encrypt wraps a DEK seed.
func (s *Service) Encrypt(ctx context.Context, req *kmsapi.EncryptRequest) (*kmsapi.EncryptResponse, error) {
	pt := req.GetPlaintext()
	if len(pt) == 0 {
		return nil, status.Error(codes.InvalidArgument, "plaintext is empty")
	}
	if len(pt) > MaxPlaintext {
		return nil, status.Errorf(codes.InvalidArgument, "plaintext is %d bytes; the limit is %d", len(pt), MaxPlaintext)
	}
	ct, keyID, err := s.kek.Encrypt(ctx, pt)
	if err != nil {
		return nil, toStatus("encrypt", err)
	}
	if err := checkKeyID(keyID); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if len(ct) == 0 || len(ct) > maxCiphertext {
		return nil, status.Errorf(codes.Internal, "backend returned a ciphertext of %d bytes (want 1 to %d)", len(ct), maxCiphertext)
	}
	return &kmsapi.EncryptResponse{
		Ciphertext:  ct,
		KeyId:       keyID,
		Annotations: map[string][]byte{FormatAnnotation: []byte(formatVersion)},
	}, nil
}

// Decrypt unwraps a DEK seed. Unknown key_ids, tampered ciphertexts and
// malformed annotations are refused with InvalidArgument.
func (s *Service) Decrypt(ctx context.Context, req *kmsapi.DecryptRequest) (*kmsapi.DecryptResponse, error) {
	ct, keyID := req.GetCiphertext(), req.GetKeyId()
	switch {
	case len(ct) == 0:
		return nil, status.Error(codes.InvalidArgument, "ciphertext is empty")
	case len(ct) > maxCiphertext:
		return nil, status.Errorf(codes.InvalidArgument, "ciphertext is %d bytes; the limit is %d", len(ct), maxCiphertext)
	case keyID == "":
		return nil, status.Error(codes.InvalidArgument, "key_id is empty")
	case len(keyID) > maxKeyIDLen:
		return nil, status.Errorf(codes.InvalidArgument, "key_id is %d bytes; the limit is %d", len(keyID), maxKeyIDLen)
	}
	if err := CheckAnnotations(req.GetAnnotations()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	pt, err := s.kek.Decrypt(ctx, keyID, ct)
	if err != nil {
		return nil, toStatus("decrypt", err)
	}
	return &kmsapi.DecryptResponse{Plaintext: pt}, nil
}

// CheckAnnotations validates the annotations of a Decrypt request: at most
// 32 kB in total, keys fully qualified domain names, and exactly the
// annotations this plugin writes.
func CheckAnnotations(a map[string][]byte) error {
	total := 0
	for k, v := range a {
		total += len(k) + len(v)
	}
	if total > maxAnnotations {
		return fmt.Errorf("annotations are %d bytes; the limit is %d", total, maxAnnotations)
	}
	for k := range a {
		if !isFQDN(k) {
			return fmt.Errorf("annotation key %q is not a fully qualified domain name", truncate(k, 64))
		}
		if k != FormatAnnotation {
			return fmt.Errorf("unexpected annotation %q", k)
		}
	}
	v, ok := a[FormatAnnotation]
	if !ok {
		return fmt.Errorf("annotation %s is missing", FormatAnnotation)
	}
	if string(v) != formatVersion {
		return fmt.Errorf("annotation %s: unsupported format version %q", FormatAnnotation, truncate(string(v), 16))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// isFQDN reports whether s is a fully qualified domain name as KMS v2
// requires of annotation keys: an RFC 1123 subdomain (lowercase letters,
// digits, '-' and '.', labels of 1 to 63 characters starting and ending
// with a letter or digit, at most 253 characters) with at least two labels.
func isFQDN(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
			if !alnum && (c != '-' || i == 0 || i == len(label)-1) {
				return false
			}
		}
	}
	return true
}

// toStatus is the one place where KEK errors become gRPC statuses. The
// message is the error's text, which never holds key material or
// plaintext.
func toStatus(op string, err error) error {
	return status.Error(codeFor(err), op+": "+err.Error())
}

func codeFor(err error) codes.Code {
	switch {
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrInvalidCiphertext), errors.Is(err, ErrUnknownKeyID):
		return codes.InvalidArgument
	case errors.Is(err, ErrKeyVersionDisabled), errors.Is(err, ErrKeyNotFound):
		return codes.FailedPrecondition
	case errors.Is(err, ErrPermissionDenied):
		return codes.PermissionDenied
	case errors.Is(err, ErrSealed), errors.Is(err, ErrUnavailable):
		return codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	default:
		return codes.Internal
	}
}
