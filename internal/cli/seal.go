package cli

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/coffer-dev/coffer/internal/controller/sealedsecret"
	"github.com/coffer-dev/coffer/internal/sealedsecrets"
)

// Defaults of kubeseal: where it looks for the controller.
const (
	defaultControllerName      = "sealed-secrets-controller"
	defaultControllerNamespace = "kube-system"
	// maxSealInput bounds what `coffer seal` reads from stdin, files and
	// certificate URLs.
	maxSealInput = 16 << 20
)

type sealFlags struct {
	cert           string
	fetchCert      bool
	controllerName string
	controllerNs   string
	scope          string
	raw            bool
	name           string
	fromFile       []string
	validate       bool
	reEncrypt      bool
	recoveryUnseal bool
	recoveryKeys   []string
	mergeInto      string
	format         string
	inputFile      string
	outputFile     string
	allowEmptyData bool
	kubeconfig     string
	kubeContext    string
	namespace      string
}

func newSealCmd(env *Env) *cobra.Command {
	var f sealFlags
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Seal a Secret into a SealedSecret (kubeseal-compatible)",
		Long: `Seal a Kubernetes Secret (JSON or YAML, from stdin or -f) into a
bitnami.com/v1alpha1 SealedSecret that only the controller can open, with
kubeseal's flags and output.

  coffer seal --cert cert.pem < secret.yaml > sealed.json      offline
  coffer seal -o yaml < secret.yaml                            certificate from the controller
  coffer seal --fetch-cert > cert.pem
  coffer seal --raw --namespace ns --name db --from-file=pw.txt
  coffer seal --merge-into sealed.yaml < more-items.yaml
  coffer seal --validate < sealed.yaml                         ask the controller
  coffer seal --re-encrypt < sealed.yaml > resealed.yaml       newest key
  coffer seal --recovery-unseal --recovery-private-key key.pem < sealed.yaml

Without --cert the certificate comes from the controller through the API
server's service proxy (--controller-name, --controller-namespace; the
kubeconfig as kubectl uses it). Works with the Bitnami controller too.
See docs/sealed-secrets.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.fromEnv(cmd, env)
			return runSeal(cmd.Context(), env, cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cert, "cert", "", "certificate file or URL (http, https, file) to seal to; overrides --controller-*")
	fl.BoolVar(&f.fetchCert, "fetch-cert", false, "write the certificate to stdout (for later use with --cert)")
	fl.StringVar(&f.controllerName, "controller-name", defaultControllerName, "name of the controller's Service")
	fl.StringVar(&f.controllerNs, "controller-namespace", defaultControllerNamespace, "namespace of the controller's Service")
	fl.StringVar(&f.scope, "scope", "", "strict, namespace-wide or cluster-wide (default: the input's scope annotations, else strict)")
	fl.BoolVar(&f.raw, "raw", false, "seal one raw value (from --from-file or stdin) and print its ciphertext")
	fl.StringVar(&f.name, "name", "", "name of the SealedSecret (required with --raw and strict scope)")
	fl.StringSliceVar(&f.fromFile, "from-file", nil, "with --raw: [key=]file holding the value")
	fl.BoolVar(&f.validate, "validate", false, "ask the controller whether it can open the input SealedSecrets")
	fl.BoolVar(&f.reEncrypt, "re-encrypt", false, "have the controller re-seal the input SealedSecrets with its newest key")
	fl.BoolVar(&f.recoveryUnseal, "recovery-unseal", false, "open the input SealedSecret offline with --recovery-private-key (disaster recovery; prints the Secret)")
	fl.StringSliceVar(&f.recoveryKeys, "recovery-private-key", nil, "private key files for --recovery-unseal: PEM keys, or key Secrets / Lists as JSON or YAML")
	fl.StringVar(&f.mergeInto, "merge-into", "", "merge the sealed items into this SealedSecret file, in place")
	fl.StringVarP(&f.format, "format", "o", "json", "output format: json or yaml")
	fl.StringVarP(&f.inputFile, "secret-file", "f", "", "read the input from this file instead of stdin")
	fl.StringVarP(&f.outputFile, "sealed-secret-file", "w", "", "write the output to this file (yaml when it ends in .yaml or .yml)")
	fl.BoolVar(&f.allowEmptyData, "allow-empty-data", false, "allow a Secret without data")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config)")
	fl.StringVar(&f.kubeContext, "context", "", "kubeconfig context to use")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace for input Secrets that have none (default: the context's)")
	return cmd
}

// fromEnv applies kubeseal's environment variables to flags not given on
// the command line: SEALED_SECRETS_CERT, SEALED_SECRETS_CONTROLLER_NAME,
// SEALED_SECRETS_CONTROLLER_NAMESPACE.
func (f *sealFlags) fromEnv(cmd *cobra.Command, env *Env) {
	set := func(flag string, dst *string) {
		if cmd.Flags().Changed(flag) {
			return
		}
		if v := env.Getenv("SEALED_SECRETS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))); v != "" {
			*dst = v
		}
	}
	set("cert", &f.cert)
	set("controller-name", &f.controllerName)
	set("controller-namespace", &f.controllerNs)
}

func runSeal(ctx context.Context, env *Env, cmd *cobra.Command, f *sealFlags) (err error) {
	if f.format != "json" && f.format != "yaml" {
		return usagef("unsupported output format %q: use json or yaml", f.format)
	}
	if len(f.fromFile) > 0 && !f.raw {
		return usagef("--from-file requires --raw")
	}
	modes := 0
	for _, b := range []bool{f.validate, f.reEncrypt, f.recoveryUnseal, f.raw, f.mergeInto != "", f.fetchCert} {
		if b {
			modes++
		}
	}
	if modes > 1 {
		return usagef("choose one of --validate, --re-encrypt, --recovery-unseal, --raw, --merge-into and --fetch-cert")
	}
	if f.recoveryUnseal && len(f.recoveryKeys) == 0 {
		return usagef("--recovery-unseal needs --recovery-private-key")
	}
	var scope *sealedsecrets.Scope
	if cmd.Flags().Changed("scope") {
		s, err := sealedsecrets.ParseScope(f.scope)
		if err != nil {
			return usagef("--scope: %v", err)
		}
		scope = &s
	}

	input := func() ([]byte, error) {
		var r io.Reader = env.Stdin
		if f.inputFile != "" {
			fh, err := os.Open(f.inputFile)
			if err != nil {
				return nil, err
			}
			defer fh.Close()
			r = fh
		}
		return readLimited(r, "input")
	}

	// --re-encrypt -f FILE without -w rewrites FILE, as kubeseal does.
	if f.reEncrypt && f.outputFile == "" && f.inputFile != "" {
		f.outputFile = f.inputFile
	}
	out := env.Stdout
	var buf bytes.Buffer
	if f.outputFile != "" {
		if ext := filepath.Ext(f.outputFile); (ext == ".yaml" || ext == ".yml") && !cmd.Flags().Changed("format") {
			f.format = "yaml"
		}
		out = &buf
		defer func() {
			if err == nil {
				mode := os.FileMode(0o644)
				if f.recoveryUnseal {
					mode = 0o600 // plaintext Secret
				}
				err = replaceFile(f.outputFile, buf.Bytes(), mode)
			}
		}()
	}

	sc := &sealCluster{env: env, f: f}
	switch {
	case f.recoveryUnseal:
		in, err := input()
		if err != nil {
			return err
		}
		return recoveryUnseal(out, in, f)
	case f.validate:
		in, err := input()
		if err != nil {
			return err
		}
		return sc.validate(ctx, in)
	case f.reEncrypt:
		in, err := input()
		if err != nil {
			return err
		}
		return sc.reEncrypt(ctx, in, out)
	}

	certPEM, err := sc.openCert(ctx)
	if err != nil {
		return err
	}
	if f.fetchCert {
		_, err := out.Write(certPEM)
		return err
	}
	pub, err := sealedsecrets.PublicKeyFromCertPEM(certPEM, time.Now())
	if err != nil {
		return err
	}
	if f.raw {
		return sealRaw(env, out, pub, f, scope, sc)
	}
	in, err := input()
	if err != nil {
		return err
	}
	if f.mergeInto != "" {
		return mergeInto(in, pub, f, cmd.Flags().Changed("format"), scope, sc)
	}
	secrets, err := readSecrets(in)
	if err != nil {
		return err
	}
	if len(secrets) == 0 {
		return errors.New("no Secret in the input")
	}
	for _, s := range secrets {
		ss, err := sealSecret(s, pub, f, scope, sc)
		if err != nil {
			return err
		}
		if err := writeObject(out, f.format, ss); err != nil {
			return err
		}
	}
	return nil
}

// sealSecret applies kubeseal's rules to one input Secret and seals it.
func sealSecret(s *corev1.Secret, pub *rsa.PublicKey, f *sealFlags, scope *sealedsecrets.Scope, sc *sealCluster) (*sealedsecrets.SealedSecret, error) {
	if len(s.Data) == 0 && len(s.StringData) == 0 && !f.allowEmptyData {
		return nil, errors.New("secret.data is empty in input Secret, assuming this is an error and aborting. To work with empty data, --allow-empty-data can be used")
	}
	if f.name != "" {
		s.Name = f.name
	}
	if s.Name == "" {
		return nil, errors.New("missing metadata.name in input Secret")
	}
	if scope != nil && *scope != sealedsecrets.ScopeStrict {
		s.Annotations = sealedsecrets.SetScope(s.Annotations, *scope)
	}
	if sealedsecrets.ScopeOf(s.Annotations) != sealedsecrets.ScopeClusterWide && s.Namespace == "" {
		ns, err := sc.namespace()
		if err != nil {
			return nil, err
		}
		s.Namespace = ns
	}
	return sealedsecrets.Seal(pub, s)
}

func sealRaw(env *Env, out io.Writer, pub *rsa.PublicKey, f *sealFlags, scope *sealedsecrets.Scope, sc *sealCluster) error {
	s := sealedsecrets.ScopeStrict
	if scope != nil {
		s = *scope
	}
	var ns string
	if s != sealedsecrets.ScopeClusterWide {
		var err error
		if ns, err = sc.namespace(); err != nil || ns == "" {
			return usagef("must provide the --namespace flag with --raw and --scope %s", s)
		}
		if f.name == "" && s == sealedsecrets.ScopeStrict {
			return usagef("must provide the --name flag with --raw and --scope %s", s)
		}
	}
	var data []byte
	var err error
	switch len(f.fromFile) {
	case 0:
		data, err = readLimited(env.Stdin, "stdin")
	case 1:
		_, file, ok := strings.Cut(f.fromFile[0], "=")
		if !ok {
			file = f.fromFile[0]
		}
		var fh *os.File
		if fh, err = os.Open(file); err == nil {
			data, err = readLimited(fh, file)
			fh.Close()
		}
	default:
		return usagef("must provide only one --from-file when encrypting a single item with --raw")
	}
	if err != nil {
		return err
	}
	blob, err := sealedsecrets.EncryptString(pub, data, sealedsecrets.Label(ns, f.name, s))
	clear(data)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, blob)
	return err
}

// mergeInto seals the input Secret under the name, namespace and scope of
// an existing SealedSecret file and merges the items, template labels,
// annotations and data into it, rewriting the file in place.
func mergeInto(in []byte, pub *rsa.PublicKey, f *sealFlags, formatSet bool, scope *sealedsecrets.Scope, sc *sealCluster) error {
	orig, err := os.ReadFile(f.mergeInto)
	if err != nil {
		return err
	}
	ss, err := sealedsecret.DecodeSealedSecret(orig)
	if err != nil {
		return fmt.Errorf("%s: %w", f.mergeInto, err)
	}
	secrets, err := readSecrets(in)
	if err != nil {
		return err
	}
	if len(secrets) != 1 {
		return errors.New("--merge-into needs exactly one input Secret")
	}
	s := secrets[0]
	// The new items must open where the existing object opens: its scope,
	// name and namespace win.
	if scope != nil && *scope != ss.Scope() {
		return usagef("--scope %s differs from the scope of %s (%s)", *scope, f.mergeInto, ss.Scope())
	}
	s.Name, s.Namespace = ss.Name, ss.Namespace
	s.Annotations = sealedsecrets.SetScope(s.Annotations, ss.Scope())
	nf := *f
	nf.name = ""
	upd, err := sealSecret(s, pub, &nf, nil, sc)
	if err != nil {
		return err
	}
	if ss.Spec.EncryptedData == nil {
		ss.Spec.EncryptedData = sealedsecrets.EncryptedData{}
	}
	for k, v := range upd.Spec.EncryptedData {
		ss.Spec.EncryptedData[k] = v
	}
	merge := func(dst *map[string]string, src map[string]string) {
		if len(src) == 0 {
			return
		}
		if *dst == nil {
			*dst = map[string]string{}
		}
		for k, v := range src {
			(*dst)[k] = v
		}
	}
	merge(&ss.Spec.Template.Annotations, upd.Spec.Template.Annotations)
	merge(&ss.Spec.Template.Labels, upd.Spec.Template.Labels)
	merge(&ss.Spec.Template.Data, upd.Spec.Template.Data)

	format := f.format
	if !formatSet && !bytes.HasPrefix(bytes.TrimSpace(orig), []byte("{")) {
		format = "yaml"
	}
	var buf bytes.Buffer
	if err := writeObject(&buf, format, ss); err != nil {
		return err
	}
	st, err := os.Stat(f.mergeInto)
	if err != nil {
		return err
	}
	return replaceFile(f.mergeInto, buf.Bytes(), st.Mode().Perm())
}

func recoveryUnseal(out io.Writer, in []byte, f *sealFlags) error {
	var keys []*sealedsecrets.Key
	for _, file := range f.recoveryKeys {
		ks, err := readRecoveryKeys(file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		keys = append(keys, ks...)
	}
	ss, err := sealedsecret.DecodeSealedSecret(in)
	if err != nil {
		return err
	}
	s, err := sealedsecrets.Unseal(ss, keys, sealedsecrets.UnsealOptions{AcceptLegacyData: true})
	if err != nil {
		return err
	}
	return writeObject(out, f.format, s)
}

// readRecoveryKeys reads a PEM private key, or key Secrets (a Secret, a
// List of them, or several YAML documents) as `kubectl get secret -o
// yaml` writes them. Only tls.key is used: certificates may be absent.
func readRecoveryKeys(file string) ([]*sealedsecrets.Key, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if priv, err := sealedsecrets.ParsePrivateKeyPEM(b); err == nil {
		k, err := sealedsecrets.SelfSign(priv, time.Now(), time.Hour, "recovery")
		if err != nil {
			return nil, err
		}
		return []*sealedsecrets.Key{k}, nil
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var keys []*sealedsecrets.Key
	add := func(s *corev1.Secret) error {
		pemKey, ok := s.Data[corev1.TLSPrivateKeyKey]
		if !ok {
			return fmt.Errorf("secret %q has no tls.key", s.Name)
		}
		priv, err := sealedsecrets.ParsePrivateKeyPEM(pemKey)
		if err != nil {
			return fmt.Errorf("secret %q: %w", s.Name, err)
		}
		k, err := sealedsecrets.SelfSign(priv, time.Now(), time.Hour, "recovery")
		if err != nil {
			return err
		}
		keys = append(keys, k)
		return nil
	}
	for {
		var doc struct {
			metav1.TypeMeta `json:",inline"`
			Items           []corev1.Secret `json:"items"`
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, errors.New("not a PEM private key, nor a Secret or List as JSON or YAML")
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, errors.New("not a PEM private key, nor a Secret or List as JSON or YAML")
		}
		switch doc.Kind {
		case "List", "SecretList":
			for i := range doc.Items {
				if err := add(&doc.Items[i]); err != nil {
					return nil, err
				}
			}
		case "Secret":
			var s corev1.Secret
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, errors.New("malformed Secret")
			}
			if err := add(&s); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unexpected %q: want a PEM key, a Secret or a List", doc.Kind)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no private key found")
	}
	return keys, nil
}

// readSecrets decodes a stream of Secrets (JSON or YAML, several YAML
// documents allowed). Other kinds are refused.
func readSecrets(in []byte) ([]*corev1.Secret, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(in), 4096)
	var out []*corev1.Secret
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, errors.New("input is not a Secret in JSON or YAML")
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		var s corev1.Secret
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("input is not a valid Secret (check data values are base64)")
		}
		if (s.Kind != "" && s.Kind != "Secret") || (s.APIVersion != "" && s.APIVersion != "v1") {
			return nil, fmt.Errorf("input is a %s %s, not a v1 Secret", s.APIVersion, s.Kind)
		}
		out = append(out, &s)
	}
}

