// Package storagetest is the conformance suite every storage.Backend must
// pass. It is imported only by tests.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/storage"
)

// Run runs the suite against fresh backends from newBackend.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	ctx := context.Background()
	t.Run("get put delete", func(t *testing.T) {
		b := newBackend(t)
		if _, err := b.Get(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get(missing) error = %v, want ErrNotFound", err)
		}
		if err := b.Put(ctx, &storage.Entry{Key: "a", Value: []byte("1")}); err != nil {
			t.Fatal(err)
		}
		e, err := b.Get(ctx, "a")
		if err != nil || string(e.Value) != "1" || e.Key != "a" {
			t.Fatalf("Get(a) = %v, %v", e, err)
		}
		if err := b.Put(ctx, &storage.Entry{Key: "a", Value: []byte("2")}); err != nil {
			t.Fatal(err)
		}
		if e, _ := b.Get(ctx, "a"); string(e.Value) != "2" {
			t.Fatalf("Get after overwrite = %q", e.Value)
		}
		if err := b.Delete(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, "a"); err != nil {
			t.Fatalf("Delete(absent) = %v, want nil", err)
		}
		if _, err := b.Get(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get after delete error = %v", err)
		}
	})
	t.Run("empty value", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Put(ctx, &storage.Entry{Key: "e", Value: []byte{}}); err != nil {
			t.Fatal(err)
		}
		e, err := b.Get(ctx, "e")
		if err != nil || len(e.Value) != 0 {
			t.Fatalf("Get(empty) = %v, %v", e, err)
		}
	})
	t.Run("list", func(t *testing.T) {
		b := newBackend(t)
		for _, k := range []string{"a", "ab/x", "ab/y/z", "ab/y/w", "b/c", "abc"} {
			if err := b.Put(ctx, &storage.Entry{Key: k, Value: []byte(k)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", []string{"a", "ab/", "abc", "b/"}},
			{"ab/", []string{"x", "y/"}},
			{"ab/y/", []string{"w", "z"}},
			// "a" itself has nothing after the prefix and is not listed.
			{"a", []string{"b/", "bc"}},
			{"zz/", []string{}},
		} {
			got, err := b.List(ctx, tc.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tc.prefix, err)
			}
			if got == nil {
				got = []string{}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("List(%q) mismatch (-want +got):\n%s", tc.prefix, diff)
			}
		}
	})
	t.Run("batch", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Put(ctx, &storage.Entry{Key: "old", Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		err := b.Batch(ctx, []storage.Op{
			{Kind: storage.OpPut, Entry: &storage.Entry{Key: "n1", Value: []byte("1")}},
			{Kind: storage.OpDelete, Entry: &storage.Entry{Key: "old"}},
			{Kind: storage.OpPut, Entry: &storage.Entry{Key: "n2", Value: []byte("2")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := b.List(ctx, "")
		if diff := cmp.Diff([]string{"n1", "n2"}, got); diff != "" {
			t.Errorf("after batch (-want +got):\n%s", diff)
		}
		// An invalid operation fails the whole batch: nothing applied.
		err = b.Batch(ctx, []storage.Op{
			{Kind: storage.OpPut, Entry: &storage.Entry{Key: "n3", Value: []byte("3")}},
			{Kind: storage.OpKind(99), Entry: &storage.Entry{Key: "n4"}},
		})
		if err == nil {
			t.Fatalf("Batch with an invalid op = nil, want error")
		}
		if _, err := b.Get(ctx, "n3"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("invalid batch was partly applied: Get(n3) error = %v", err)
		}
	})
	t.Run("copies", func(t *testing.T) {
		b := newBackend(t)
		v := []byte("abc")
		if err := b.Put(ctx, &storage.Entry{Key: "k", Value: v}); err != nil {
			t.Fatal(err)
		}
		v[0] = 'X'
		e, _ := b.Get(ctx, "k")
		if string(e.Value) != "abc" {
			t.Fatalf("stored value aliased the caller's slice: %q", e.Value)
		}
		e.Value[1] = 'Y'
		e2, _ := b.Get(ctx, "k")
		if string(e2.Value) != "abc" {
			t.Fatalf("returned value aliased storage: %q", e2.Value)
		}
	})
	t.Run("concurrent writers", func(t *testing.T) {
		b := newBackend(t)
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					if err := b.Put(ctx, &storage.Entry{Key: fmt.Sprintf("w%02d/%02d", w, i), Value: []byte{byte(i)}}); err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		top, _ := b.List(ctx, "")
		if len(top) != 32 {
			t.Fatalf("List() after concurrent writes = %d folders, want 32", len(top))
		}
		for w := 0; w < 32; w++ {
			got, _ := b.List(ctx, fmt.Sprintf("w%02d/", w))
			if len(got) != 20 {
				t.Fatalf("writer %d: %d keys, want 20", w, len(got))
			}
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		b := newBackend(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.Put(cctx, &storage.Entry{Key: "c", Value: []byte("1")}); err == nil {
			t.Fatalf("Put with a cancelled context = nil, want error")
		}
	})
}
