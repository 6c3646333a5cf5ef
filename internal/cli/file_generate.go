package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

// The generator prints decrypted manifests for GitOps tools that build
// manifests from a repository: Argo CD config management plugins run
// `coffer file generate .`, kustomize runs it as a legacy exec generator
// plugin (argument: a SopsGenerator config) or as an exec KRM function
// (--krm: a ResourceList on stdin and stdout). See docs/sops.md.

// GeneratorKind is the kind of a generator config file.
const GeneratorKind = "SopsGenerator"

func newFileGenerateCmd(env *Env) *cobra.Command {
	var krm bool
	cmd := &cobra.Command{
		Use:   "generate [flags] PATH...",
		Short: "Print decrypted manifests for kustomize and Argo CD (files, directories or SopsGenerator configs)",
		Long: `Print the manifests of every PATH as one YAML stream on stdout: an encrypted file is
decrypted, a plain YAML file is passed through, a directory contributes its *.yaml,
*.yml and *.json files (not kustomization files or .sops.yaml), and a config of
kind SopsGenerator contributes the files listed under "files" (relative to it).
With --krm, read a KRM ResourceList on stdin, add the decrypted files named in its
functionConfig's "files" to its items and print the ResourceList.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if krm {
				return generateKRM(cmd.Context(), env)
			}
			if len(args) == 0 {
				return usagef("give at least one file, directory or SopsGenerator config")
			}
			var docs [][]byte
			for _, p := range args {
				out, err := generatePath(cmd.Context(), env, p, true)
				if err != nil {
					return err
				}
				docs = append(docs, out...)
			}
			_, err := env.Stdout.Write(joinYAMLDocs(docs))
			return err
		},
	}
	cmd.Flags().BoolVar(&krm, "krm", false, "run as a KRM function: ResourceList on stdin and stdout")
	return cmd
}

func joinYAMLDocs(docs [][]byte) []byte {
	var b bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(d)
		if len(d) > 0 && d[len(d)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// generatePath returns the YAML documents one path contributes.
func generatePath(ctx context.Context, env *Env, p string, followConfig bool) ([][]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			n := e.Name()
			ext := strings.ToLower(filepath.Ext(n))
			if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") || strings.HasPrefix(n, ".") {
				continue
			}
			switch strings.ToLower(n) {
			case "kustomization.yaml", "kustomization.yml", "kustomization":
				continue
			}
			names = append(names, n)
		}
		sort.Strings(names)
		var out [][]byte
		for _, n := range names {
			docs, err := generatePath(ctx, env, filepath.Join(p, n), false)
			if err != nil {
				return nil, err
			}
			out = append(out, docs...)
		}
		return out, nil
	}
	data, err := readInput(env, p)
	if err != nil {
		return nil, err
	}
	if followConfig {
		// kustomize hands a legacy exec plugin its config as a temporary
		// file without an extension; listed files are then relative to
		// the working directory (the kustomization root), otherwise to
		// the config.
		if files, ok, err := generatorFiles(data); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		} else if ok {
			var out [][]byte
			for _, fp := range files {
				if !filepath.IsAbs(fp) {
					if rel := filepath.Join(filepath.Dir(p), fp); fileExists(rel) {
						fp = rel
					}
				}
				docs, err := generatePath(ctx, env, fp, false)
				if err != nil {
					return nil, err
				}
				out = append(out, docs...)
			}
			return out, nil
		}
	}
	f := fileenc.FormatForPath(p)
	if f != fileenc.FormatYAML && f != fileenc.FormatJSON {
		return nil, fmt.Errorf("%s: generate handles YAML and JSON manifests", p)
	}
	o, err := openData(ctx, env, p, data, f)
	if errors.Is(err, fileenc.ErrNotEncrypted) {
		if f == fileenc.FormatYAML {
			return [][]byte{data}, nil // a plain manifest passes through
		}
		doc, perr := fileenc.ParsePlain(data, f)
		if perr != nil {
			return nil, fmt.Errorf("%s: %w", p, perr)
		}
		y, err := doc.Emit(fileenc.FormatYAML)
		return [][]byte{y}, err
	}
	if err != nil {
		return nil, err
	}
	defer o.Close()
	y, err := plainBytesOf(o, fileenc.FormatYAML)
	if err != nil {
		return nil, err
	}
	return splitYAMLDocs(y), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func splitYAMLDocs(y []byte) [][]byte {
	parts := bytes.Split(y, []byte("\n---\n"))
	out := make([][]byte, 0, len(parts))
	for i, p := range parts {
		p = bytes.TrimPrefix(p, []byte("---\n"))
		if i < len(parts)-1 {
			p = append(p, '\n')
		}
		if len(bytes.TrimSpace(p)) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// generatorFiles reads a SopsGenerator config's file list.
func generatorFiles(data []byte) ([]string, bool, error) {
	var cfg struct {
		Kind  string   `yaml:"kind"`
		Files []string `yaml:"files"`
		Spec  struct {
			Files []string `yaml:"files"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil || cfg.Kind != GeneratorKind {
		return nil, false, nil
	}
	files := append(cfg.Files, cfg.Spec.Files...)
	if len(files) == 0 {
		return nil, true, errors.New(GeneratorKind + " lists no files")
	}
	return files, true, nil
}

func generateKRM(ctx context.Context, env *Env) error {
	data, err := io.ReadAll(io.LimitReader(env.Stdin, maxFileSize))
	if err != nil {
		return err
	}
	var rl yaml.Node
	if err := yaml.Unmarshal(data, &rl); err != nil || rl.Kind != yaml.DocumentNode || len(rl.Content) != 1 || rl.Content[0].Kind != yaml.MappingNode {
		return errors.New("--krm: stdin is not a ResourceList")
	}
	root := rl.Content[0]
	get := func(m *yaml.Node, key string) *yaml.Node {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		return nil
	}
	if k := get(root, "kind"); k == nil || k.Value != "ResourceList" {
		return errors.New("--krm: stdin is not a ResourceList")
	}
	fc := get(root, "functionConfig")
	if fc == nil || fc.Kind != yaml.MappingNode {
		return errors.New("--krm: the ResourceList has no functionConfig")
	}
	raw, err := yaml.Marshal(fc)
	if err != nil {
		return err
	}
	files, ok, err := generatorFiles(append([]byte("kind: "+GeneratorKind+"\n"), stripKind(raw)...))
	if err != nil || !ok {
		return fmt.Errorf("--krm: functionConfig: %v", err)
	}
	items := get(root, "items")
	if items == nil {
		items = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "items"}, items)
	}
	for _, fp := range files {
		docs, err := generatePath(ctx, env, fp, false)
		if err != nil {
			return err
		}
		for _, d := range docs {
			var n yaml.Node
			if err := yaml.Unmarshal(d, &n); err != nil {
				return fmt.Errorf("%s: %w", fp, err)
			}
			if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
				items.Content = append(items.Content, n.Content[0])
			}
		}
	}
	out, err := yaml.Marshal(&rl)
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(out)
	return err
}

// stripKind drops a top-level kind line, so the KRM functionConfig (of any
// kind) reads as a generator config.
func stripKind(y []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(y), "\n") {
		if strings.HasPrefix(l, "kind:") {
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}
