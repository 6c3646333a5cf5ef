package audit

import "time"

// Request is a "request" audit entry: who called, and what they asked. It is
// logged before the request is served.
type Request struct {
	// Time is when the request was received; the device uses the current
	// time if it is zero. Lines always carry UTC.
	Time    time.Time
	Auth    *Auth
	Request *RequestInfo
	// Error is set when the request failed before reaching a backend (for
	// example "permission denied"). It is logged as is, never hashed, so
	// it must not contain secret values.
	Error string
}

// Response is a "response" audit entry: the request again, and what Coffer
// answered.
type Response struct {
	// Time is when the response was produced; see Request.Time.
	Time     time.Time
	Auth     *Auth
	Request  *RequestInfo
	Response *ResponseInfo
	// Error is the error returned to the caller, logged as is (see
	// Request.Error).
	Error string
}

// Auth describes the caller's token in a request entry, or the token a
// login issued in a response entry.
type Auth struct {
	ClientToken   string            `json:"client_token,omitempty"`   // hashed
	Accessor      string            `json:"accessor,omitempty"`       // hashed
	DisplayName   string            `json:"display_name,omitempty"`   // clear
	Policies      []string          `json:"policies,omitempty"`       // clear
	TokenPolicies []string          `json:"token_policies,omitempty"` // clear
	Metadata      map[string]string `json:"metadata,omitempty"`       // values hashed
	EntityID      string            `json:"entity_id,omitempty"`      // clear
	TokenType     string            `json:"token_type,omitempty"`     // clear
	// TokenTTL is the token's remaining time to live, in seconds.
	TokenTTL int64 `json:"token_ttl,omitempty"`
}

// RequestInfo is the "request" object of an entry.
type RequestInfo struct {
	ID                  string `json:"id,omitempty"`                    // clear
	Operation           string `json:"operation,omitempty"`             // clear
	MountType           string `json:"mount_type,omitempty"`            // clear
	MountAccessor       string `json:"mount_accessor,omitempty"`        // clear
	ClientToken         string `json:"client_token,omitempty"`          // hashed
	ClientTokenAccessor string `json:"client_token_accessor,omitempty"` // hashed
	// Namespace is always written; an empty ID is written as "root".
	Namespace     Namespace      `json:"namespace"`
	Path          string         `json:"path,omitempty"`           // clear
	Data          map[string]any `json:"data,omitempty"`           // every string hashed
	RemoteAddress string         `json:"remote_address,omitempty"` // clear
	// Headers are the request headers chosen for auditing; values hashed.
	Headers map[string][]string `json:"headers,omitempty"`
}

// Namespace identifies the namespace of a request. Coffer has only "root".
type Namespace struct {
	ID   string `json:"id"`
	Path string `json:"path,omitempty"`
}

// ResponseInfo is the "response" object of a response entry.
type ResponseInfo struct {
	MountType string         `json:"mount_type,omitempty"` // clear
	Data      map[string]any `json:"data,omitempty"`       // every string hashed
	Secret    *Secret        `json:"secret,omitempty"`
	Auth      *Auth          `json:"auth,omitempty"`
	// Warnings are server-written messages, logged as is.
	Warnings []string            `json:"warnings,omitempty"`
	Headers  map[string][]string `json:"headers,omitempty"` // values hashed
}

// Secret carries the lease of a response that has one.
type Secret struct {
	LeaseID string `json:"lease_id"` // hashed
}
