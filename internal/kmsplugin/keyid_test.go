package kmsplugin_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/kmsplugin"
)

func TestTransitKeyID(t *testing.T) {
	id := kmsplugin.TransitKeyID("/transit/", "kubernetes", 3, 1714564800)
	if id != "coffer:transit:transit/kubernetes:v3:1714564800" {
		t.Fatalf("TransitKeyID = %q", id)
	}
	v, c, err := kmsplugin.ParseTransitKeyID(id, "transit", "kubernetes")
	if err != nil || v != 3 || c != 1714564800 {
		t.Fatalf("ParseTransitKeyID(%q) = %d, %d, %v", id, v, c, err)
	}
	nested := kmsplugin.TransitKeyID("kube/transit", "k.1", 12, 0)
	if v, c, err := kmsplugin.ParseTransitKeyID(nested, "kube/transit", "k.1"); err != nil || v != 12 || c != 0 {
		t.Fatalf("ParseTransitKeyID(%q) = %d, %d, %v", nested, v, c, err)
	}
	bad := []string{
		"",
		"coffer:transit:transit/other:v3:1714564800",       // another key
		"coffer:transit:transit/kubernetes2:v3:1714564800", // a key whose name extends ours
		"coffer:transit:other/kubernetes:v3:1714564800",    // another mount
		"coffer:local:0123",
		"coffer:transit:transit/kubernetes:v0:1",
		"coffer:transit:transit/kubernetes:v03:1",
		"coffer:transit:transit/kubernetes:v-3:1",
		"coffer:transit:transit/kubernetes:v3",
		"coffer:transit:transit/kubernetes:v3:",
		"coffer:transit:transit/kubernetes:v3:01",
		"coffer:transit:transit/kubernetes:v3:1:2",
		"coffer:transit:transit/kubernetes:v1234567890:1",
		"coffer:transit:transit/kubernetes:v3:+1",
		"coffer:transit:transit/kubernetes:v3:1 ",
	}
	for _, id := range bad {
		if _, _, err := kmsplugin.ParseTransitKeyID(id, "transit", "kubernetes"); !errors.Is(err, kmsplugin.ErrUnknownKeyID) {
			t.Errorf("ParseTransitKeyID(%q) = %v, want ErrUnknownKeyID", id, err)
		}
	}
}

func TestCiphertextVersion(t *testing.T) {
	body := strings.Repeat("A", 40) // 30 bytes
	good := map[string]int{
		"vault:v1:" + body:         1,
		"vault:v123456789:" + body: 123456789,
	}
	for ct, want := range good {
		if v, err := kmsplugin.CiphertextVersion(ct); err != nil || v != want {
			t.Errorf("CiphertextVersion(%q) = %d, %v; want %d", ct, v, err, want)
		}
	}
	bad := []string{
		"", "vault:", "vault:v1", "vault:v1:", "vault:v0:" + body, "vault:v01:" + body, "vault:v-1:" + body,
		"vault:v1234567890:" + body, "vault:vx:" + body, "vault:v1:" + body[:39] + "!", "vault:v1:AAAA",
		"vault:v1:" + body + "\n", "Vault:v1:" + body, "vault:v1:" + strings.Repeat("A", 37) + "AB=", "vault:v1:AAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	}
	for _, ct := range bad {
		if _, err := kmsplugin.CiphertextVersion(ct); !errors.Is(err, kmsplugin.ErrInvalidCiphertext) {
			t.Errorf("CiphertextVersion(%q) = %v, want ErrInvalidCiphertext", ct, err)
		}
	}
}

func TestCheckAnnotations(t *testing.T) {
	ok := map[string][]byte{kmsplugin.FormatAnnotation: []byte("1")}
	if err := kmsplugin.CheckAnnotations(ok); err != nil {
		t.Fatalf("CheckAnnotations(valid) = %v", err)
	}
	for _, k := range []string{"nodot", "UPPER.example.com", "-a.example.com", "a-.example.com", "a..b", ".a.b", "a.b.", strings.Repeat("a", 64) + ".com", "a_b.example.com"} {
		a := map[string][]byte{kmsplugin.FormatAnnotation: []byte("1"), k: nil}
		if err := kmsplugin.CheckAnnotations(a); err == nil || !strings.Contains(err.Error(), "fully qualified") {
			t.Errorf("CheckAnnotations with key %q = %v, want a FQDN error", k, err)
		}
	}
}
