package fileenc

import (
	"fmt"
	"regexp"
	"strings"
)

// Selectors decide which values are encrypted. At most one may be set; with
// none, UnencryptedSuffix defaults to DefaultUnencryptedSuffix. They are
// stored in the file's metadata, so decryption applies the same rule.
type Selectors struct {
	UnencryptedSuffix       string
	EncryptedSuffix         string
	UnencryptedRegex        string
	EncryptedRegex          string
	UnencryptedCommentRegex string
	EncryptedCommentRegex   string
	// MACOnlyEncrypted leaves values that stay in clear text out of the
	// MAC, so they can be edited without the data key.
	MACOnlyEncrypted bool
}

// DefaultUnencryptedSuffix is the suffix sops leaves in clear text when no
// selector is given.
const DefaultUnencryptedSuffix = "_unencrypted"

type selectorKind int

const (
	selUnencryptedSuffix selectorKind = iota
	selEncryptedSuffix
	selUnencryptedRegex
	selEncryptedRegex
	selUnencryptedCommentRegex
	selEncryptedCommentRegex
)

// selector is the compiled form of Selectors.
type selector struct {
	kind    selectorKind
	suffix  string
	re      *regexp.Regexp
	macOnly bool
}

// count returns how many selectors are set.
func (s Selectors) count() int {
	n := 0
	for _, v := range []string{s.UnencryptedSuffix, s.EncryptedSuffix, s.UnencryptedRegex, s.EncryptedRegex, s.UnencryptedCommentRegex, s.EncryptedCommentRegex} {
		if v != "" {
			n++
		}
	}
	return n
}

// withDefault returns s with the default unencrypted suffix when no
// selector is set.
func (s Selectors) withDefault() Selectors {
	if s.count() == 0 {
		s.UnencryptedSuffix = DefaultUnencryptedSuffix
	}
	return s
}

func (s Selectors) compile() (*selector, error) {
	if s.count() > 1 {
		return nil, fmt.Errorf("%w: only one of unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex, unencrypted_comment_regex and encrypted_comment_regex may be set", ErrInvalidSelectors)
	}
	s = s.withDefault()
	sel := &selector{macOnly: s.MACOnlyEncrypted}
	var expr string
	switch {
	case s.UnencryptedSuffix != "":
		sel.kind, sel.suffix = selUnencryptedSuffix, s.UnencryptedSuffix
	case s.EncryptedSuffix != "":
		sel.kind, sel.suffix = selEncryptedSuffix, s.EncryptedSuffix
	case s.UnencryptedRegex != "":
		sel.kind, expr = selUnencryptedRegex, s.UnencryptedRegex
	case s.EncryptedRegex != "":
		sel.kind, expr = selEncryptedRegex, s.EncryptedRegex
	case s.UnencryptedCommentRegex != "":
		sel.kind, expr = selUnencryptedCommentRegex, s.UnencryptedCommentRegex
	case s.EncryptedCommentRegex != "":
		sel.kind, expr = selEncryptedCommentRegex, s.EncryptedCommentRegex
	}
	if expr != "" {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidSelectors, err)
		}
		sel.re = re
	}
	return sel, nil
}

// keyMatches reports whether one path component selects its subtree
// (suffix and key-regex selectors).
func (s *selector) keyMatches(key string) bool {
	switch s.kind {
	case selUnencryptedSuffix, selEncryptedSuffix:
		return strings.HasSuffix(key, s.suffix)
	case selUnencryptedRegex, selEncryptedRegex:
		return s.re.MatchString(key)
	}
	return false
}

// commentMarks reports whether a comment marks the next item
// (comment-regex selectors).
func (s *selector) commentMarks(text string) bool {
	switch s.kind {
	case selUnencryptedCommentRegex, selEncryptedCommentRegex:
		return s.re.MatchString(text)
	}
	return false
}

func (s *selector) usesComments() bool {
	return s.kind == selUnencryptedCommentRegex || s.kind == selEncryptedCommentRegex
}

// encrypt decides for a value whose path has keyMatch (some component
// matched) and marked (it or an ancestor follows a marking comment).
func (s *selector) encrypt(keyMatch, marked bool) bool {
	switch s.kind {
	case selUnencryptedSuffix, selUnencryptedRegex:
		return !keyMatch
	case selEncryptedSuffix, selEncryptedRegex:
		return keyMatch
	case selUnencryptedCommentRegex:
		return !marked
	case selEncryptedCommentRegex:
		return marked
	}
	return true
}
