package audit_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/coffer-dev/coffer/internal/audit"
)

// BenchmarkFileDeviceLogRequest measures what a file device adds to a
// request: hashing a typical KV write (11 hashed values), encoding it,
// chaining it and writing it, with and without fsync.
//
//	go test -run '^$' -bench FileDevice -benchmem ./internal/audit/
func BenchmarkFileDeviceLogRequest(b *testing.B) {
	for _, bc := range []struct {
		name     string
		fsync    bool
		parallel bool
	}{
		{"fsync=false", false, false},
		{"fsync=false/parallel", false, true},
		{"fsync=true", true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := openDevice(b, filepath.Join(b.TempDir(), "audit.log"), audit.FileOptions{Fsync: bc.fsync})
			req := sampleRequest(1, "hvs.CAESIJT2KM9n2KJqg_E267EHJSY0c4NWtTRnBsNWhzUDkQZQ", "s3cr3t")
			ctx := context.Background()
			b.ReportAllocs()
			if bc.parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := d.LogRequest(ctx, req); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return
			}
			for b.Loop() {
				if err := d.LogRequest(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFileDeviceLogPair is one request and its response: what one
// audited API call costs a single file device.
func BenchmarkFileDeviceLogPair(b *testing.B) {
	d := openDevice(b, filepath.Join(b.TempDir(), "audit.log"), audit.FileOptions{})
	tok := "hvs.CAESIJT2KM9n2KJqg_E267EHJSY0c4NWtTRnBsNWhzUDkQZQ"
	req, resp := sampleRequest(1, tok, "s3cr3t"), sampleResponse(1, tok, "s3cr3t")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := d.LogRequest(ctx, req); err != nil {
			b.Fatal(err)
		}
		if err := d.LogResponse(ctx, resp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashRequest(b *testing.B) {
	s := newSalt(b)
	req := sampleRequest(1, "hvs.CAESIJT2KM9n2KJqg_E267EHJSY0c4NWtTRnBsNWhzUDkQZQ", "s3cr3t")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.HashRequest(s, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.log")
	d := openDevice(b, path, audit.FileOptions{})
	logPairs(b, d, 500)
	d.Close()
	log := mustRead(b, path)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.Verify(bytes.NewReader(log)); err != nil {
			b.Fatal(err)
		}
	}
}
