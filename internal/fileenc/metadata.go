package fileenc

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SopsVersion is the sops version whose format Coffer writes; it goes in
// the metadata's "version" field.
const SopsVersion = "3.13.3"

// MetadataKey is the top-level key (YAML, JSON), key prefix (dotenv, with
// "_") or section (INI) that holds the metadata.
const MetadataKey = "sops"

// Metadata is the "sops" block of an encrypted file.
type Metadata struct {
	// LastModified is the RFC 3339 time of the last encryption, exactly as
	// stored: it is the MAC's additional data.
	LastModified string
	// MAC is the ENC[...] string of the hex MAC.
	MAC     string
	Version string
	Selectors
	// ShamirThreshold is how many key groups are needed when there are
	// several (0: all of them).
	ShamirThreshold int
	// KeyGroups hold the master keys. With one group every key encrypts
	// the whole data key; with several, each group holds one Shamir share.
	KeyGroups []KeyGroup
	// extra keeps unknown top-level fields as they are.
	extra []field
}

// KeyGroup is one group of master keys.
type KeyGroup struct {
	Age   []AgeKey
	Vault []VaultKey
	// Other keeps master keys of kinds Coffer cannot use (kms, gcp_kms,
	// azure_kv, pgp, hckms...) unchanged, so that editing a file keeps
	// them working for sops users.
	Other []field
}

// AgeKey is an age recipient and the data key (or share) encrypted to it
// in the armored age format.
type AgeKey struct {
	Recipient string
	Enc       string
}

// VaultKey is a transit key of a Vault-compatible server (Coffer) and the
// data key (or share) it encrypted.
type VaultKey struct {
	VaultAddress string
	EnginePath   string
	KeyName      string
	CreatedAt    string
	Enc          string
}

type field struct {
	key   string
	value *yaml.Node
}

// otherKeyKinds are the master key kinds sops knows and Coffer keeps
// without using.
var otherKeyKinds = map[string]bool{"kms": true, "gcp_kms": true, "azure_kv": true, "pgp": true, "hckms": true}

func (g *KeyGroup) empty() bool { return len(g.Age) == 0 && len(g.Vault) == 0 && len(g.Other) == 0 }

// metadataError is a ParseError about the metadata block.
func metadataError(format string, args ...any) error {
	return &ParseError{Msg: "sops metadata: " + fmt.Sprintf(format, args...)}
}

// parseMetadata reads the metadata mapping. Scalars may be strings
// (dotenv and INI store everything as strings).
func parseMetadata(n *yaml.Node) (*Metadata, error) {
	if n.Kind != yaml.MappingNode {
		return nil, metadataError("not a mapping")
	}
	md := &Metadata{}
	flat := KeyGroup{}
	var groups []KeyGroup
	haveGroups := false
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if seen[k] {
			return nil, metadataError("duplicate field %q", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "lastmodified":
			md.LastModified, err = metaString(k, v)
		case "mac":
			md.MAC, err = metaString(k, v)
		case "version":
			md.Version, err = metaString(k, v)
		case "unencrypted_suffix":
			md.UnencryptedSuffix, err = metaString(k, v)
		case "encrypted_suffix":
			md.EncryptedSuffix, err = metaString(k, v)
		case "unencrypted_regex":
			md.UnencryptedRegex, err = metaString(k, v)
		case "encrypted_regex":
			md.EncryptedRegex, err = metaString(k, v)
		case "unencrypted_comment_regex":
			md.UnencryptedCommentRegex, err = metaString(k, v)
		case "encrypted_comment_regex":
			md.EncryptedCommentRegex, err = metaString(k, v)
		case "mac_only_encrypted":
			md.MACOnlyEncrypted, err = metaBool(k, v)
		case "shamir_threshold":
			md.ShamirThreshold, err = metaInt(k, v)
		case "key_groups":
			haveGroups = true
			groups, err = parseKeyGroups(v)
		case "age", "hc_vault":
			err = parseGroupField(&flat, k, v)
		default:
			if otherKeyKinds[k] {
				err = parseGroupField(&flat, k, v)
			} else {
				md.extra = append(md.extra, field{k, v})
			}
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case haveGroups && !flat.empty():
		return nil, metadataError("both key_groups and top-level keys are set")
	case haveGroups:
		md.KeyGroups = groups
	default:
		md.KeyGroups = []KeyGroup{flat}
	}
	if md.LastModified == "" {
		return nil, metadataError("lastmodified is missing")
	}
	if md.MAC == "" {
		return nil, metadataError("mac is missing")
	}
	if md.Selectors.count() > 1 {
		return nil, metadataError("more than one selector is set")
	}
	if len(md.KeyGroups) > 1 && (md.ShamirThreshold < 0 || md.ShamirThreshold > len(md.KeyGroups)) {
		return nil, metadataError("shamir_threshold %d is outside 1..%d", md.ShamirThreshold, len(md.KeyGroups))
	}
	return md, nil
}

func parseKeyGroups(v *yaml.Node) ([]KeyGroup, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, metadataError("key_groups is not a list")
	}
	var groups []KeyGroup
	for _, g := range v.Content {
		if g.Kind != yaml.MappingNode {
			return nil, metadataError("a key group is not a mapping")
		}
		var kg KeyGroup
		for i := 0; i+1 < len(g.Content); i += 2 {
			k := g.Content[i].Value
			if k != "age" && k != "hc_vault" && !otherKeyKinds[k] {
				return nil, metadataError("unknown key type %q in a key group", k)
			}
			if err := parseGroupField(&kg, k, g.Content[i+1]); err != nil {
				return nil, err
			}
		}
		groups = append(groups, kg)
	}
	return groups, nil
}