// writeObject prints obj as kubeseal does: indented JSON and a newline, or
// "---" and YAML.
func writeObject(w io.Writer, format string, obj any) error {
	js, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "---\n%s", y)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", js)
	return err
}

func readLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSealInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > maxSealInput {
		return nil, fmt.Errorf("%s is larger than %d bytes", what, maxSealInput)
	}
	return b, nil
}

// replaceFile replaces path with data (temp file and rename), so a
// failure never leaves it half written.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// sealCluster reaches the controller through the API server's service
// proxy, with the kubeconfig as kubectl reads it.
type sealCluster struct {
	env *Env
	f   *sealFlags

	cc clientcmd.ClientConfig
	cs *kubernetes.Clientset
}

func (c *sealCluster) clientConfig() clientcmd.ClientConfig {
	if c.cc != nil {
		return c.cc
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.f.kubeconfig}
	if kc := c.env.Getenv("KUBECONFIG"); kc != "" {
		rules.Precedence = filepath.SplitList(kc)
	} else if home, err := c.env.HomeDir(); err == nil {
		rules.Precedence = []string{filepath.Join(home, ".kube", "config")}
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.f.kubeContext}
	overrides.Context.Namespace = c.f.namespace
	c.cc = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	return c.cc
}

// namespace is --namespace, else the kubeconfig context's namespace.
func (c *sealCluster) namespace() (string, error) {
	if c.f.namespace != "" {
		return c.f.namespace, nil
	}
	ns, _, err := c.clientConfig().Namespace()
	if clientcmd.IsEmptyConfig(err) {
		return "", errors.New("input secret has no namespace and cannot infer the namespace automatically when no kube config is available")
	}
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	return ns, nil
}

