package kubernetes

import "strings"

// globMatch reports whether s matches pattern, where "*" in pattern
// matches any run of characters (also none) and everything else matches
// itself. "team-*" matches "team-a"; "*-prod" matches "api-prod"; "*"
// matches everything.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

// matchAnyGlob reports whether s matches one of patterns.
func matchAnyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}
