package storage

import "errors"

// ErrNotFound is returned by Get when the key is absent.
var ErrNotFound = errors.New("storage: entry not found")

// ErrClosed is returned by a backend used after Close.
var ErrClosed = errors.New("storage: backend closed")
