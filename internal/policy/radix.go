package policy

import (
	"slices"
	"strings"
)

// Glob rules (those ending in "*" or holding "+" segments) live in a radix
// tree keyed by their literal head: the text before the first wildcard. For
// a prefix rule "secret/app*" that is "secret/app"; for "secret/+/config"
// it is "secret/". The key length is Vault's "position of the first
// wildcard or glob", which makes precedence rule 1 structural: walking the
// tree along the request path, a deeper node always beats a shallower one,
// so the walk tries the deepest node first and stops at the first match.
// Rules sharing a node are ranked by rules 2-5 (see less).
//
// Many "+" rules can share a head ("secret/data/+/team1/config",
// "secret/data/+/team2/config", ...). Rather than try each, finish indexes
// such a rule by its first literal segment after the first "+" (its
// position and text relative to the head), so a request only tries the
// rules whose literal segment it has. Rules without such a segment are
// tried in order.

type node struct {
	label    string  // edge label from the parent
	children []*node // labels start with distinct bytes
	rules    []*rule // rules whose head ends here, until finish

	scan   []*rule            // rules tried one by one, best first
	bySeg  map[segKey][]*rule // indexed "+" rules, best first
	segPos []int              // the positions used in bySeg, ascending
}

// segKey is a literal segment at a position relative to a node's key.
type segKey struct {
	pos int
	seg string
}

func (n *node) child(b byte) (int, *node) {
	for i, c := range n.children {
		if c.label[0] == b {
			return i, c
		}
	}
	return -1, nil
}

