package kv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
)

// benchBody is a write body whose data holds a 1 KiB value.
func benchBody(b *testing.B) map[string]any {
	b.Helper()
	return body(b, `{"data":{"value":"`+strings.Repeat("x", 1024)+`"}}`)
}

func newBenchBackend(b *testing.B) *Backend {
	b.Helper()
	kv, err := New(context.Background(), &logical.BackendConfig{Storage: inmem.New(), Options: map[string]string{"version": "2"}})
	if err != nil {
		b.Fatal(err)
	}
	return kv
}

// BenchmarkKVv2Write writes new versions of 100 secrets (so max_versions
// trimming is part of the steady state).
func BenchmarkKVv2Write(b *testing.B) {
	kv := newBenchBackend(b)
	data := benchBody(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(1024)
	i := 0
	for b.Loop() {
		req := &logical.Request{Operation: logical.UpdateOperation, MountPath: fmt.Sprintf("data/bench/%d", i%100), Data: data}
		if _, err := kv.HandleRequest(ctx, req); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkKVv2Read reads the latest version of one of 100 secrets.
func BenchmarkKVv2Read(b *testing.B) {
	kv := newBenchBackend(b)
	data := benchBody(b)
	ctx := context.Background()
	for i := range 100 {
		req := &logical.Request{Operation: logical.UpdateOperation, MountPath: fmt.Sprintf("data/bench/%d", i), Data: data}
		if _, err := kv.HandleRequest(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(1024)
	i := 0
	for b.Loop() {
		req := &logical.Request{Operation: logical.ReadOperation, MountPath: fmt.Sprintf("data/bench/%d", i%100), Data: map[string]any{}}
		if _, err := kv.HandleRequest(ctx, req); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
