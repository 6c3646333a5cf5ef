package fileenc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigFileNames are the names of the sops configuration file, looked for
// in the file's directory and then in each parent directory.
var ConfigFileNames = []string{".sops.yaml", ".sops.yml"}

// Config is a parsed .sops.yaml.
type Config struct {
	// Path is the file it was read from; path_regex is matched against
	// file paths relative to its directory.
	Path  string
	Rules []CreationRule
}

// CreationRule is one entry of creation_rules.
type CreationRule struct {
	PathRegex       string
	Groups          []KeyGroupSpec
	ShamirThreshold int
	Selectors       Selectors
	// Unsupported names key kinds the rule uses that Coffer cannot
	// encrypt to (pgp, kms...); a rule with them is refused.
	Unsupported []string

	re *regexp.Regexp
}

type rawKeyGroup struct {
	Age     []string `yaml:"age"`
	HCVault []string `yaml:"hc_vault"`
	PGP     any      `yaml:"pgp"`
	KMS     any      `yaml:"kms"`
	GCPKMS  any      `yaml:"gcp_kms"`
	AzureKV any      `yaml:"azure_keyvault"`
	HCKMS   any      `yaml:"hckms"`
	Merge   any      `yaml:"merge"`
}

type rawRule struct {
	PathRegex               string        `yaml:"path_regex"`
	FilenameRegex           string        `yaml:"filename_regex"`
	Age                     stringList    `yaml:"age"`
	HCVaultTransitURI       stringList    `yaml:"hc_vault_transit_uri"`
	KeyGroups               []rawKeyGroup `yaml:"key_groups"`
	ShamirThreshold         int           `yaml:"shamir_threshold"`
	UnencryptedSuffix       string        `yaml:"unencrypted_suffix"`
	EncryptedSuffix         string        `yaml:"encrypted_suffix"`
	UnencryptedRegex        string        `yaml:"unencrypted_regex"`
	EncryptedRegex          string        `yaml:"encrypted_regex"`
	UnencryptedCommentRegex string        `yaml:"unencrypted_comment_regex"`
	EncryptedCommentRegex   string        `yaml:"encrypted_comment_regex"`
	MACOnlyEncrypted        bool          `yaml:"mac_only_encrypted"`
	PGP                     stringList    `yaml:"pgp"`
	KMS                     stringList    `yaml:"kms"`
	AWSProfile              string        `yaml:"aws_profile"`
	GCPKMS                  stringList    `yaml:"gcp_kms"`
	AzureKeyVault           stringList    `yaml:"azure_keyvault"`
	HCKMS                   stringList    `yaml:"hckms"`
}

type rawConfig struct {
	CreationRules    []rawRule `yaml:"creation_rules"`
	DestinationRules any       `yaml:"destination_rules"`
	Stores           any       `yaml:"stores"`
}

// stringList takes a comma-separated string or a list of strings, as
// sops does.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == tagNull {
			return nil
		}
		for _, p := range strings.Split(n.Value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				*s = append(*s, p)
			}
		}
		return nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: expected a string", c.Line)
			}
			if p := strings.TrimSpace(c.Value); p != "" {
				*s = append(*s, p)
			}
		}
		return nil
	}
	return fmt.Errorf("line %d: expected a string or a list of strings", n.Line)
}

// ParseConfig parses a .sops.yaml. Unknown fields are errors.
func ParseConfig(path string, data []byte) (*Config, error) {
	var raw rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, &ParseError{Format: "yaml", Msg: strings.TrimPrefix(err.Error(), "yaml: ")})
	}
	cfg := &Config{Path: path}
	for i, r := range raw.CreationRules {
		rule, err := r.compile()
		if err != nil {
			return nil, fmt.Errorf("%s: creation rule %d: %w", path, i+1, err)
		}
		cfg.Rules = append(cfg.Rules, rule)
	}
	return cfg, nil
}