func parseGroupField(g *KeyGroup, kind string, v *yaml.Node) error {
	if v.ShortTag() == tagNull {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return metadataError("%s is not a list", kind)
	}
	if len(v.Content) == 0 {
		return nil
	}
	switch kind {
	case "age":
		for _, e := range v.Content {
			m, err := metaMap(kind, e)
			if err != nil {
				return err
			}
			k := AgeKey{Recipient: m["recipient"], Enc: m["enc"]}
			if k.Recipient == "" || k.Enc == "" {
				return metadataError("age entry needs recipient and enc")
			}
			g.Age = append(g.Age, k)
		}
	case "hc_vault":
		for _, e := range v.Content {
			m, err := metaMap(kind, e)
			if err != nil {
				return err
			}
			k := VaultKey{VaultAddress: m["vault_address"], EnginePath: m["engine_path"], KeyName: m["key_name"], CreatedAt: m["created_at"], Enc: m["enc"]}
			if k.VaultAddress == "" || k.EnginePath == "" || k.KeyName == "" || k.Enc == "" {
				return metadataError("hc_vault entry needs vault_address, engine_path, key_name and enc")
			}
			g.Vault = append(g.Vault, k)
		}
	default:
		g.Other = append(g.Other, field{kind, v})
	}
	return nil
}

func metaMap(kind string, n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, metadataError("%s entry is not a mapping", kind)
	}
	m := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		s, err := metaString(kind+"."+n.Content[i].Value, n.Content[i+1])
		if err != nil {
			return nil, err
		}
		m[n.Content[i].Value] = s
	}
	return m, nil
}

func metaString(k string, v *yaml.Node) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", metadataError("%s is not a scalar", k)
	}
	if v.ShortTag() == tagNull {
		return "", nil
	}
	return v.Value, nil
}

func metaBool(k string, v *yaml.Node) (bool, error) {
	s, err := metaString(k, v)
	if err != nil || s == "" {
		return false, err
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, metadataError("%s is not a boolean", k)
	}
	return b, nil
}

func metaInt(k string, v *yaml.Node) (int, error) {
	s, err := metaString(k, v)
	if err != nil || s == "" {
		return 0, err
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i > 255 {
		return 0, metadataError("%s is not an integer in 0..255", k)
	}
	return i, nil
}

// node renders the metadata as sops writes it: fields sorted by name,
// empty ones left out, a single key group as top-level lists.
func (md *Metadata) node() *yaml.Node {
	var fields []field
	add := func(k string, v *yaml.Node) { fields = append(fields, field{k, v}) }
	addStr := func(k, v string) {
		if v != "" {
			add(k, newStr(v))
		}
	}
	addStr("lastmodified", md.LastModified)
	addStr("mac", md.MAC)
	addStr("version", md.Version)
	addStr("unencrypted_suffix", md.UnencryptedSuffix)
	addStr("encrypted_suffix", md.EncryptedSuffix)
	addStr("unencrypted_regex", md.UnencryptedRegex)
	addStr("encrypted_regex", md.EncryptedRegex)
	addStr("unencrypted_comment_regex", md.UnencryptedCommentRegex)
	addStr("encrypted_comment_regex", md.EncryptedCommentRegex)
	if md.MACOnlyEncrypted {
		add("mac_only_encrypted", newScalar(true))
	}
	if len(md.KeyGroups) == 1 {
		fields = append(fields, md.KeyGroups[0].fields(false)...)
	} else if len(md.KeyGroups) > 1 {
		seq := newSeq()
		for i := range md.KeyGroups {
			seq.Content = append(seq.Content, fieldsNode(md.KeyGroups[i].fields(true)))
		}
		add("key_groups", seq)
		if md.ShamirThreshold > 0 {
			add("shamir_threshold", newScalar(int64(md.ShamirThreshold)))
		}
	}
	fields = append(fields, md.extra...)
	return fieldsNode(fields)
}

func (g *KeyGroup) fields(inGroup bool) []field {
	var fields []field
	if len(g.Age) > 0 || inGroup {
		// sops writes "age: []" and "hc_vault: []" in every key group.
		seq := newSeq()
		if len(g.Age) == 0 {
			seq.Style = yaml.FlowStyle
		}
		for _, k := range g.Age {
			seq.Content = append(seq.Content, fieldsNode([]field{{"recipient", newStr(k.Recipient)}, {"enc", newStr(k.Enc)}}))
		}
		fields = append(fields, field{"age", seq})
	}
	if len(g.Vault) > 0 || inGroup {
		seq := newSeq()
		if len(g.Vault) == 0 {
			seq.Style = yaml.FlowStyle
		}
		for _, k := range g.Vault {
			seq.Content = append(seq.Content, fieldsNode([]field{
				{"vault_address", newStr(k.VaultAddress)}, {"engine_path", newStr(k.EnginePath)},
				{"key_name", newStr(k.KeyName)}, {"created_at", newStr(k.CreatedAt)}, {"enc", newStr(k.Enc)},
			}))
		}
		fields = append(fields, field{"hc_vault", seq})
	}
	return append(fields, g.Other...)
}

func fieldsNode(fields []field) *yaml.Node {
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].key < fields[j].key })
	m := newMap()
	for _, f := range fields {
		m.Content = append(m.Content, newStr(f.key), f.value)
	}
	return m
}

