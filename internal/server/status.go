package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
)

// statusClientClosedRequest is the status recorded (metrics, logs) for a
// request whose client cancelled it before the answer (nginx's 499).
const statusClientClosedRequest = 499

// statusFor is the one place where errors become HTTP statuses.
func statusFor(err error) (int, string) {
	var ire *logical.InvalidRequestError
	var ce *logical.CodedError
	switch {
	case errors.As(err, &ce):
		return ce.Status, ce.Msg
	case errors.As(err, &ire):
		return http.StatusBadRequest, ire.Msg
	case errors.Is(err, logical.ErrPermissionDenied):
		return http.StatusForbidden, "permission denied"
	case errors.Is(err, logical.ErrSealed):
		return http.StatusServiceUnavailable, "Coffer is sealed"
	case errors.Is(err, logical.ErrNotFound), errors.Is(err, logical.ErrUnsupportedPath):
		return http.StatusNotFound, ""
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return http.StatusMethodNotAllowed, "unsupported operation"
	case errors.Is(err, logical.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "request body too large"
	case errors.Is(err, logical.ErrRateLimited):
		return http.StatusTooManyRequests, "rate limit exceeded; try again later"
	case errors.Is(err, logical.ErrUpstream):
		return http.StatusBadGateway, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "request timed out"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := statusFor(err)
	if status == http.StatusInternalServerError && errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away: nobody reads the answer, nothing failed.
		status, msg = statusClientClosedRequest, "request canceled"
	}
	switch {
	case status == statusClientClosedRequest:
		s.log.Debug("request canceled by the client", "method", r.Method, "path", r.URL.Path)
	case status >= 500:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	default:
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status)
	}
	errs := []string{}
	if msg != "" {
		errs = append(errs, msg)
	}
	writeJSON(w, status, map[string]any{"errors": errs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) writeResponse(w http.ResponseWriter, r *http.Request, req *logical.Request, resp *logical.Response) {
	if resp == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if resp.Raw != nil {
		ct := resp.RawContentType
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(resp.Raw)
		}
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	if resp.NoEnvelope {
		writeJSON(w, status, resp.Data)
		return
	}
	if status == http.StatusNoContent {
		if len(resp.Warnings) == 0 && resp.Data == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		status = http.StatusOK
	}
	body := map[string]any{
		"request_id":     req.ID,
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           resp.Data,
		"wrap_info":      nil,
		"warnings":       nilIfEmpty(resp.Warnings),
		"auth":           nil,
		"mount_type":     req.MountType,
	}
	if resp.Secret != nil {
		body["lease_id"] = resp.Secret.LeaseID
		body["renewable"] = resp.Secret.Renewable
		body["lease_duration"] = int64(resp.Secret.TTL / time.Second)
	}
	if a := resp.Auth; a != nil {
		meta := a.Metadata
		if meta == nil {
			meta = map[string]string{}
		}
		body["auth"] = map[string]any{
			"client_token":      a.ClientToken,
			"accessor":          a.Accessor,
			"policies":          a.Policies,
			"token_policies":    a.TokenPolicies,
			"identity_policies": nil,
			"metadata":          meta,
			"lease_duration":    int64(a.TTL / time.Second),
			"renewable":         a.Renewable,
			"entity_id":         a.EntityID,
			"token_type":        a.TokenType,
			"orphan":            a.Orphan,
			"num_uses":          a.NumUses,
			"mfa_requirement":   nil,
		}
	}
	if resp.TopLevel {
		for k, v := range resp.Data {
			if _, clash := body[k]; !clash {
				body[k] = v
			}
		}
	}
	writeJSON(w, status, body)
}

func nilIfEmpty(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return s
}
