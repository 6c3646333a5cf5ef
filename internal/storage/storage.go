// Package storage defines the untrusted persistence layer beneath the barrier.
//
// Everything a Backend holds is ciphertext produced by the barrier (package
// barrier); a Backend never sees plaintext and must not be trusted to keep
// data confidential or unmodified. Backends only have to be durable and
// atomic: a Put or Batch that returned nil survives a crash, and a Batch is
// applied entirely or not at all.
//
// Keys are slash-separated paths such as "core/keyring" or
// "logical/7f3a.../data/app". Implementations live in sub-packages
// (storage/bolt, storage/inmem) and are wired together in one place (the
// server command); core code depends only on this package.
//
// This package must not import the barrier, core or any engine.
package storage

import (
	"context"
	"sort"
	"strings"
)

// Entry is one stored key and its (encrypted) value.
type Entry struct {
	Key   string
	Value []byte
}

// Backend is the contract every storage implementation satisfies.
//
// Get returns ErrNotFound (wrapped or not) when the key is absent.
// List returns the names directly below prefix, in lexical order: a key
// "a/b" listed with prefix "a/" yields "b", and a key "a/b/c" yields "b/"
// once (a folder). Batch applies every operation atomically and durably.
type Backend interface {
	Get(ctx context.Context, key string) (*Entry, error)
	Put(ctx context.Context, e *Entry) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
	Batch(ctx context.Context, ops []Op) error
}

// OpKind says what an Op does.
type OpKind uint8

const (
	// OpPut stores Entry.
	OpPut OpKind = iota + 1
	// OpDelete removes Entry.Key; deleting an absent key is not an error.
	OpDelete
)

// Op is one operation of a Batch.
type Op struct {
	Kind  OpKind
	Entry *Entry
}

// ChildNames turns the full keys under prefix into the one-level listing
// described on Backend.List. keys must all start with prefix; the result is
// sorted and free of duplicates. Backends share it so that every one lists
// the same way.
func ChildNames(prefix string, keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		rest := strings.TrimPrefix(k, prefix)
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		if rest == "" {
			continue
		}
		if _, ok := seen[rest]; ok {
			continue
		}
		seen[rest] = struct{}{}
		out = append(out, rest)
	}
	sort.Strings(out)
	return out
}
