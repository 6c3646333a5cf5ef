package kv

import (
	"context"
	"mime"
	"strings"

	"github.com/coffer-dev/coffer/internal/logical"
)

// route splits a version 2 request path into its endpoint ("data",
// "metadata", ...) and the secret path after it. "config" has no secret
// path; an unknown endpoint returns "".
func route(mountPath string) (endpoint, path string) {
	if mountPath == "config" {
		return "config", ""
	}
	ep, rest, ok := strings.Cut(mountPath, "/")
	if !ok {
		return "", ""
	}
	switch ep {
	case "data", "metadata", "subkeys", "delete", "undelete", "destroy":
		return ep, rest
	}
	return "", ""
}

func (b *Backend) handleV2(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	endpoint, path := route(req.MountPath)
	switch {
	case endpoint == "":
		return nil, logical.ErrUnsupportedPath
	case endpoint == "config":
		return b.handleConfig(ctx, req)
	case endpoint == "metadata" && req.Operation == logical.ListOperation:
		return b.listMetadata(ctx, path)
	}
	h := b.handlerV2(endpoint, req.Operation)
	if h == nil {
		return nil, logical.ErrUnsupportedOperation
	}
	if err := checkPath(path, false); err != nil {
		return nil, err
	}
	return h(ctx, req, path)
}

type handlerFunc func(ctx context.Context, req *logical.Request, path string) (*logical.Response, error)

// handlerV2 picks the handler of an endpoint for op, or nil if the
// endpoint does not support op.
func (b *Backend) handlerV2(endpoint string, op logical.Operation) handlerFunc {
	read, write := isRead(op), isWrite(op)
	patch, del := op == logical.PatchOperation, op == logical.DeleteOperation
	switch endpoint {
	case "data":
		switch {
		case read:
			return b.readData
		case write:
			return b.writeData
		case patch:
			return b.patchData
		case del:
			return b.deleteLatest
		}
	case "metadata":
		switch {
		case read:
			return b.readMetadata
		case write:
			return b.writeMetadata
		case patch:
			return b.patchMetadata
		case del:
			return b.deleteMetadata
		}
	case "subkeys":
		if read {
			return b.readSubkeys
		}
	case "delete", "undelete", "destroy":
		if write {
			return func(ctx context.Context, req *logical.Request, path string) (*logical.Response, error) {
				return b.changeVersions(ctx, req, endpoint, path)
			}
		}
	}
	return nil
}

// existsV2 answers for data and metadata whether the secret has metadata.
// The config and the version endpoints always exist, so writes to them
// need the update capability, as in Vault's ACL examples.
func (b *Backend) existsV2(ctx context.Context, mountPath string) (bool, error) {
	endpoint, path := route(mountPath)
	switch endpoint {
	case "config", "delete", "undelete", "destroy":
		return true, nil
	case "data", "metadata":
	default:
		return false, nil
	}
	if checkPath(path, false) != nil {
		// HandleRequest reports the bad path.
		return false, nil
	}
	l := b.lockFor(path)
	l.RLock()
	defer l.RUnlock()
	m, err := b.loadMetaShared(ctx, path)
	if err != nil {
		return false, err
	}
	return m != nil, nil
}

// checkMergePatch refuses a PATCH whose body is not a JSON merge patch.
// Vault answers such a request with 415.
func checkMergePatch(req *logical.Request) error {
	mt, _, err := mime.ParseMediaType(req.ContentType)
	if err != nil || mt != "application/merge-patch+json" {
		return &logical.CodedError{Status: 415, Msg: "unsupported media type: PATCH needs Content-Type application/merge-patch+json"}
	}
	return nil
}
