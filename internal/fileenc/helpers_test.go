package fileenc_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/fileenc"
)

// testKey is a committed TEST age key from testdata.
type testKey struct {
	path      string
	recipient string
	identity  *age.X25519Identity
}

func loadTestKey(t testing.TB, n int) testKey {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "age-test-key-"+string(rune('0'+n))+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var id *age.X25519Identity
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			id, err = age.ParseX25519Identity(l)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if id == nil {
		t.Fatalf("no identity in %s", p)
	}
	return testKey{path: p, recipient: id.Recipient().String(), identity: id}
}

func keysFor(ks ...testKey) *fileenc.Keys {
	k := &fileenc.Keys{}
	for _, tk := range ks {
		k.AgeIdentities = append(k.AgeIdentities, tk.identity)
	}
	return k
}

// sopsBin finds the real sops installed by hack/peers-sops.sh.
func sopsBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("COFFER_SOPS_BIN"); p != "" {
		return p
	}
	cache := os.Getenv("COFFER_CACHE_DIR")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "coffer-testenv")
	}
	p := filepath.Join(cache, "bin", "sops")
	if _, err := os.Stat(p); err != nil {
		coffertest.RequireIntegration(t, "sops not installed (run hack/peers-sops.sh or set COFFER_SOPS_BIN)")
	}
	return p
}

// runSops runs sops in dir with a clean environment plus env.
func runSops(t testing.TB, dir string, env []string, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(sopsBin(t), args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "SOPS_DISABLE_VERSION_CHECK=1", "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mustSops(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := runSops(t, dir, env, nil, args...)
	if err != nil {
		t.Fatalf("sops %v: %v\n%s", args, err, errOut)
	}
	return out
}

// cofferEncrypt encrypts plaintext in format f to the age keys.
func cofferEncrypt(t testing.TB, plain string, f fileenc.Format, opts fileenc.EncryptOptions) []byte {
	t.Helper()
	doc, err := fileenc.ParsePlain([]byte(plain), f)
	if err != nil {
		t.Fatalf("ParsePlain: %v", err)
	}
	if err := (&fileenc.Keys{}).Encrypt(context.Background(), doc, opts); err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	out, err := doc.Emit(f)
	if err != nil {
		t.Fatalf("Emit: %v", err)
	}
	return out
}

// cofferDecrypt decrypts an encrypted file in format f.
func cofferDecrypt(t testing.TB, enc []byte, f fileenc.Format, keys *fileenc.Keys) string {
	t.Helper()
	out, err := decrypt(enc, f, keys)
	if err != nil {
		t.Fatalf("decrypt: %v\n%s", err, enc)
	}
	return out
}

func decrypt(enc []byte, f fileenc.Format, keys *fileenc.Keys) (string, error) {
	doc, err := fileenc.Parse(enc, f)
	if err != nil {
		return "", err
	}
	o, err := keys.Open(context.Background(), doc)
	if err != nil {
		return "", err
	}
	defer o.Close()
	pf := f
	plainDoc := o.Doc
	plainDoc.Metadata = nil
	out, err := plainDoc.Emit(pf)
	return string(out), err
}

func ageOpts(ks ...testKey) fileenc.EncryptOptions {
	var g fileenc.KeyGroupSpec
	for _, k := range ks {
		g.Age = append(g.Age, k.recipient)
	}
	return fileenc.EncryptOptions{Groups: []fileenc.KeyGroupSpec{g}}
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