func (c *sealCluster) clientset() (*kubernetes.Clientset, error) {
	if c.cs != nil {
		return c.cs, nil
	}
	rc, err := c.clientConfig().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	rc.UserAgent = "coffer-seal"
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	c.cs = cs
	return cs, nil
}

// proxyName is the service proxy name "http:<service>:<port name>", the
// port name read from the Service as kubeseal does.
func (c *sealCluster) proxyName(ctx context.Context, cs *kubernetes.Clientset) (string, error) {
	svc, err := cs.CoreV1().Services(c.f.controllerNs).Get(ctx, c.f.controllerName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("cannot get sealed secret service: %w\nhint: use --controller-name and --controller-namespace to name the controller's Service", err)
	}
	if len(svc.Spec.Ports) == 0 {
		return "", fmt.Errorf("service %s/%s has no ports", c.f.controllerNs, c.f.controllerName)
	}
	return utilnet.JoinSchemeNamePort("http", c.f.controllerName, svc.Spec.Ports[0].Name), nil
}

func (c *sealCluster) post(ctx context.Context, path string, body []byte) ([]byte, error) {
	cs, err := c.clientset()
	if err != nil {
		return nil, err
	}
	name, err := c.proxyName(ctx, cs)
	if err != nil {
		return nil, err
	}
	return cs.CoreV1().RESTClient().Post().
		Namespace(c.f.controllerNs).Resource("services").SubResource("proxy").Name(name).
		Suffix(path).Body(body).DoRaw(ctx)
}

