package cli_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/coffertest"
)

// fileEnv runs `coffer file ...` in-process with a controlled environment.
type fileEnv struct {
	t    *testing.T
	home string
	vars map[string]string
}

func newFileEnv(t *testing.T) *fileEnv {
	t.Helper()
	home := t.TempDir()
	return &fileEnv{t: t, home: home, vars: map[string]string{
		"SOPS_AGE_KEY_FILE": testKeyPath(t, 1),
		"XDG_CONFIG_HOME":   filepath.Join(home, ".config"),
	}}
}

func (e *fileEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{
		Getenv:  func(k string) string { return e.vars[k] },
		Stdin:   strings.NewReader(stdin),
		Stdout:  &out,
		Stderr:  &errb,
		HomeDir: func() (string, error) { return e.home, nil },
	}
	err := cli.RunEnv(context.Background(), env, args)
	return result{code: cli.ExitCode(err), stdout: out.String(), stderr: errb.String()}
}

func (e *fileEnv) ok(stdin string, args ...string) string {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("coffer %v: exit %d\nstderr: %s", args, r.code, r.stderr)
	}
	return r.stdout
}

func testKeyPath(t testing.TB, n int) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "fileenc", "testdata", "age-test-key-"+string(rune('0'+n))+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testRecipient(t testing.TB, n int) string {
	t.Helper()
	raw, err := os.ReadFile(testKeyPath(t, n))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`public key: (age1\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("no public key in the test key file")
	}
	return string(m[1])
}

func write(t testing.TB, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func read(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

const secretYAML = `# database settings
db:
    user: admin # the login
    password: hunter2
    port: 5432
replicas_unencrypted: 3
`

func TestFileEncryptDecrypt(t *testing.T) {
	e := newFileEnv(t)
	dir := t.TempDir()
	r1 := testRecipient(t, 1)
	plain := write(t, filepath.Join(dir, "app.yaml"), secretYAML)

	enc := e.ok("", "file", "encrypt", "--age", r1, plain)
	if strings.Contains(enc, "hunter2") || !strings.Contains(enc, "replicas_unencrypted: 3") || !strings.Contains(enc, "recipient: "+r1) {
		t.Fatalf("encrypted output:\n%s", enc)
	}
	encPath := write(t, filepath.Join(dir, "app.enc.yaml"), enc)
	if got := e.ok("", "file", "decrypt", encPath); got != secretYAML {
		t.Errorf("decrypt = %q, want %q", got, secretYAML)
	}
	if got := e.ok("", "file", "decrypt", "--extract", `["db"]["password"]`, encPath); got != "hunter2" {
		t.Errorf("--extract password = %q", got)
	}
	if got := e.ok("", "file", "decrypt", "--extract", `["db"]["port"]`, encPath); got != "5432\n" {
		t.Errorf("--extract port = %q", got)
	}
	if got := e.ok("", "file", "decrypt", "--output-type", "json", encPath); !strings.Contains(got, "\"password\": \"hunter2\"") {
		t.Errorf("--output-type json:\n%s", got)
	}
	// stdin needs a type; --output writes a 0600 file.
	if r := e.run(secretYAML, "file", "encrypt", "--age", r1, "-"); r.code != 2 {
		t.Errorf("encrypt from stdin without --input-type: exit %d, want 2", r.code)
	}
	out := filepath.Join(dir, "stdin.enc.json")
	e.ok(secretYAML, "file", "encrypt", "--age", r1, "--input-type", "yaml", "--output-type", "json", "--output", out, "-")
	if m := mode(t, out); m != 0o600 {
		t.Errorf("--output file mode = %v, want 0600", m)
	}
	noComments := strings.NewReplacer("# database settings\n", "", " # the login", "").Replace(secretYAML)
	if got := e.ok("", "file", "decrypt", "--output-type", "yaml", out); got != noComments {
		t.Errorf("decrypt of the JSON file = %q, want %q", got, noComments)
	}
	// In place, both ways.
	inplace := write(t, filepath.Join(dir, "inplace.yaml"), secretYAML)
	os.Chmod(inplace, 0o644)
	e.ok("", "file", "encrypt", "-i", "--age", r1, inplace)
	if s := read(t, inplace); strings.Contains(s, "hunter2") || mode(t, inplace) != 0o600 {
		t.Errorf("encrypt -i: mode %v, content:\n%s", mode(t, inplace), s)
	}
	if r := e.run("", "file", "encrypt", "-i", "--age", r1, inplace); r.code != 1 || !strings.Contains(r.stderr, "already encrypted") {
		t.Errorf("encrypting twice: exit %d %s", r.code, r.stderr)
	}
	e.ok("", "file", "decrypt", "-i", inplace)
	if s := read(t, inplace); s != secretYAML {
		t.Errorf("decrypt -i = %q", s)
	}
	// Other formats by extension.
	for name, content := range map[string]string{"a.json": `{"k": "v", "n": 1}`, "a.env": "K=v\n", "a.ini": "[s]\nk = v\n"} {
		p := write(t, filepath.Join(dir, name), content)
		encOut := filepath.Join(dir, "enc-"+name)
		e.ok("", "file", "encrypt", "--age", r1, "--output", encOut, p)
		got := e.ok("", "file", "decrypt", encOut)
		if !strings.Contains(got, "v") || strings.Contains(read(t, encOut), "\"v\"") {
			t.Errorf("%s: decrypt = %q", name, got)
		}
	}
	// No keys anywhere: a clear error.
	if r := e.run("", "file", "encrypt", plain); r.code != 1 || !strings.Contains(r.stderr, "no master keys") {
		t.Errorf("encrypt without keys: exit %d %s", r.code, r.stderr)
	}
}

func TestFileTamperWritesNothing(t *testing.T) {
	e := newFileEnv(t)
	dir := t.TempDir()
	enc := e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), write(t, filepath.Join(dir, "p.yaml"), secretYAML))
	re := regexp.MustCompile(`password: ENC\[AES256_GCM,data:([A-Za-z0-9+/]+)`)
	m := re.FindStringSubmatch(enc)
	flipped := m[1][:len(m[1])-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(m[1], "A")]
	tampered := strings.Replace(enc, m[1], flipped, 1)
	p := write(t, filepath.Join(dir, "t.enc.yaml"), tampered)
	out := filepath.Join(dir, "out.yaml")
	r := e.run("", "file", "decrypt", "--output", out, p)
	if r.code != 1 || !strings.Contains(r.stderr, `["db"]["password"]`) || r.stdout != "" {
		t.Errorf("decrypt of a tampered value: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("--output file written despite the error")
	}
	r = e.run("", "file", "decrypt", "-i", p)
	if r.code != 1 || read(t, p) != tampered {
		t.Errorf("decrypt -i of a tampered file: exit %d, file changed: %v", r.code, read(t, p) != tampered)
	}
	// Tampered MAC.
	macRe := regexp.MustCompile(`mac: ENC\[AES256_GCM,data:([A-Za-z0-9+/])`)
	mm := macRe.FindStringSubmatch(enc)
	c := "A"
	if mm[1] == "A" {
		c = "B"
	}
	p2 := write(t, filepath.Join(dir, "t2.enc.yaml"), macRe.ReplaceAllString(enc, "mac: ENC[AES256_GCM,data:"+c))
	if r := e.run("", "file", "decrypt", p2); r.code != 1 || !strings.Contains(r.stderr, "sops metadata") || r.stdout != "" {
		t.Errorf("decrypt with a tampered MAC: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// Wrong key.
	e.vars["SOPS_AGE_KEY_FILE"] = testKeyPath(t, 2)
	if r := e.run("", "file", "decrypt", write(t, filepath.Join(dir, "ok.enc.yaml"), enc)); r.code != 1 || !strings.Contains(r.stderr, "no key could decrypt") {
		t.Errorf("decrypt with the wrong key: exit %d %s", r.code, r.stderr)
	}
}

func TestFileConfigRules(t *testing.T) {
	e := newFileEnv(t)
	e.vars["SOPS_AGE_KEY_FILE"] = ""
	e.vars["SOPS_AGE_KEY"] = read(t, testKeyPath(t, 1)) + read(t, testKeyPath(t, 3))
	repo := t.TempDir()
	r1, r2, r3 := testRecipient(t, 1), testRecipient(t, 2), testRecipient(t, 3)
	write(t, filepath.Join(repo, ".sops.yaml"), `creation_rules:
  - path_regex: ^prod/.*\.yaml$
    encrypted_regex: ^(password|token)$
    shamir_threshold: 2
    key_groups:
      - age: [`+r1+`]
      - age: [`+r2+`]
      - age: [`+r3+`]
  - path_regex: \.yaml$
    age: `+r2+`
`)
	prod := write(t, filepath.Join(repo, "prod", "db.yaml"), secretYAML)
	enc := e.ok("", "file", "encrypt", prod)
	if !strings.Contains(enc, "user: admin") || strings.Contains(enc, "hunter2") || !strings.Contains(enc, "shamir_threshold: 2") || !strings.Contains(enc, "encrypted_regex") {
		t.Fatalf("prod rule not applied:\n%s", enc)
	}
	// Keys 1 and 3 hold two of the three shares.
	p := write(t, filepath.Join(repo, "prod", "db.enc.yaml"), enc)
	if got := e.ok("", "file", "decrypt", p); got != secretYAML {
		t.Errorf("decrypt with two of three groups = %q", got)
	}
	e.vars["SOPS_AGE_KEY"] = read(t, testKeyPath(t, 1))
	if r := e.run("", "file", "decrypt", p); r.code != 1 || !strings.Contains(r.stderr, "need 2 shares, 1 recovered") {
		t.Errorf("decrypt with one group: exit %d %s", r.code, r.stderr)
	}
	// Another directory: the second rule.
	dev := write(t, filepath.Join(repo, "dev", "x.yaml"), "a: 1\n")
	if enc := e.ok("", "file", "encrypt", dev); !strings.Contains(enc, r2) || strings.Contains(enc, r1) {
		t.Errorf("dev rule not applied:\n%s", enc)
	}
	// --config picks another file; no matching rule is an error.
	other := write(t, filepath.Join(t.TempDir(), "cfg.yaml"), "creation_rules:\n  - path_regex: nothing-matches\n    age: "+r1+"\n")
	if r := e.run("", "file", "encrypt", "--config", other, dev); r.code != 1 || !strings.Contains(r.stderr, "no creation rule matches") {
		t.Errorf("--config without a matching rule: exit %d %s", r.code, r.stderr)
	}
	// Flags override the config's keys; selector flags its selectors.
	enc = e.ok("", "file", "encrypt", "--age", r3, "--encrypted-suffix", "word", prod)
	if !strings.Contains(enc, r3) || strings.Contains(enc, "key_groups") || !strings.Contains(enc, "user: admin") || strings.Contains(enc, "hunter2") {
		t.Errorf("flags did not override the rule:\n%s", enc)
	}
	// An invalid .sops.yaml is reported.
	write(t, filepath.Join(repo, "bad", ".sops.yaml"), "creation_rules:\n  - age: "+r1+"\n    unknown_field: 1\n")
	if r := e.run("", "file", "encrypt", write(t, filepath.Join(repo, "bad", "x.yaml"), "a: 1\n")); r.code != 1 || !strings.Contains(r.stderr, "unknown_field") {
		t.Errorf("invalid .sops.yaml: exit %d %s", r.code, r.stderr)
	}
}

func TestFileAgeKeyLookup(t *testing.T) {
	e := newFileEnv(t)
	dir := t.TempDir()
	encPath := write(t, filepath.Join(dir, "x.enc.yaml"), e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), write(t, filepath.Join(dir, "x.yaml"), "a: b\n")))
	e.vars["SOPS_AGE_KEY_FILE"] = ""
	if r := e.run("", "file", "decrypt", encPath); r.code != 1 {
		t.Fatalf("decrypt without identities: exit %d", r.code)
	}
	// $XDG_CONFIG_HOME/sops/age/keys.txt
	write(t, filepath.Join(e.home, ".config", "sops", "age", "keys.txt"), read(t, testKeyPath(t, 1)))
	if got := e.ok("", "file", "decrypt", encPath); got != "a: b\n" {
		t.Errorf("decrypt with XDG keys.txt = %q", got)
	}
	// ~/.config/sops/age/keys.txt when XDG_CONFIG_HOME is unset.
	e.vars["XDG_CONFIG_HOME"] = ""
	if got := e.ok("", "file", "decrypt", encPath); got != "a: b\n" {
		t.Errorf("decrypt with ~/.config keys.txt = %q", got)
	}
	os.RemoveAll(filepath.Join(e.home, ".config"))
	e.vars["SOPS_AGE_KEY"] = read(t, testKeyPath(t, 1))
	if got := e.ok("", "file", "decrypt", encPath); got != "a: b\n" {
		t.Errorf("decrypt with SOPS_AGE_KEY = %q", got)
	}
	e.vars["SOPS_AGE_KEY"] = "AGE-SECRET-KEY-1NOTAKEY"
	if r := e.run("", "file", "decrypt", encPath); r.code != 1 || strings.Contains(r.stderr, "NOTAKEY") {
		t.Errorf("malformed SOPS_AGE_KEY: exit %d, stderr %q (must not echo the key)", r.code, r.stderr)
	}
}

func TestFileSetUnsetRotate(t *testing.T) {
	e := newFileEnv(t)
	dir := t.TempDir()
	r1, r2 := testRecipient(t, 1), testRecipient(t, 2)
	p := write(t, filepath.Join(dir, "s.enc.yaml"), e.ok("", "file", "encrypt", "--age", r1, write(t, filepath.Join(dir, "s.yaml"), secretYAML)))
	before := read(t, p)
	e.ok("", "file", "set", p, `["db"]["password"]`, `"correct horse"`)
	after := read(t, p)
	if mode(t, p) != 0o600 {
		t.Errorf("set: mode %v", mode(t, p))
	}
	// Only the changed value, lastmodified and the MAC differ.
	changed := 0
	bl, al := strings.Split(before, "\n"), strings.Split(after, "\n")
	for i := range bl {
		if i < len(al) && bl[i] != al[i] {
			changed++
			if !strings.Contains(bl[i], "password:") && !strings.Contains(bl[i], "lastmodified:") && !strings.Contains(bl[i], "mac:") {
				t.Errorf("set changed an unrelated line: %q -> %q", bl[i], al[i])
			}
		}
	}
	if changed == 0 {
		t.Errorf("set changed nothing")
	}
	if got := e.ok("", "file", "decrypt", "--extract", `["db"]["password"]`, p); got != "correct horse" {
		t.Errorf("after set: %q", got)
	}
	e.ok("", "file", "set", p, `["new"]["nested"]`, `{"n": 1, "list": [true]}`)
	if got := e.ok("", "file", "decrypt", "--extract", `["new"]["nested"]["n"]`, p); got != "1\n" {
		t.Errorf("after set of a new subtree: %q", got)
	}
	if r := e.run("", "file", "set", p, `["x"]`, `not json`); r.code != 2 {
		t.Errorf("set with a non-JSON value: exit %d", r.code)
	}
	e.ok("", "file", "unset", p, `["db"]["user"]`)
	if r := e.run("", "file", "decrypt", "--extract", `["db"]["user"]`, p); r.code != 1 || !strings.Contains(r.stderr, "path not found") {
		t.Errorf("after unset: exit %d %s", r.code, r.stderr)
	}
	if r := e.run("", "file", "unset", p, `["nope"]`); r.code != 1 {
		t.Errorf("unset of a missing key: exit %d", r.code)
	}
	// Rotate to a new data key and swap recipients.
	e.ok("", "file", "rotate", "-i", "--add-age", r2, "--rm-age", r1, p)
	rotated := read(t, p)
	if strings.Contains(rotated, r1) || !strings.Contains(rotated, r2) {
		t.Fatalf("rotate did not swap recipients:\n%s", rotated)
	}
	if r := e.run("", "file", "decrypt", p); r.code != 1 {
		t.Errorf("the removed key still decrypts after rotate")
	}
	e.vars["SOPS_AGE_KEY_FILE"] = testKeyPath(t, 2)
	if got := e.ok("", "file", "decrypt", "--extract", `["db"]["password"]`, p); got != "correct horse" {
		t.Errorf("after rotate: %q", got)
	}
	if r := e.run("", "file", "rotate", "-i", "--rm-age", r2, p); r.code != 1 || !strings.Contains(r.stderr, "no master key") {
		t.Errorf("rotate removing the last key: exit %d %s", r.code, r.stderr)
	}
}

func TestFileUpdateKeys(t *testing.T) {
	e := newFileEnv(t)
	repo := t.TempDir()
	r1, r2 := testRecipient(t, 1), testRecipient(t, 2)
	write(t, filepath.Join(repo, ".sops.yaml"), "creation_rules:\n  - age: "+r1+"\n")
	p := filepath.Join(repo, "s.yaml")
	write(t, p, secretYAML)
	e.ok("", "file", "encrypt", "-i", p)
	before := read(t, p)
	if out := e.run("", "file", "updatekeys", p); out.code != 0 || !strings.Contains(out.stderr, "already match") {
		t.Errorf("updatekeys with matching keys: %+v", out)
	}
	write(t, filepath.Join(repo, ".sops.yaml"), "creation_rules:\n  - age: "+r1+","+r2+"\n")
	if out := e.run("n\n", "file", "updatekeys", p); out.code != 0 || read(t, p) != before || !strings.Contains(out.stderr, "+ age "+r2) {
		t.Errorf("updatekeys answered no: %+v, file changed: %v", out, read(t, p) != before)
	}
	e.ok("", "file", "updatekeys", "--yes", p)
	after := read(t, p)
	if !strings.Contains(after, r2) {
		t.Fatalf("updatekeys did not add the key:\n%s", after)
	}
	// Values keep their ciphertext.
	valRe := regexp.MustCompile(`password: (ENC\[[^\]]*\])`)
	if valRe.FindString(before) != valRe.FindString(after) {
		t.Errorf("updatekeys re-encrypted the values")
	}
	e.vars["SOPS_AGE_KEY_FILE"] = testKeyPath(t, 2)
	if got := e.ok("", "file", "decrypt", p); got != secretYAML {
		t.Errorf("decrypt with the added key = %q", got)
	}
}

func TestFileExec(t *testing.T) {
	e := newFileEnv(t)
	dir := t.TempDir()
	p := write(t, filepath.Join(dir, "e.enc.env"), e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), write(t, filepath.Join(dir, "e.env"), "DB_PASSWORD=hunter2\nexport MODE=prod\n")))
	if got := e.ok("", "file", "exec-env", p, `printf '%s/%s' "$DB_PASSWORD" "$MODE"`); got != "hunter2/prod" {
		t.Errorf("exec-env output = %q", got)
	}
	if r := e.run("", "file", "exec-env", p, "exit 7"); r.code != 7 {
		t.Errorf("exec-env exit status = %d, want 7", r.code)
	}
	if got := e.ok("", "file", "exec-env", "--pristine", p, `printf '%s' "${HOME:-none}"`); got != "none" {
		t.Errorf("--pristine kept HOME: %q", got)
	}
	// Nested values cannot become variables.
	y := write(t, filepath.Join(dir, "n.enc.yaml"), e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), write(t, filepath.Join(dir, "n.yaml"), secretYAML)))
	if r := e.run("", "file", "exec-env", y, "true"); r.code != 1 || !strings.Contains(r.stderr, "nested") {
		t.Errorf("exec-env of a nested file: exit %d %s", r.code, r.stderr)
	}
	// exec-file: a 0600 file in a 0700 directory, gone afterwards.
	got := e.ok("", "file", "exec-file", y, `stat -c '%a' {} "$(dirname {})"; cat {}; echo "{}"`)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if lines[0] != "600" || lines[1] != "700" || !strings.Contains(got, "password: hunter2") {
		t.Errorf("exec-file saw:\n%s", got)
	}
	tmp := lines[len(lines)-1]
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("exec-file left %s behind", tmp)
	}
}

// editorScript writes a shell script usable as $EDITOR that logs the file's
// mode, its directory's mode and its path, then runs body with the file
// as $1.
func editorScript(t *testing.T, dir, body string) string {
	t.Helper()
	log := filepath.Join(dir, "editor.log")
	p := filepath.Join(dir, "editor.sh")
	script := "#!/bin/sh\nstat -c '%a %n' \"$1\" >> " + log + "\nstat -c '%a' \"$(dirname \"$1\")\" >> " + log + "\n" + body + "\n"
	if err := os.WriteFile(p, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileEdit(t *testing.T) {
	e := newFileEnv(t)
	dir := t.TempDir()
	p := write(t, filepath.Join(dir, "s.enc.yaml"), e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), write(t, filepath.Join(dir, "s.yaml"), secretYAML)))
	original := read(t, p)

	// A real change: only that value gets a new ciphertext.
	e.vars["EDITOR"] = editorScript(t, dir, `sed -i 's/port: 5432/port: 6543/' "$1"`)
	e.ok("", "file", "edit", p)
	edited := read(t, p)
	if got := e.ok("", "file", "decrypt", "--extract", `["db"]["port"]`, p); got != "6543\n" {
		t.Errorf("after edit: port = %q", got)
	}
	pwRe := regexp.MustCompile(`password: ENC\[[^\]]*\]`)
	if pwRe.FindString(original) != pwRe.FindString(edited) {
		t.Errorf("edit re-encrypted an unchanged value")
	}
	log := read(t, filepath.Join(dir, "editor.log"))
	fields := strings.Fields(log)
	if len(fields) < 3 || fields[0] != "600" || fields[2] != "700" {
		t.Errorf("editor saw modes %q, want 600 for the file and 700 for its directory", log)
	}
	if _, err := os.Stat(filepath.Dir(fields[1])); !os.IsNotExist(err) {
		t.Errorf("edit left its temporary directory %s", filepath.Dir(fields[1]))
	}
	if mode(t, p) != 0o600 {
		t.Errorf("edited file mode %v", mode(t, p))
	}

	// No change: nothing written.
	e.vars["EDITOR"] = editorScript(t, dir, "true")
	if r := e.run("", "file", "edit", p); r.code != 0 || read(t, p) != edited || !strings.Contains(r.stderr, "no changes") {
		t.Errorf("edit without changes: %+v", r)
	}

	// Invalid YAML, then the user quits: the file is untouched.
	e.vars["EDITOR"] = editorScript(t, dir, `echo 'db: [unclosed' > "$1"`)
	r := e.run("q\n", "file", "edit", p)
	if r.code != 1 || read(t, p) != edited || !strings.Contains(r.stderr, "not valid yaml") || !strings.Contains(r.stderr, "unchanged") {
		t.Errorf("edit to invalid YAML then quit: %+v", r)
	}
	// Invalid YAML, the editor reopens, the second attempt is valid.
	counter := filepath.Join(dir, "count")
	e.vars["EDITOR"] = editorScript(t, dir, `if [ -f `+counter+` ]; then echo 'fixed: true' > "$1"; else touch `+counter+`; echo 'db: [' > "$1"; fi`)
	r = e.run("\n", "file", "edit", p)
	if r.code != 0 {
		t.Fatalf("edit with a retry: %+v", r)
	}
	if got := e.ok("", "file", "decrypt", p); got != "fixed: true\n" {
		t.Errorf("after the retry: %q", got)
	}
	// Conflict markers are refused like invalid YAML.
	e.vars["EDITOR"] = editorScript(t, dir, `printf 'k: |\n  <<<<<<< ours\n  a\n  =======\n  b\n  >>>>>>> theirs\n' > "$1"`)
	if r := e.run("q\n", "file", "edit", p); r.code != 1 || !strings.Contains(r.stderr, "conflict markers") {
		t.Errorf("edit leaving conflict markers: %+v", r)
	}

	// A new file is created from the keys of the flags.
	np := filepath.Join(dir, "new.enc.yaml")
	e.vars["EDITOR"] = editorScript(t, dir, `echo 'token: abc' > "$1"`)
	e.ok("", "file", "edit", "--age", testRecipient(t, 1), np)
	if got := e.ok("", "file", "decrypt", np); got != "token: abc\n" || mode(t, np) != 0o600 {
		t.Errorf("new file: %q mode %v", got, mode(t, np))
	}
}

func TestFileVault(t *testing.T) {
	srv := coffertest.StartDev(t)
	e := newFileEnv(t)
	e.vars["SOPS_AGE_KEY_FILE"] = ""
	e.vars["COFFER_ADDR"] = srv.Addr
	e.vars["COFFER_TOKEN"] = srv.RootToken
	e.ok("", "secrets", "enable", "transit")
	e.ok("", "write", "-f", "transit/keys/files")
	dir := t.TempDir()
	// A relative transit key URI uses COFFER_ADDR.
	enc := e.ok("", "file", "encrypt", "--hc-vault-transit", "transit/keys/files", write(t, filepath.Join(dir, "v.yaml"), secretYAML))
	if !strings.Contains(enc, "vault_address: "+srv.Addr) || !strings.Contains(enc, "key_name: files") {
		t.Fatalf("hc_vault metadata:\n%s", enc)
	}
	p := write(t, filepath.Join(dir, "v.enc.yaml"), enc)
	if got := e.ok("", "file", "decrypt", p); got != secretYAML {
		t.Errorf("decrypt through transit = %q", got)
	}
	// The token may come from ~/.vault-token, as for sops.
	e.vars["COFFER_TOKEN"] = ""
	if r := e.run("", "file", "decrypt", p); r.code != 1 || !strings.Contains(r.stderr, "hc_vault") {
		t.Errorf("decrypt without a token: %+v", r)
	}
	write(t, filepath.Join(e.home, ".vault-token"), srv.RootToken+"\n")
	if got := e.ok("", "file", "decrypt", p); got != secretYAML {
		t.Errorf("decrypt with ~/.vault-token = %q", got)
	}
}

// gitRepo makes a repository with the merge driver set up to run the real
// coffer binary.
func gitRepo(t *testing.T, e *fileEnv) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		coffertest.RequireIntegration(t, "git not installed")
	}
	bin := coffertest.Binary(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "config", "user.email", "t@example.com")
	git(t, repo, "config", "user.name", "t")
	out := e.ok("", "file", "git-setup", "--dir", repo, "--command", bin)
	if !strings.Contains(out, "configured") || !strings.Contains(read(t, filepath.Join(repo, ".gitattributes")), "*.enc.yaml diff=sopsdiffer merge=sopsmerge") {
		t.Fatalf("git-setup: %s", out)
	}
	e.ok("", "file", "git-setup", "--dir", repo, "--command", bin) // idempotent
	if n := strings.Count(read(t, filepath.Join(repo, ".gitattributes")), "*.enc.yaml "); n != 1 {
		t.Errorf("git-setup twice wrote the pattern %d times", n)
	}
	return repo
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitEnv(dir, nil, args...)
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

func gitEnv(dir string, env []string, args ...string) (string, error) {
	c := exec.Command("git", args...)
	c.Dir = dir
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	return string(out), err
}

func TestFileGitMergeDriver(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell scripts")
	}
	e := newFileEnv(t)
	repo := gitRepo(t, e)
	gitKeys := []string{"SOPS_AGE_KEY_FILE=" + testKeyPath(t, 1)}
	p := filepath.Join(repo, "app.enc.yaml")
	write(t, filepath.Join(repo, "app.yaml"), "db:\n    user: admin\n    password: one\nfeature: off\nshared: same\n")
	e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), "--output", p, filepath.Join(repo, "app.yaml"))
	os.Remove(filepath.Join(repo, "app.yaml"))
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "base")

	// textconv shows the diff decrypted.
	git(t, repo, "checkout", "-q", "-b", "theirs")
	e.ok("", "file", "set", p, `["db"]["password"]`, `"two"`)
	e.ok("", "file", "set", p, `["added_by_them"]`, `"x"`)
	git(t, repo, "commit", "-q", "-am", "theirs")
	diff, err := gitEnv(repo, gitKeys, "diff", "main", "theirs")
	if err != nil || !strings.Contains(diff, "-    password: one") || !strings.Contains(diff, "+    password: two") {
		t.Errorf("git diff through textconv:\n%s %v", diff, err)
	}

	// Non-conflicting changes on both sides merge by value.
	git(t, repo, "checkout", "-q", "main")
	e.ok("", "file", "set", p, `["feature"]`, `"on"`)
	git(t, repo, "commit", "-q", "-am", "ours")
	if out, err := gitEnv(repo, gitKeys, "merge", "-q", "--no-edit", "theirs"); err != nil {
		t.Fatalf("git merge: %v\n%s", err, out)
	}
	got := e.ok("", "file", "decrypt", p)
	want := "db:\n    user: admin\n    password: two\nfeature: \"on\"\nshared: same\nadded_by_them: x\n"
	if got != want {
		t.Errorf("merged file:\n%s\nwant:\n%s", got, want)
	}

	// Both sides change the same value: a conflict inside an encrypted value.
	git(t, repo, "checkout", "-q", "-b", "theirs2")
	e.ok("", "file", "set", p, `["shared"]`, `"theirs"`)
	git(t, repo, "commit", "-q", "-am", "theirs2")
	git(t, repo, "checkout", "-q", "main")
	e.ok("", "file", "set", p, `["shared"]`, `"ours"`)
	git(t, repo, "commit", "-q", "-am", "ours2")
	out, err := gitEnv(repo, gitKeys, "merge", "-q", "--no-edit", "theirs2")
	if err == nil {
		t.Fatalf("git merge of a conflict succeeded:\n%s", out)
	}
	if !strings.Contains(out, `merge conflicts at ["shared"]`) {
		t.Errorf("merge output does not name the conflict:\n%s", out)
	}
	raw := read(t, p)
	if strings.Contains(raw, "<<<<<<<") || strings.Contains(raw, "ours") {
		t.Errorf("conflict markers or plaintext in the working tree:\n%s", raw)
	}
	got = e.ok("", "file", "decrypt", "--extract", `["shared"]`, p)
	if got != "<<<<<<< ours\nours\n=======\ntheirs\n>>>>>>> theirs\n" {
		t.Errorf("conflicting value = %q", got)
	}
	// Resolve with edit (markers refused until gone).
	e.vars["EDITOR"] = editorScript(t, t.TempDir(), `sed -i -e '/<<<<<<<\|=======\|>>>>>>>/d' -e '/^    theirs$/d' "$1"`)
	e.ok("", "file", "edit", p)
	if got := e.ok("", "file", "decrypt", "--extract", `["shared"]`, p); got != "ours\n" {
		t.Errorf("resolved value = %q", got)
	}
}

func TestFileGenerate(t *testing.T) {
	e := newFileEnv(t)
	dir := t.TempDir()
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: hunter2\n"
	write(t, filepath.Join(dir, "secret.enc.yaml"), e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), "--encrypted-regex", "^(data|stringData)$", write(t, filepath.Join(t.TempDir(), "s.yaml"), secret)))
	write(t, filepath.Join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n")
	write(t, filepath.Join(dir, "kustomization.yaml"), "resources: []\n")
	out := e.ok("", "file", "generate", dir)
	if !strings.Contains(out, "password: hunter2") || !strings.Contains(out, "name: plain") || strings.Contains(out, "resources:") || strings.Contains(out, "sops:") {
		t.Errorf("generate of a directory:\n%s", out)
	}
	// A SopsGenerator config (the kustomize legacy exec plugin argument).
	cfg := write(t, filepath.Join(dir, "gen.yaml"), "apiVersion: coffer.dev/v1\nkind: SopsGenerator\nmetadata:\n  name: secrets\nfiles:\n  - secret.enc.yaml\n")
	out = e.ok("", "file", "generate", cfg)
	if out != secret {
		t.Errorf("generate of a SopsGenerator = %q, want %q", out, secret)
	}
	// KRM function mode.
	rl := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: existing\nfunctionConfig:\n  apiVersion: coffer.dev/v1\n  kind: SopsGenerator\n  metadata:\n    name: secrets\n  files:\n  - " + filepath.Join(dir, "secret.enc.yaml") + "\n"
	out = e.ok(rl, "file", "generate", "--krm")
	if !strings.Contains(out, "name: existing") || !strings.Contains(out, "password: hunter2") || !strings.Contains(out, "kind: ResourceList") {
		t.Errorf("generate --krm:\n%s", out)
	}
}

// TestFileKustomizePlugin runs the real kustomize (kubectl kustomize) with
// coffer as a legacy exec generator plugin, as docs/sops.md describes.
func TestFileKustomizePlugin(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		coffertest.RequireIntegration(t, "kubectl (with kustomize) not installed")
	}
	e := newFileEnv(t)
	bin := coffertest.Binary(t)
	xdg := t.TempDir()
	plugin := filepath.Join(xdg, "kustomize", "plugin", "coffer.dev", "v1", "sopsgenerator", "SopsGenerator")
	write(t, plugin, "#!/bin/sh\nexec "+bin+" file generate \"$@\"\n")
	if err := os.Chmod(plugin, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n    name: db\nstringData:\n    password: hunter2\n"
	write(t, filepath.Join(dir, "secret.enc.yaml"), e.ok("", "file", "encrypt", "--age", testRecipient(t, 1), "--encrypted-regex", "^(data|stringData)$", write(t, filepath.Join(t.TempDir(), "s.yaml"), secret)))
	write(t, filepath.Join(dir, "gen.yaml"), "apiVersion: coffer.dev/v1\nkind: SopsGenerator\nmetadata:\n  name: secrets\nfiles:\n  - secret.enc.yaml\n")
	write(t, filepath.Join(dir, "kustomization.yaml"), "generators:\n  - gen.yaml\n")
	c := exec.Command(kubectl, "kustomize", "--enable-alpha-plugins", dir)
	c.Dir = dir
	c.Env = append(os.Environ(), "XDG_CONFIG_HOME="+xdg, "SOPS_AGE_KEY_FILE="+testKeyPath(t, 1))
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "password: hunter2") || !strings.Contains(string(out), "kind: Secret") {
		t.Errorf("kustomize output:\n%s", out)
	}
}