// flattenMetadata turns the metadata tree into the key/value pairs of the
// flat formats: nested keys joined with "__map_", list indices with
// "__list_N".
func flattenMetadata(n *yaml.Node) [][2]string {
	var out [][2]string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if prefix != "" {
					k = prefix + "__map_" + k
				}
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, prefix+"__list_"+strconv.Itoa(i))
			}
		case yaml.ScalarNode:
			if n.ShortTag() != tagNull {
				out = append(out, [2]string{prefix, n.Value})
			}
		}
	}
	walk(n, "")
	return out
}

// unflattenMetadata rebuilds the metadata tree from flat key/value pairs.
func unflattenMetadata(pairs [][2]string) (*yaml.Node, error) {
	root := newMap()
	for _, p := range pairs {
		segs, err := splitFlatKey(p[0])
		if err != nil {
			return nil, err
		}
		cur := root
		for i, s := range segs {
			last := i == len(segs)-1
			var next *yaml.Node
			if s.index >= 0 {
				if cur.Kind != yaml.SequenceNode {
					return nil, metadataError("key %q mixes lists and maps", p[0])
				}
				for len(cur.Content) <= s.index {
					cur.Content = append(cur.Content, nil)
				}
				next = cur.Content[s.index]
				if next == nil {
					next = newChild(segs, i)
					cur.Content[s.index] = next
				}
			} else {
				if cur.Kind != yaml.MappingNode {
					return nil, metadataError("key %q mixes lists and maps", p[0])
				}
				for j := 0; j+1 < len(cur.Content); j += 2 {
					if cur.Content[j].Value == s.key {
						next = cur.Content[j+1]
						break
					}
				}
				if next == nil {
					next = newChild(segs, i)
					cur.Content = append(cur.Content, newStr(s.key), next)
				} else if last {
					return nil, metadataError("duplicate key %q", p[0])
				}
			}
			if last {
				if next.Kind != yaml.ScalarNode {
					return nil, metadataError("key %q is both a value and a list or map", p[0])
				}
				next.Value = p[1]
			}
			cur = next
		}
	}
	var check func(n *yaml.Node) error
	check = func(n *yaml.Node) error {
		for _, c := range n.Content {
			if c == nil {
				return metadataError("a list has a gap")
			}
			if err := check(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := check(root); err != nil {
		return nil, err
	}
	return root, nil
}

type flatSeg struct {
	key   string
	index int // -1 for a map key
}

func newChild(segs []flatSeg, i int) *yaml.Node {
	if i == len(segs)-1 {
		return newStr("")
	}
	if segs[i+1].index >= 0 {
		return newSeq()
	}
	return newMap()
}

func splitFlatKey(k string) ([]flatSeg, error) {
	var segs []flatSeg
	first := true
	for {
		im := strings.Index(k, "__map_")
		il := strings.Index(k, "__list_")
		cut := -1
		switch {
		case im >= 0 && (il < 0 || im < il):
			cut = im
		case il >= 0:
			cut = il
		}
		head := k
		if cut >= 0 {
			head = k[:cut]
		}
		if first {
			if head == "" {
				return nil, metadataError("empty key")
			}
			segs = append(segs, flatSeg{key: head, index: -1})
			first = false
		}
		if cut < 0 {
			return segs, nil
		}
		k = k[cut:]
		if strings.HasPrefix(k, "__map_") {
			k = k[len("__map_"):]
			end := nextMarker(k)
			if end == 0 {
				return nil, metadataError("empty key after __map_")
			}
			segs = append(segs, flatSeg{key: k[:end], index: -1})
			k = k[end:]
		} else {
			k = k[len("__list_"):]
			end := nextMarker(k)
			idx, err := strconv.Atoi(k[:end])
			if err != nil || idx < 0 || idx > 10000 {
				return nil, metadataError("bad list index in a flat key")
			}
			segs = append(segs, flatSeg{index: idx})
			k = k[end:]
		}
		if k == "" {
			return segs, nil
		}
		if !strings.HasPrefix(k, "__map_") && !strings.HasPrefix(k, "__list_") {
			return nil, metadataError("malformed flat key")
		}
	}
}

func nextMarker(k string) int {
	end := len(k)
	if i := strings.Index(k, "__map_"); i >= 0 && i < end {
		end = i
	}
	if i := strings.Index(k, "__list_"); i >= 0 && i < end {
		end = i
	}
	return end
}
