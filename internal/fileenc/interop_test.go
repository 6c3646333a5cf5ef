package fileenc_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

// The interoperability tests run the real sops (v3.13.3, installed by
// hack/peers-sops.sh) against Coffer in both directions: a file Coffer
// encrypts must decrypt with sops to what sops itself gives for the same
// plaintext, and a file sops encrypts must decrypt with Coffer to the
// same plaintext as sops decrypts it.

const yamlSample = `# top comment

# second top comment
name: alice # line comment
age: 42
pi: 3.14
big: 1e20
flag: true
"off": false
empty: ""
nul: null
when: 2024-01-02T03:04:05Z
# head comment of nested
nested:
    inner: value
    # comment inside nested
    deeper:
        k: v
list:
    - one
    # comment in list
    - 2
    - sub: map
      other: x
    - - nested list
password_unencrypted: plain
multi: |
    line1
    line2
x:
    "y": 1 # ly
    # foot of x
# foot comment at end
`

const jsonSample = `{"b": 1, "a": 1.0, "c": 1.50, "d": 1e3, "e": -0, "f": 12345678901234567890,
 "g": true, "h": null, "i": "str\u00e9\n<>&\t\"q\"", "j": [], "k": {}, "l": [1, "x", {"m": null}, [true]],
 "big": 9007199254740993, "exp": 1.5e300, "neg": -3, "tiny": 1e-7, "pw_unencrypted": "clear"}`

const dotenvSample = `# comment one
FOO=bar
EMPTY=

QUOTED="hello world"
SINGLE='single'
ML=line1\nline2
export EXP=1
SP = spaced
PW_unencrypted=plain
# trailing
`

const commentRegexSample = `# unrelated
a: 1
b: 2 # sops:enc
# sops:enc
# another
c: 3
d: 4
e:
    # sops:enc
    - x: 1
      "y": 2
    - z
f:
    # sops:enc
    g: 5
    h: 6
`

const iniSample = `; global comment
top = level

# before db
[db]
# hash comment
user = admin
pass = "quoted secret"
port=5432
empty =
# c1
# c2
multi = x

[other section]
key_unencrypted = visible
`

type interopCase struct {
	name   string
	format fileenc.Format
	ext    string
	plain  string
	opts   func(k testKey) fileenc.EncryptOptions
	rule   string // extra .sops.yaml creation rule fields for sops
}

func interopCases() []interopCase {
	plainAge := func(k testKey) fileenc.EncryptOptions { return ageOpts(k) }
	withSel := func(s fileenc.Selectors) func(k testKey) fileenc.EncryptOptions {
		return func(k testKey) fileenc.EncryptOptions {
			o := ageOpts(k)
			o.Selectors = s
			return o
		}
	}
	return []interopCase{
		{name: "yaml", format: fileenc.FormatYAML, ext: ".yaml", plain: yamlSample, opts: plainAge},
		{name: "json", format: fileenc.FormatJSON, ext: ".json", plain: jsonSample, opts: plainAge},
		{name: "dotenv", format: fileenc.FormatDotenv, ext: ".env", plain: dotenvSample, opts: plainAge},
		{name: "ini", format: fileenc.FormatINI, ext: ".ini", plain: iniSample, opts: plainAge},
		{name: "encrypted_regex", format: fileenc.FormatYAML, ext: ".yaml", plain: yamlSample,
			opts: withSel(fileenc.Selectors{EncryptedRegex: "^(inner|k|sub|password.*)$"}), rule: `encrypted_regex: "^(inner|k|sub|password.*)$"`},
		{name: "unencrypted_regex", format: fileenc.FormatYAML, ext: ".yaml", plain: yamlSample,
			opts: withSel(fileenc.Selectors{UnencryptedRegex: "^(name|list)$"}), rule: `unencrypted_regex: "^(name|list)$"`},
		{name: "encrypted_suffix", format: fileenc.FormatJSON, ext: ".json", plain: `{"a_secret": "s", "b": "clear", "c_secret": {"d": 1}}`,
			opts: withSel(fileenc.Selectors{EncryptedSuffix: "_secret"}), rule: `encrypted_suffix: _secret`},
		{name: "mac_only_encrypted", format: fileenc.FormatYAML, ext: ".yaml", plain: yamlSample,
			opts: withSel(fileenc.Selectors{EncryptedRegex: "^inner$", MACOnlyEncrypted: true}), rule: "encrypted_regex: ^inner$\n    mac_only_encrypted: true"},
		{name: "encrypted_comment_regex", format: fileenc.FormatYAML, ext: ".yaml", plain: commentRegexSample,
			opts: withSel(fileenc.Selectors{EncryptedCommentRegex: "sops:enc"}), rule: "encrypted_comment_regex: sops:enc"},
		{name: "unencrypted_comment_regex", format: fileenc.FormatYAML, ext: ".yaml", plain: commentRegexSample,
			opts: withSel(fileenc.Selectors{UnencryptedCommentRegex: "sops:enc"}), rule: "unencrypted_comment_regex: sops:enc"},
	}
}

func TestInteropCofferToSops(t *testing.T) {
	k := loadTestKey(t, 1)
	env := []string{"SOPS_AGE_KEY_FILE=" + k.path}
	for _, tc := range interopCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			plainPath := writeFile(t, dir, "plain"+tc.ext, []byte(tc.plain))
			enc := cofferEncrypt(t, tc.plain, tc.format, tc.opts(k))
			got := mustSops(t, dir, env, "decrypt", writeFile(t, dir, "coffer.enc"+tc.ext, enc))
			writeFile(t, dir, ".sops.yaml", []byte("creation_rules:\n  - age: "+k.recipient+"\n    "+tc.rule+"\n"))
			sopsEnc := mustSops(t, dir, env, "encrypt", plainPath)
			want := mustSops(t, dir, env, "decrypt", writeFile(t, dir, "sops.enc"+tc.ext, []byte(sopsEnc)))
			if got != want {
				t.Errorf("sops decrypt of Coffer's file:\n%s\nwant (sops' own round trip):\n%s\nCoffer's file:\n%s", got, want, enc)
			}
		})
	}
}