// insert adds r under key. Rules are sorted once, by finish.
func (n *node) insert(key string, r *rule) {
	for key != "" {
		i, c := n.child(key[0])
		if c == nil {
			c = &node{label: key}
			n.children = append(n.children, c)
			n = c
			break
		}
		common := commonPrefix(key, c.label)
		if common < len(c.label) {
			// Split the edge: n -> mid -> c.
			mid := &node{label: c.label[:common], children: []*node{c}}
			c.label = c.label[common:]
			n.children[i] = mid
			c = mid
		}
		n = c
		key = key[common:]
	}
	n.rules = append(n.rules, r)
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// finish indexes and sorts the rules of n and its descendants.
func (n *node) finish() {
	for _, r := range n.rules {
		k, ok := r.indexKey()
		if !ok {
			n.scan = append(n.scan, r)
			continue
		}
		if n.bySeg == nil {
			n.bySeg = make(map[segKey][]*rule)
		}
		if _, seen := n.bySeg[k]; !seen {
			n.segPos = append(n.segPos, k.pos)
		}
		n.bySeg[k] = append(n.bySeg[k], r)
	}
	n.rules = nil
	sortRules(n.scan)
	for _, rs := range n.bySeg {
		sortRules(rs)
	}
	slices.Sort(n.segPos)
	n.segPos = slices.Compact(n.segPos)
	for _, c := range n.children {
		c.finish()
	}
}

// indexKey returns the first literal segment after the first "+" segment
// of a "+" rule whose head ends at a segment boundary. The last segment of
// a prefix rule is a prefix, not a literal, so it does not count.
func (r *rule) indexKey() (segKey, bool) {
	if !r.wildcard || (r.head > 0 && r.lit[r.head-1] != '/') {
		return segKey{}, false
	}
	rel := strings.Split(r.lit[r.head:], "/")
	if rel[0] != "+" {
		return segKey{}, false
	}
	for i, seg := range rel {
		if r.prefix && i == len(rel)-1 {
			break
		}
		if seg != "+" {
			return segKey{pos: i, seg: seg}, true
		}
	}
	return segKey{}, false
}

// segmentAt returns segment i of s (split on "/").
func segmentAt(s string, i int) (string, bool) {
	for ; i > 0; i-- {
		j := strings.IndexByte(s, '/')
		if j < 0 {
			return "", false
		}
		s = s[j+1:]
	}
	if j := strings.IndexByte(s, '/'); j >= 0 {
		s = s[:j]
	}
	return s, true
}

// match returns the highest-priority rule matching path, given that the
// first off bytes of path have been consumed to reach n.
func (n *node) match(path string, off int) *rule {
	if rest := path[off:]; rest != "" {
		if _, c := n.child(rest[0]); c != nil && strings.HasPrefix(rest, c.label) {
			if r := c.match(path, off+len(c.label)); r != nil {
				return r
			}
		}
	}
	return n.best(path, off)
}

// best returns the highest-priority rule of n that matches path, where
// path[:off] is n's key.
func (n *node) best(path string, off int) *rule {
	var best *rule
	for _, r := range n.scan {
		if r.matches(path) {
			best = r
			break
		}
	}
	if n.bySeg == nil {
		return best
	}
	rel := path[off:]
	for _, pos := range n.segPos {
		seg, ok := segmentAt(rel, pos)
		if !ok {
			break
		}
		for _, r := range n.bySeg[segKey{pos, seg}] {
			if best != nil && !less(r, best) {
				break
			}
			if r.matches(path) {
				best = r
				break
			}
		}
	}
	return best
}

// less reports whether a has higher priority than b, for two rules whose
// first wildcard is at the same position (rule 1 having been decided by the
// tree). Vault's documentation (concepts/policies, "priority matching"),
// stated from the losing side for patterns P1 and P2:
//
//  1. If the first wildcard (+) or glob (*) occurs earlier in P1, P1 is
//     lower priority.
//  2. If P1 ends in * and P2 doesn't, P1 is lower priority.
//  3. If P1 has more + (wildcard) segments, P1 is lower priority.
//  4. If P1 is shorter, it is lower priority.
//  5. If P1 is smaller lexicographically, it is lower priority.
//
// As in Vault, lengths and lexical order compare the patterns without their
// trailing "*", and any exact pattern beats every glob.
func less(a, b *rule) bool {
	if a.prefix != b.prefix {
		return !a.prefix
	}
	if a.wildcards != b.wildcards {
		return a.wildcards < b.wildcards
	}
	if len(a.lit) != len(b.lit) {
		return len(a.lit) > len(b.lit)
	}
	return a.lit > b.lit
}

func sortRules(rs []*rule) {
	// Insertion sort: nodes hold few rules and this runs once per ACL.
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && less(rs[j], rs[j-1]); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// matches reports whether the glob rule r matches path. The tree walk has
// already checked the literal head; this checks the rest, segment by
// segment, without allocating. As in Vault, "+" matches exactly one segment
// (which may be empty, as in "a//b"), and a trailing "*" turns the last
// segment into a prefix and lets more segments follow.
func (r *rule) matches(path string) bool {
	if !r.wildcard {
		return strings.HasPrefix(path, r.lit)
	}
	pos := 0 // start of the current path segment; > len(path) when none is left
	last := len(r.segs) - 1
	for i, seg := range r.segs {
		if pos > len(path) {
			return false // the path has fewer segments than the pattern
		}
		part, next := path[pos:], len(path)+1
		if j := strings.IndexByte(part, '/'); j >= 0 {
			part, next = part[:j], pos+j+1
		}
		switch {
		case seg == "+", seg == part:
		case r.prefix && i == last && strings.HasPrefix(part, seg):
		default:
			return false
		}
		pos = next
	}
	// A pattern without "*" needs exactly as many segments as the path.
	return r.prefix || pos > len(path)
}

// coversMount reports whether r could match a path below the mount whose
// segments are mount, as Vault's bare-mount check does: the first
// len(mount) segments of the pattern must match those of the mount.
func (r *rule) coversMount(mount []string) bool {
	last := len(r.segs) - 1
	for i, m := range mount {
		if i > last {
			return false
		}
		seg := r.segs[i]
		switch {
		case seg == "+", seg == m:
		case r.prefix && i == last && strings.HasPrefix(m, seg):
		default:
			return false
		}
	}
	return true
}
