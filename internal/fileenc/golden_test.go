package fileenc_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

// Golden vectors: files encrypted by the real sops v3.13.3 with the
// committed TEST age keys (testdata/age-test-key-N.txt), next to sops'
// own decryption of them. Coffer must decrypt every one without sops
// installed. COFFER_UPDATE_GOLDEN=1 regenerates them with sops.

type goldenSpec struct {
	name, ext, plain, rule string
	keyFiles               []int // identities given to sops and Coffer to decrypt
	notEnough              int   // a test key that alone must not decrypt (0: none)
}

func goldenSpecs(t testing.TB) []goldenSpec {
	r := func(n int) string { return loadTestKey(t, n).recipient }
	return []goldenSpec{
		{name: "basic", ext: ".yaml", plain: yamlSample, rule: "age: " + r(1), keyFiles: []int{1}},
		{name: "basic", ext: ".json", plain: jsonSample, rule: "age: " + r(1), keyFiles: []int{1}},
		{name: "basic", ext: ".env", plain: dotenvSample, rule: "age: " + r(1), keyFiles: []int{1}},
		{name: "basic", ext: ".ini", plain: iniSample, rule: "age: " + r(1), keyFiles: []int{1}},
		{name: "binary", ext: ".bin", plain: "raw \x00\x01 bytes\nand lines\n", rule: "age: " + r(1), keyFiles: []int{1}},
		{name: "two-recipients", ext: ".yaml", plain: yamlSample, rule: "age: " + r(1) + "," + r(2), keyFiles: []int{2}, notEnough: 3},
		{name: "encrypted-regex", ext: ".yaml", plain: yamlSample, rule: "age: " + r(1) + "\n    encrypted_regex: ^(inner|k|sub)$", keyFiles: []int{1}},
		{name: "mac-only-encrypted", ext: ".yaml", plain: yamlSample, rule: "age: " + r(1) + "\n    encrypted_regex: ^inner$\n    mac_only_encrypted: true", keyFiles: []int{1}},
		{name: "comment-regex", ext: ".yaml", plain: commentRegexSample, rule: "age: " + r(1) + "\n    encrypted_comment_regex: sops:enc", keyFiles: []int{1}},
		{name: "key-groups", ext: ".yaml", plain: yamlSample,
			rule: "shamir_threshold: 2\n    key_groups:\n      - age: [" + r(1) + "]\n      - age: [" + r(2) + "]\n      - age: [" + r(3) + "]", keyFiles: []int{1, 3}, notEnough: 3},
	}
}

func goldenPaths(s goldenSpec) (enc, plain string) {
	base := filepath.Join("testdata", "golden", s.name)
	return base + ".enc" + s.ext, base + ".plain" + s.ext
}

func formatOf(ext string) fileenc.Format { return fileenc.FormatForPath("x" + ext) }

func TestUpdateGolden(t *testing.T) {
	if os.Getenv("COFFER_UPDATE_GOLDEN") == "" {
		t.Skip("set COFFER_UPDATE_GOLDEN=1 to regenerate testdata/golden with sops")
	}
	for _, s := range goldenSpecs(t) {
		dir := t.TempDir()
		writeFile(t, dir, ".sops.yaml", []byte("creation_rules:\n  - "+s.rule+"\n"))
		in := writeFile(t, dir, "in"+s.ext, []byte(s.plain))
		args := []string{"encrypt"}
		if s.ext == ".bin" {
			args = append(args, "--input-type", "binary", "--output-type", "json")
		}
		enc := mustSops(t, dir, nil, append(args, in)...)
		encPath, plainPath := goldenPaths(s)
		if err := os.MkdirAll(filepath.Dir(encPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(encPath, []byte(enc), 0o644); err != nil {
			t.Fatal(err)
		}
		keyFile := writeFile(t, dir, "keys.txt", identities(t, s.keyFiles))
		dargs := []string{"decrypt"}
		if s.ext == ".bin" {
			dargs = append(dargs, "--input-type", "json", "--output-type", "binary")
		}
		plain := mustSops(t, dir, []string{"SOPS_AGE_KEY_FILE=" + keyFile}, append(dargs, writeFile(t, dir, "enc"+s.ext, []byte(enc)))...)
		if err := os.WriteFile(plainPath, []byte(plain), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func identities(t testing.TB, ns []int) []byte {
	var b []byte
	for _, n := range ns {
		b = append(b, mustRead(t, loadTestKey(t, n).path)...)
	}
	return b
}

func TestGoldenVectors(t *testing.T) {
	specs := goldenSpecs(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.enc.*"))
	if len(files) != len(specs) {
		sort.Strings(files)
		t.Fatalf("testdata/golden has %d encrypted files, want %d: %v", len(files), len(specs), files)
	}
	for _, s := range specs {
		t.Run(s.name+s.ext, func(t *testing.T) {
			encPath, plainPath := goldenPaths(s)
			enc, want := mustRead(t, encPath), string(mustRead(t, plainPath))
			var ks []testKey
			for _, n := range s.keyFiles {
				ks = append(ks, loadTestKey(t, n))
			}
			f := formatOf(s.ext)
			doc, err := fileenc.Parse(enc, f)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := cofferDecrypt(t, enc, f, keysFor(ks...))
			if normalize(f, got) != normalize(f, want) {
				t.Errorf("decrypt:\n%s\nwant (sops):\n%s", got, want)
			}
			if doc.Metadata.Version != "3.13.3" {
				t.Errorf("version = %q, want 3.13.3", doc.Metadata.Version)
			}
			// A stranger's key, or one group short of the threshold, fails.
			if s.notEnough != 0 {
				if _, err := decrypt(enc, f, keysFor(loadTestKey(t, s.notEnough))); err == nil {
					t.Errorf("decrypted with only test key %d", s.notEnough)
				}
			}
		})
	}
}