func (r rawRule) compile() (CreationRule, error) {
	rule := CreationRule{
		PathRegex:       r.PathRegex,
		ShamirThreshold: r.ShamirThreshold,
		Selectors: Selectors{
			UnencryptedSuffix: r.UnencryptedSuffix, EncryptedSuffix: r.EncryptedSuffix,
			UnencryptedRegex: r.UnencryptedRegex, EncryptedRegex: r.EncryptedRegex,
			UnencryptedCommentRegex: r.UnencryptedCommentRegex, EncryptedCommentRegex: r.EncryptedCommentRegex,
			MACOnlyEncrypted: r.MACOnlyEncrypted,
		},
	}
	if rule.PathRegex == "" {
		rule.PathRegex = r.FilenameRegex
	}
	if rule.PathRegex != "" {
		re, err := regexp.Compile(rule.PathRegex)
		if err != nil {
			return rule, fmt.Errorf("path_regex: %w", err)
		}
		rule.re = re
	}
	if _, err := rule.Selectors.compile(); err != nil {
		return rule, err
	}
	for kind, v := range map[string]stringList{"pgp": r.PGP, "kms": r.KMS, "gcp_kms": r.GCPKMS, "azure_keyvault": r.AzureKeyVault, "hckms": r.HCKMS} {
		if len(v) > 0 {
			rule.Unsupported = append(rule.Unsupported, kind)
		}
	}
	if len(r.KeyGroups) > 0 {
		if len(r.Age) > 0 || len(r.HCVaultTransitURI) > 0 {
			return rule, errors.New("key_groups cannot be combined with top-level age or hc_vault_transit_uri")
		}
		for _, g := range r.KeyGroups {
			spec, err := groupSpec(g.Age, g.HCVault)
			if err != nil {
				return rule, err
			}
			for kind, v := range map[string]any{"pgp": g.PGP, "kms": g.KMS, "gcp_kms": g.GCPKMS, "azure_keyvault": g.AzureKV, "hckms": g.HCKMS, "merge": g.Merge} {
				if v != nil {
					rule.Unsupported = append(rule.Unsupported, kind)
				}
			}
			rule.Groups = append(rule.Groups, spec)
		}
	} else if len(r.Age) > 0 || len(r.HCVaultTransitURI) > 0 {
		spec, err := groupSpec(r.Age, r.HCVaultTransitURI)
		if err != nil {
			return rule, err
		}
		rule.Groups = []KeyGroupSpec{spec}
	}
	return rule, nil
}

func groupSpec(ageRecipients, vaultURIs []string) (KeyGroupSpec, error) {
	var g KeyGroupSpec
	for _, a := range ageRecipients {
		rs, err := ParseAgeRecipients(a)
		if err != nil {
			return g, err
		}
		g.Age = append(g.Age, rs...)
	}
	for _, v := range vaultURIs {
		u, err := ParseVaultURI(v)
		if err != nil {
			return g, err
		}
		g.Vault = append(g.Vault, u)
	}
	return g, nil
}

// FindConfig looks for .sops.yaml in dir and its parents. It returns nil,
// nil when there is none.
func FindConfig(dir string) (*Config, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for {
		for _, name := range ConfigFileNames {
			p := filepath.Join(dir, name)
			data, err := os.ReadFile(p)
			if err == nil {
				return ParseConfig(p, data)
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, nil
		}
		dir = parent
	}
}

// LoadConfig reads the config at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(abs, data)
}

// ErrNoRule: no creation rule matches the file.
var ErrNoRule = errors.New("no creation rule matches the file")

// Rule returns the first creation rule whose path_regex matches file (its
// path relative to the config's directory, with forward slashes; a rule
// without path_regex matches every file).
func (c *Config) Rule(file string) (*CreationRule, error) {
	rel := file
	if abs, err := filepath.Abs(file); err == nil {
		if r, err := filepath.Rel(filepath.Dir(c.Path), abs); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	rel = filepath.ToSlash(rel)
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.re == nil || r.re.MatchString(rel) {
			if len(r.Unsupported) > 0 {
				return nil, fmt.Errorf("%w: creation rule %d of %s uses %s keys, which Coffer cannot encrypt to", ErrUnsupported, i+1, c.Path, strings.Join(r.Unsupported, ", "))
			}
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: %s (in %s)", ErrNoRule, rel, c.Path)
}
