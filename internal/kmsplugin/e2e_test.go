package kmsplugin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coffer-dev/coffer/internal/cli"
	"github.com/coffer-dev/coffer/internal/coffertest"
	"github.com/coffer-dev/coffer/internal/kubetest"
)

// pluginProcess is `coffer kms-plugin` running in-process through the CLI.
type pluginProcess struct {
	stdout, stderr *coffertest.SyncBuffer
	cancel         context.CancelFunc
	done           chan error
}

func startPluginCLI(t *testing.T, args ...string) *pluginProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &pluginProcess{stdout: &coffertest.SyncBuffer{}, stderr: &coffertest.SyncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	env := &cli.Env{
		Getenv:  func(string) string { return "" },
		Stdin:   strings.NewReader(""),
		Stdout:  p.stdout,
		Stderr:  p.stderr,
		HomeDir: func() (string, error) { return t.TempDir(), nil },
	}
	go func() { p.done <- cli.RunEnv(ctx, env, append([]string{"kms-plugin"}, args...)) }()
	t.Cleanup(p.stop)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stdout.String(), "Coffer KMS plugin started") {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("coffer kms-plugin exited early: %v\nstdout:\n%s\nstderr:\n%s", err, p.stdout, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("coffer kms-plugin did not start\nstderr:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

func (p *pluginProcess) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	<-p.done
}

// envelope is the apiserver's KMS v2 EncryptedObject (protobuf, after the
// k8s:enc:kms:v2:<name>: prefix): field 1 encryptedData, 2 keyID, 3
// encryptedDEKSource, 4 annotations, 5 encryptedDEKSourceType.
type envelope struct {
	data, edek  []byte
	keyID       string
	annotations map[string][]byte
}

func parseEnvelope(t *testing.T, raw []byte, prefix string) envelope {
	t.Helper()
	b, ok := bytes.CutPrefix(raw, []byte(prefix))
	if !ok {
		t.Fatalf("etcd value does not start with %q: %q", prefix, raw[:min(len(raw), 40)])
	}
	var e envelope
	e.annotations = map[string][]byte{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad envelope tag")
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				t.Fatalf("bad envelope field %d", num)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			t.Fatalf("bad envelope field %d", num)
		}
		b = b[n:]
		switch num {
		case 1:
			e.data = v
		case 2:
			e.keyID = string(v)
		case 3:
			e.edek = v
		case 4: // map entry: 1 key, 2 value
			var k string
			var val []byte
			for len(v) > 0 {
				fn, _, m := protowire.ConsumeTag(v)
				v = v[m:]
				fv, m := protowire.ConsumeBytes(v)
				if m < 0 {
					t.Fatalf("bad annotation entry")
				}
				v = v[m:]
				if fn == 1 {
					k = string(fv)
				} else {
					val = fv
				}
			}
			e.annotations[k] = val
		}
	}
	return e
}

// TestKubernetesEncryptionAtRest is issue 5's end-to-end test: a real etcd
// and kube-apiserver with a KMS v2 EncryptionConfiguration pointing at
// `coffer kms-plugin`, backed by a transit key of a real Coffer server.
func TestKubernetesEncryptionAtRest(t *testing.T) {
	if _, _, ok := kubetest.Binaries(); !ok {
		coffertest.RequireIntegration(t, "kube-apiserver and etcd are not built: run hack/testenv/build.sh")
	}
	c := startCoffer(t)
	tokFile := c.tokenFile(t, c.token(t, "kms", nil))
	sock := filepath.Join(shortTempDir(t), "kms.sock")
	pluginArgs := []string{"-socket", "unix://" + sock, "-address", c.srv.Addr, "-key", "kubernetes",
		"-token-file", tokFile, "-health-cache-ttl", "1s", "-key-poll-interval", "1s", "-log-level", "debug"}
	plugin := startPluginCLI(t, pluginArgs...)
	encCfg := fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: coffer
          endpoint: unix://%s
          timeout: 3s
      - identity: {}
`, sock)
	cp := kubetest.Start(t, kubetest.Options{EncryptionConfig: encCfg})
	const prefix = "k8s:enc:kms:v2:coffer:"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	secrets := cp.Client.CoreV1().Secrets("default")

	canary := func(name string) string { return "canary-" + name + "-7f3a9c" }
	create := func(name string) error {
		_, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Data:       map[string][]byte{"password": []byte(canary(name))},
		}, metav1.CreateOptions{})
		return err
	}
	stored := func(name string) envelope {
		t.Helper()
		raw, found, err := cp.EtcdGet(ctx, "/registry/secrets/default/"+name)
		if err != nil || !found {
			t.Fatalf("etcd get %s: found %v, %v", name, found, err)
		}
		for _, form := range []string{canary(name), base64.StdEncoding.EncodeToString([]byte(canary(name))), fmt.Sprintf("%x", canary(name))} {
			if bytes.Contains(raw, []byte(form)) {
				t.Fatalf("etcd value of %s contains the plaintext (%q)", name, form)
			}
		}
		return parseEnvelope(t, raw, prefix)
	}
	read := func(name string) error {
		s, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := string(s.Data["password"]); got != canary(name) {
			return fmt.Errorf("secret %s reads %q", name, got)
		}
		return nil
	}
	mustRead := func(name string) {
		t.Helper()
		if err := read(name); err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
	}
	keyID := func(v string) string {
		return "coffer:transit:transit/kubernetes:v" + v + ":" + itoa(c.keyCreated(t, v))
	}
	// poll retries f until it succeeds, nudging the apiserver to re-check
	// the plugin (GET /healthz/kms-providers runs the check when its cached
	// result is older than 20 s; otherwise it happens every minute).
	poll := func(what string, d time.Duration, f func() error) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s: %v\nplugin log:\n%s", what, d, err, lastLines(plugin.stderr.String(), 20))
			}
			_, _, _ = cp.Get(ctx, "/healthz/kms-providers")
			time.Sleep(time.Second)
		}
	}

	// 1. Secrets are stored encrypted under the plugin's key_id, and read.
	v1 := keyID("1")
	for _, n := range []string{"s1", "s2"} {
		if err := create(n); err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
		e := stored(n)
		if e.keyID != v1 || !bytes.HasPrefix(e.edek, []byte("vault:v1:")) || string(e.annotations["version.kms.coffer.dev"]) != "1" {
			t.Fatalf("stored %s: key_id %q, EDEK %q, annotations %q; want key_id %s and a transit v1 ciphertext", n, e.keyID, e.edek, e.annotations, v1)
		}
		mustRead(n)
	}
	if code, body, _ := cp.Get(ctx, "/healthz/kms-providers"); code != 200 {
		t.Fatalf("/healthz/kms-providers = %d %s", code, body)
	}

	// 2. Rotate the transit key: new writes use the new key_id, old Secrets
	// still read, and a no-op update re-encrypts them.
	if _, err := c.vc.Logical().Write("transit/keys/kubernetes/rotate", nil); err != nil {
		t.Fatal(err)
	}
	v2 := keyID("2")
	probe := 0
	poll("apiserver writes with the rotated key_id", 3*time.Minute, func() error {
		probe++
		name := fmt.Sprintf("probe-%d", probe)
		if err := create(name); err != nil {
			return err
		}
		if e := stored(name); e.keyID != v2 {
			return fmt.Errorf("new secret stored under %s", e.keyID)
		}
		return nil
	})
	mustRead("s1")
	mustRead("s2")
	if e := stored("s1"); e.keyID != v1 {
		t.Fatalf("s1 changed key_id before any update: %s", e.keyID)
	}
	s1, _ := secrets.Get(ctx, "s1", metav1.GetOptions{})
	if _, err := secrets.Update(ctx, s1, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("no-op update of s1: %v", err)
	}
	if e := stored("s1"); e.keyID != v2 || !bytes.HasPrefix(e.edek, []byte("vault:v2:")) {
		t.Fatalf("after a no-op update s1 is under %s (EDEK %q), want %s", e.keyID, e.edek, v2)
	}
	mustRead("s1")

	// 3. min_decryption_version past v1: the migrated Secret reads, the one
	// not migrated does not (once the apiserver's DEK cache is gone).
	setMinDecrypt := func(v int) {
		t.Helper()
		if _, err := c.vc.Logical().Write("transit/keys/kubernetes/config", map[string]any{"min_decryption_version": v}); err != nil {
			t.Fatal(err)
		}
	}
	// Here kube-apiserver does not become ready at all: its watch cache
	// cannot list the Secrets (/readyz: informer-sync failed), which is why
	// the runbook migrates and verifies before raising the minimum.
	setMinDecrypt(2)
	cp.StopAPIServer(t)
	cp.StartAPIServerWaitFor(t, "/livez")
	mustRead("s1")
	if err := read("s2"); err == nil {
		t.Fatal("s2, still under key version 1, read after min_decryption_version=2")
	} else {
		t.Logf("reading s2 (not migrated) fails as it should: %v", err)
	}
	// The runbook does the migration first: lower it back, re-encrypt
	// everything with a no-op update, verify, then raise it.
	if code, body, _ := cp.Get(ctx, "/readyz"); code == 200 {
		t.Errorf("/readyz = 200 with an undecryptable Secret, want informer-sync failing: %s", body)
	}
	setMinDecrypt(1)
	poll("s2 reads again", time.Minute, func() error { return read("s2") })
	poll("apiserver ready again", 2*time.Minute, func() error {
		if code, body, _ := cp.Get(ctx, "/readyz"); code != 200 {
			return fmt.Errorf("/readyz %d: %s", code, lastLines(string(body), 3))
		}
		return nil
	})
	runbookMigrate(t, ctx, cp)
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if e := stored(s.Name); e.keyID != v2 {
			t.Fatalf("after migration %s is still under %s", s.Name, e.keyID)
		}
	}
	setMinDecrypt(2)

	// 4. Restart the plugin and the apiserver: Secrets still read.
	plugin.stop()
	plugin = startPluginCLI(t, pluginArgs...)
	cp.RestartAPIServer(t)
	for _, s := range list.Items {
		mustRead(s.Name)
	}

	// 5. Seal Coffer: the plugin fails Encrypt with Unavailable, the
	// apiserver refuses writes once its current seed expires (3 minutes
	// without a healthy Status at most) but keeps reading with its cached
	// DEKs; after unseal writes work again with nothing restarted.
	if err := c.vc.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	n := 0
	var writeErr error
	poll("apiserver refuses writes while Coffer is sealed", 5*time.Minute, func() error {
		n++
		if writeErr = create(fmt.Sprintf("sealed-%d", n)); writeErr == nil {
			return errors.New("write accepted")
		}
		return nil
	})
	t.Logf("write refused while sealed: %v", writeErr)
	mustRead("s1")
	mustRead("s2")
	code, body, _ := cp.Get(ctx, "/healthz/kms-providers")
	if code == 200 || !strings.Contains(string(body), "coffer is sealed") {
		t.Errorf("/healthz/kms-providers while sealed = %d %q, want the plugin's reason", code, body)
	}
	if _, err := c.vc.Sys().Unseal(c.srv.UnsealKey); err != nil {
		t.Fatal(err)
	}
	poll("apiserver accepts writes after unseal", 2*time.Minute, func() error { return create("after-unseal") })
	if e := stored("after-unseal"); e.keyID != v2 {
		t.Fatalf("after-unseal stored under %s", e.keyID)
	}
	mustRead("after-unseal")

	// The plugin's logs never carry a Secret's value.
	for _, s := range list.Items {
		if strings.Contains(plugin.stderr.String(), canary(s.Name)) {
			t.Fatalf("plugin log contains %s's value", s.Name)
		}
	}
}

// runbookMigrate re-encrypts every Secret with the runbook's command
// (docs/kms.md), with the real kubectl when it is installed, else the same
// no-op updates through client-go.
func runbookMigrate(t *testing.T, ctx context.Context, cp *kubetest.ControlPlane) {
	t.Helper()
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		cmd := exec.CommandContext(ctx, "sh", "-c", "kubectl get secrets -A -o json | kubectl replace -f -")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.WriteKubeconfig(t), "PATH="+filepath.Dir(kubectl)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("runbook migration: %v\n%s", err, out)
		}
		return
	}
	t.Log("kubectl not installed: migrating with client-go no-op updates")
	list, err := cp.Client.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if _, err := cp.Client.CoreV1().Secrets(list.Items[i].Namespace).Update(ctx, &list.Items[i], metav1.UpdateOptions{}); err != nil {
			t.Fatalf("no-op update of %s: %v", list.Items[i].Name, err)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
