package fault

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coffer-dev/coffer/internal/storage"
	"github.com/coffer-dev/coffer/internal/storage/inmem"
	"github.com/coffer-dev/coffer/internal/storage/storagetest"
)

func TestConformanceWithoutFaults(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend { return New(inmem.New(), Options{}) })
}

func TestInjection(t *testing.T) {
	ctx := context.Background()
	b := New(inmem.New(), Options{FailPercent: 100})
	if err := b.Put(ctx, &storage.Entry{Key: "a", Value: []byte("1")}); !errors.Is(err, ErrInjected) {
		t.Fatalf("Put at 100%% = %v, want ErrInjected", err)
	}
	b.SetFailPercent(0)
	if err := b.Put(ctx, &storage.Entry{Key: "a", Value: []byte("1")}); err != nil {
		t.Fatalf("Put at 0%% = %v", err)
	}
	b.SetFailPercent(50)
	fails := 0
	for i := 0; i < 2000; i++ {
		if _, err := b.Get(ctx, "a"); err != nil {
			fails++
		}
	}
	if fails < 800 || fails > 1200 {
		t.Fatalf("%d of 2000 calls failed at 50%%", fails)
	}
	wo := New(inmem.New(), Options{FailPercent: 100, WritesOnly: true})
	if _, err := wo.List(ctx, ""); err != nil {
		t.Fatalf("List with WritesOnly = %v", err)
	}
	lat := New(inmem.New(), Options{Latency: 20 * time.Millisecond})
	start := time.Now()
	_, _ = lat.Get(ctx, "x")
	if time.Since(start) < 20*time.Millisecond {
		t.Fatalf("latency not added")
	}
}
