package transit

import (
	"context"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/logical"
)

func benchHarness(b *testing.B, typ string) *harness {
	b.Helper()
	h := newHarness(b)
	h.write("keys/k", `{"type":"`+typ+`"}`)
	return h
}

func benchRequest(b *testing.B, h *harness, path string, data map[string]any) *logical.Response {
	resp, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, MountPath: path, Data: data})
	if err != nil || (resp != nil && resp.Status >= 400) {
		b.Fatalf("%s = %v", path, err)
	}
	return resp
}

var kib = b64(strings.Repeat("x", 1024))

// BenchmarkEncrypt1KiB is one encrypt request of 1 KiB through
// HandleRequest: base64 in and out, key lookup in the cache, AEAD.
func BenchmarkEncrypt1KiB(b *testing.B) {
	for _, typ := range []string{"aes256-gcm96", "chacha20-poly1305"} {
		b.Run(typ, func(b *testing.B) {
			h := benchHarness(b, typ)
			data := map[string]any{"plaintext": kib}
			b.ReportAllocs()
			b.SetBytes(1024)
			for b.Loop() {
				benchRequest(b, h, "encrypt/k", data)
			}
		})
	}
}

// BenchmarkDecrypt1KiB is one decrypt request of 1 KiB.
func BenchmarkDecrypt1KiB(b *testing.B) {
	for _, typ := range []string{"aes256-gcm96", "chacha20-poly1305"} {
		b.Run(typ, func(b *testing.B) {
			h := benchHarness(b, typ)
			ct := benchRequest(b, h, "encrypt/k", map[string]any{"plaintext": kib}).Data["ciphertext"]
			data := map[string]any{"ciphertext": ct}
			b.ReportAllocs()
			b.SetBytes(1024)
			for b.Loop() {
				benchRequest(b, h, "decrypt/k", data)
			}
		})
	}
}

// BenchmarkEncryptDerived1KiB adds the per-request HKDF and key schedule.
func BenchmarkEncryptDerived1KiB(b *testing.B) {
	h := newHarness(b)
	h.write("keys/k", `{"derived":true}`)
	data := map[string]any{"plaintext": kib, "context": b64("tenant-42")}
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		benchRequest(b, h, "encrypt/k", data)
	}
}

// BenchmarkBatch100 is one batch request of 100 items of 1 KiB.
func BenchmarkBatch100(b *testing.B) {
	h := benchHarness(b, "aes256-gcm96")
	in := make([]any, 100)
	for i := range in {
		in[i] = map[string]any{"plaintext": kib}
	}
	b.Run("encrypt", func(b *testing.B) {
		data := map[string]any{"batch_input": in}
		b.ReportAllocs()
		b.SetBytes(100 * 1024)
		for b.Loop() {
			benchRequest(b, h, "encrypt/k", data)
		}
	})
	b.Run("decrypt", func(b *testing.B) {
		res := benchRequest(b, h, "encrypt/k", map[string]any{"batch_input": in}).Data["batch_results"].([]map[string]any)
		cts := make([]any, len(res))
		for i, r := range res {
			cts[i] = map[string]any{"ciphertext": r["ciphertext"]}
		}
		data := map[string]any{"batch_input": cts}
		b.ReportAllocs()
		b.SetBytes(100 * 1024)
		for b.Loop() {
			benchRequest(b, h, "decrypt/k", data)
		}
	})
}
