package policy

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPrecedenceAgainstReference compares the compiled ACL with a plain
// transcription of Vault's documented algorithm (try every rule, sort by the
// five rules) on random patterns and paths.
func TestPrecedenceAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"a", "b", "ab", "+"}
	pathSegs := []string{"a", "b", "ab", "abc", "", "x"}
	for trial := range 5000 {
		seen := map[string]bool{}
		var patterns []string
		for range 1 + rng.IntN(12) {
			var parts []string
			for range 1 + rng.IntN(4) {
				parts = append(parts, segs[rng.IntN(len(segs))])
			}
			p := strings.Join(parts, "/")
			switch rng.IntN(3) {
			case 1:
				if strings.HasSuffix(p, "+") {
					p += "/"
				}
				p += "*"
			case 2:
				p += "/*"
			}
			if !seen[p] {
				seen[p] = true
				patterns = append(patterns, p)
			}
		}
		a := newTestACL(t, paths(`"read", "list"`, patterns...))
		for range 20 {
			var parts []string
			for range 1 + rng.IntN(5) {
				parts = append(parts, pathSegs[rng.IntN(len(pathSegs))])
			}
			path := strings.Join(parts, "/")
			if rng.IntN(4) == 0 {
				path += "/"
			}
			for _, op := range []Operation{OpRead, OpList} {
				want := refWinner(patterns, path, op == OpList)
				if got := a.Allowed(Request{Path: path, Op: op}).Pattern; got != want {
					t.Fatalf("trial %d: patterns %q: %s %q won by %q, want %q", trial, patterns, op, path, got, want)
				}
			}
		}
	}
}

func refWinner(patterns []string, path string, list bool) string {
	path = strings.TrimLeft(path, "/")
	if list && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	isExact := func(p string) bool {
		return !strings.HasSuffix(p, "*") && !strings.Contains("/"+p+"/", "/+/")
	}
	for _, p := range patterns {
		if isExact(p) && p == path {
			return p
		}
	}
	trimmed := strings.TrimSuffix(path, "/")
	if list {
		for _, p := range patterns {
			if isExact(p) && p == trimmed {
				return p
			}
		}
	}
	globs := func(path string) string {
		best := ""
		for _, p := range patterns {
			if isExact(p) || !refMatches(p, path) {
				continue
			}
			if best == "" || refLower(best, p) {
				best = p
			}
		}
		return best
	}
	if list && trimmed != path {
		if w := globs(trimmed); w != "" {
			return w
		}
	}
	return globs(path)
}

func refMatches(pattern, path string) bool {
	lit, prefix := strings.CutSuffix(pattern, "*")
	pp, sp := strings.Split(lit, "/"), strings.Split(path, "/")
	if len(sp) < len(pp) || (!prefix && len(sp) != len(pp)) {
		return false
	}
	for i := range pp {
		switch {
		case pp[i] == "+":
		case prefix && i == len(pp)-1:
			if !strings.HasPrefix(sp[i], pp[i]) {
				return false
			}
		case pp[i] != sp[i]:
			return false
		}
	}
	return true
}

// refLower reports whether p1 has lower priority than p2, rule by rule as
// Vault's documentation states them.
func refLower(p1, p2 string) bool {
	first := func(p string) int { return strings.IndexAny(p, "+*") }
	plus := func(p string) int {
		lit, _ := strings.CutSuffix(p, "*")
		n := 0
		for _, seg := range strings.Split(lit, "/") {
			if seg == "+" {
				n++
			}
		}
		return n
	}
	l1, _ := strings.CutSuffix(p1, "*")
	l2, _ := strings.CutSuffix(p2, "*")
	switch {
	case first(p1) != first(p2): // 1
		return first(p1) < first(p2)
	case strings.HasSuffix(p1, "*") != strings.HasSuffix(p2, "*"): // 2
		return strings.HasSuffix(p1, "*")
	case plus(p1) != plus(p2): // 3
		return plus(p1) > plus(p2)
	case len(l1) != len(l2): // 4
		return len(l1) < len(l2)
	}
	return l1 < l2 // 5
}