func (c *sealCluster) openCert(ctx context.Context) ([]byte, error) {
	if c.f.cert != "" {
		return openCertSource(ctx, c.f.cert)
	}
	cs, err := c.clientset()
	if err != nil {
		return nil, err
	}
	name, err := c.proxyName(ctx, cs)
	if err != nil {
		return nil, err
	}
	b, err := cs.CoreV1().RESTClient().Get().
		Namespace(c.f.controllerNs).Resource("services").SubResource("proxy").Name(name).
		Suffix("/v1/cert.pem").SetHeader("Accept", "application/x-pem-file, */*").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch certificate: %w", err)
	}
	return b, nil
}

// openCertSource reads --cert: a file name, or an http, https or file URL.
func openCertSource(ctx context.Context, src string) ([]byte, error) {
	u, err := url.Parse(src)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 { // plain path (or a Windows drive)
		fh, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		return readLimited(fh, src)
	}
	switch u.Scheme {
	case "file":
		fh, err := os.Open(u.Path)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		return readLimited(fh, u.Path)
	case "http", "https":
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot fetch %q: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("cannot fetch %q: %s", src, resp.Status)
		}
		return readLimited(resp.Body, src)
	default:
		return nil, fmt.Errorf("unsupported certificate URL scheme %q", u.Scheme)
	}
}

