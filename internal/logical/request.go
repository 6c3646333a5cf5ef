package logical

import (
	"net/http"
	"time"
)

// Operation is what a request asks to do, in Vault's vocabulary.
type Operation string

// The operations of the Vault HTTP API. Create and Update both arrive as POST
// or PUT; the pipeline tells them apart by whether the target exists.
const (
	ReadOperation   Operation = "read"
	CreateOperation Operation = "create"
	UpdateOperation Operation = "update"
	PatchOperation  Operation = "patch"
	DeleteOperation Operation = "delete"
	ListOperation   Operation = "list"
	HeadOperation   Operation = "head"
)

// Request is one authenticated or unauthenticated call on a logical path.
type Request struct {
	// ID is the request's unique id, echoed as request_id.
	ID        string
	Operation Operation
	// Path is the full logical path without the /v1/ prefix, e.g.
	// "secret/data/app".
	Path string
	// MountPoint is the mount the path was routed to ("secret/"), and
	// MountPath the remainder below it ("data/app"). Set by the router.
	MountPoint string
	MountPath  string
	MountType  string
	// Data is the decoded JSON body merged with query parameters.
	Data map[string]any
	// Query holds the raw URL query values.
	Query map[string][]string
	// Headers holds selected request headers (never the token).
	Headers http.Header
	// ClientToken is the caller's token; empty if none was sent.
	ClientToken string
	// Auth describes the resolved token once the pipeline has checked it.
	Auth *Auth
	// RemoteAddr is the caller's address (host:port).
	RemoteAddr string
	// ContentType of the body, needed by PATCH.
	ContentType string
}

// Response is what a handler returns.
type Response struct {
	Data     map[string]any
	Auth     *Auth
	Secret   *Secret
	Warnings []string
	// Status overrides the HTTP status when non-zero (e.g. 204, or 429 from
	// sys/health). Handlers use it sparingly; errors use error values.
	Status int
	// Raw, when set, is sent as the body as is (sys/health, sys/metrics),
	// with RawContentType.
	Raw            []byte
	RawContentType string
	// TopLevel copies Data to the top level of the JSON body, as Vault does
	// for a few old sys routes (sys/mounts, sys/policy, ...).
	TopLevel bool
	// NoEnvelope sends Data alone as the body, without the envelope
	// (sys/init, sys/seal-status, sys/unseal, sys/health, sys/leader).
	NoEnvelope bool
}

// Secret carries the lease of a response that has one. A backend that
// returns a Secret sets TTL, MaxTTL, Renewable and InternalData; the lease
// manager assigns LeaseID, persists the lease (with InternalData, which is
// never sent to the client) and later calls the backend's SecretBackend
// methods to renew or revoke it.
type Secret struct {
	LeaseID string
	TTL     time.Duration
	// MaxTTL bounds renewals, counted from issue time; zero means the
	// mount's (or the system's) maximum.
	MaxTTL    time.Duration
	Renewable bool
	// InternalData is what the backend needs to renew or revoke the secret
	// later (e.g. the database user name and the role). Stored behind the
	// barrier with the lease; never returned to clients or logged.
	InternalData map[string]any
}

// Auth describes a token: the one a login issues, or the caller's own.
type Auth struct {
	ClientToken   string
	Accessor      string
	Policies      []string
	TokenPolicies []string
	Metadata      map[string]string
	DisplayName   string
	TTL           time.Duration
	Renewable     bool
	EntityID      string
	TokenType     string
	Orphan        bool
	NumUses       int
	// MaxTTL and Period shape the token a login issues: MaxTTL becomes its
	// explicit max TTL, Period makes it periodic. Zero means unset.
	MaxTTL time.Duration
	Period time.Duration
	// Alias names the authenticated identity for audit and metadata
	// (e.g. the userpass user name, the approle role name).
	Alias string
	// BoundCIDRs, when set on a login, binds the token it issues to client
	// addresses within these CIDR blocks (token_bound_cidrs): a request
	// with the token from anywhere else is refused.
	BoundCIDRs []string
}