func TestInteropSopsToCoffer(t *testing.T) {
	k := loadTestKey(t, 1)
	env := []string{"SOPS_AGE_KEY_FILE=" + k.path}
	for _, tc := range interopCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			plainPath := writeFile(t, dir, "plain"+tc.ext, []byte(tc.plain))
			writeFile(t, dir, ".sops.yaml", []byte("creation_rules:\n  - age: "+k.recipient+"\n    "+tc.rule+"\n"))
			sopsEnc := mustSops(t, dir, env, "encrypt", plainPath)
			got := cofferDecrypt(t, []byte(sopsEnc), tc.format, keysFor(k))
			want := mustSops(t, dir, env, "decrypt", writeFile(t, dir, "sops.enc"+tc.ext, []byte(sopsEnc)))
			if normalize(tc.format, got) != normalize(tc.format, want) {
				t.Errorf("Coffer decrypt of sops' file:\n%s\nwant (sops decrypt):\n%s", got, want)
			}
			// And Coffer's plaintext encrypts back to a file sops reads.
			back := cofferEncrypt(t, got, tc.format, tc.opts(k))
			again := mustSops(t, dir, env, "decrypt", writeFile(t, dir, "back.enc"+tc.ext, back))
			if normalize(tc.format, again) != normalize(tc.format, want) {
				t.Errorf("round trip through Coffer:\n%s\nwant:\n%s", again, want)
			}
		})
	}
}

// normalize removes the layout differences Coffer keeps on purpose: sops
// moves line comments above their key when decrypting and puts no blank
// line before a trailing comment; Coffer leaves comments where they were.
func normalize(f fileenc.Format, s string) string {
	if f != fileenc.FormatYAML {
		return s
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if i := strings.Index(l, " # "); i > 0 && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			indent := l[:len(l)-len(strings.TrimLeft(l, " -"))]
			out = append(out, strings.Repeat(" ", len(indent))+strings.TrimSpace(l[i+1:]))
			l = l[:i]
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func TestInteropKeyGroups(t *testing.T) {
	k1, k2, k3 := loadTestKey(t, 1), loadTestKey(t, 2), loadTestKey(t, 3)
	dir := t.TempDir()
	plain := "db:\n    password: hunter2\n    port: 5432\n"
	// Three groups, any two of them: k1 | k2 | k3.
	opts := fileenc.EncryptOptions{
		Groups:          []fileenc.KeyGroupSpec{{Age: []string{k1.recipient}}, {Age: []string{k2.recipient}}, {Age: []string{k3.recipient}}},
		ShamirThreshold: 2,
	}
	enc := cofferEncrypt(t, plain, fileenc.FormatYAML, opts)
	p := writeFile(t, dir, "groups.enc.yaml", enc)
	both := writeFile(t, dir, "k13.txt", append(mustRead(t, k1.path), mustRead(t, k3.path)...))
	if got := mustSops(t, dir, []string{"SOPS_AGE_KEY_FILE=" + both}, "decrypt", p); got != plain {
		t.Errorf("sops decrypt with groups 1 and 3 = %q, want %q", got, plain)
	}
	if _, errOut, err := runSops(t, dir, []string{"SOPS_AGE_KEY_FILE=" + k2.path}, nil, "decrypt", p); err == nil {
		t.Errorf("sops decrypted with one group of three (threshold 2)")
	} else if !strings.Contains(errOut, "threshold") {
		t.Logf("sops: %s", errOut)
	}

	// sops splits, Coffer combines: two groups, threshold 2.
	cfg := "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [" + k1.recipient + "]\n      - age: [" + k2.recipient + "]\n"
	writeFile(t, dir, ".sops.yaml", []byte(cfg))
	sopsEnc := mustSops(t, dir, []string{"SOPS_AGE_KEY_FILE=" + k1.path}, "encrypt", writeFile(t, dir, "plain.yaml", []byte(plain)))
	if got := cofferDecrypt(t, []byte(sopsEnc), fileenc.FormatYAML, keysFor(k1, k2)); got != plain {
		t.Errorf("Coffer decrypt of sops' two-group file = %q, want %q", got, plain)
	}
	if _, err := decrypt([]byte(sopsEnc), fileenc.FormatYAML, keysFor(k1)); err == nil {
		t.Errorf("Coffer decrypted a two-group, threshold-2 file with one group's key")
	}

	// sops refuses threshold 1 with two groups, and so does Coffer.
	writeFile(t, dir, ".sops.yaml", []byte(strings.Replace(cfg, "shamir_threshold: 2", "shamir_threshold: 1", 1)))
	if _, errOut, err := runSops(t, dir, []string{"SOPS_AGE_KEY_FILE=" + k1.path}, nil, "encrypt", filepath.Join(dir, "plain.yaml")); err == nil || !strings.Contains(errOut, "threshold must be at least 2") {
		t.Errorf("sops encrypt with threshold 1: err=%v %s; want it refused", err, errOut)
	}
	doc, err := fileenc.ParsePlain([]byte(plain), fileenc.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	opts.ShamirThreshold = 1
	if err := (&fileenc.Keys{}).Encrypt(context.Background(), doc, opts); err == nil {
		t.Errorf("Coffer encrypted with threshold 1 and several groups")
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