// readSealedSecrets decodes a stream of SealedSecrets.
func readSealedSecrets(in []byte) ([]*sealedsecrets.SealedSecret, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(in), 4096)
	var out []*sealedsecrets.SealedSecret
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, errors.New("input is not a SealedSecret in JSON or YAML")
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		ss, err := sealedsecret.DecodeSealedSecret(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, ss)
	}
	if len(out) == 0 {
		return nil, errors.New("no SealedSecret in the input")
	}
	return out, nil
}

func (c *sealCluster) validate(ctx context.Context, in []byte) error {
	sss, err := readSealedSecrets(in)
	if err != nil {
		return err
	}
	for _, ss := range sss {
		body, _ := json.Marshal(ss)
		if _, err := c.post(ctx, "/v1/verify", body); err != nil {
			if isStatus(err, http.StatusConflict) {
				return fmt.Errorf("unable to decrypt sealed secret: %s", ss.Name)
			}
			return fmt.Errorf("cannot validate sealed secret: %w", err)
		}
	}
	return nil
}

func (c *sealCluster) reEncrypt(ctx context.Context, in []byte, out io.Writer) error {
	sss, err := readSealedSecrets(in)
	if err != nil {
		return err
	}
	for _, ss := range sss {
		body, _ := json.Marshal(ss)
		res, err := c.post(ctx, "/v1/rotate", body)
		if err != nil {
			if isStatus(err, http.StatusConflict) {
				return fmt.Errorf("unable to rotate secret %s", ss.Name)
			}
			return fmt.Errorf("cannot re-encrypt secret: %w", err)
		}
		var resealed sealedsecrets.SealedSecret
		if err := json.Unmarshal(res, &resealed); err != nil {
			return fmt.Errorf("controller answered with no SealedSecret: %w", err)
		}
		resealed.CreationTimestamp = metav1.Time{}
		resealed.DeletionTimestamp = nil
		resealed.Generation = 0
		if err := writeObject(out, c.f.format, &resealed); err != nil {
			return err
		}
	}
	return nil
}

// isStatus reports whether err is the API server relaying an answer with
// this HTTP status code (client-go names a 409 to a POST "AlreadyExists",
// so the code is what counts).
func isStatus(err error, code int32) bool {
	var se *apierrors.StatusError
	return errors.As(err, &se) && se.Status().Code == code
}
