package fileenc

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The tree of every format is a yaml.Node tree: each document is a mapping
// node (the "branch"), values are mappings, sequences and scalars, and
// comments are the nodes' Head/Line/FootComment strings. YAML keeps its
// comments and key order this way; the JSON, dotenv and INI stores build
// the same shape.
//
// A value's additional data is the keys of its path (list indices left
// out) each followed by ":": "db:password:". A comment's is its
// container's path the same way, ":" at the top level.

// walkState is what a node inherits from its ancestors.
type walkState struct {
	prefix   string // "a:b:" below a.b, "" at the top level
	keyMatch bool   // some key on the path matched a suffix/regex selector
	marked   bool   // the item or an ancestor follows a marking comment
	// The display path (`["a"]`, `[0]`) is built only for errors.
	parent *walkState
	key    string
	index  int // -1 for a key
}

// path returns the display path of the state.
func (st *walkState) path() []string {
	var rev []string
	for s := st; s != nil && s.parent != nil; s = s.parent {
		if s.index >= 0 {
			rev = append(rev, "["+strconv.Itoa(s.index)+"]")
		} else {
			rev = append(rev, `["`+s.key+`"]`)
		}
	}
	out := make([]string, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

func (st *walkState) aad() string { return st.prefix }

func (st *walkState) commentAAD() string {
	if st.prefix == "" {
		return ":"
	}
	return st.prefix
}

// visitor transforms leaves and comments during a walk.
type visitor interface {
	// leaf handles a scalar with its additional data; encrypt is the
	// selectors' decision.
	leaf(n *yaml.Node, st *walkState, encrypt bool) error
	// comment handles one comment line's text (after "#"). decide tells
	// whether a comment with this plaintext is to be encrypted. It returns
	// the new text and the plaintext.
	comment(text, aad string, decide func(plain string) bool) (newText, plain string, err error)
	// decrypting is true when ENC[...] comment items in sequences (as sops
	// writes them) must be turned back into comments.
	decrypting() bool
}

type walker struct {
	sel *selector
	v   visitor
	// wholeComments makes a comment field one comment, however many lines
	// it has (INI: sops encrypts a key's comment block as one value).
	wholeComments bool
}

// branchState carries a pending mark from a comment matching a
// comment-regex selector to the next item of the same mapping or list.
type branchState struct {
	pending bool
}

// walkDocument walks one document: its top-level comments (on doc, which
// may be nil) and its mapping.
func (w *walker) walkDocument(doc, root *yaml.Node) error {
	st := &walkState{index: -1}
	bs := &branchState{}
	if doc != nil {
		if err := w.comments(&doc.HeadComment, st, bs); err != nil {
			return err
		}
	}
	if err := w.comments(&root.HeadComment, st, bs); err != nil {
		return err
	}
	if err := w.comments(&root.LineComment, st, bs); err != nil {
		return err
	}
	if err := w.walkMappingIn(root, st, bs); err != nil {
		return err
	}
	if err := w.comments(&root.FootComment, st, bs); err != nil {
		return err
	}
	if doc != nil {
		return w.comments(&doc.FootComment, st, bs)
	}
	return nil
}

// walkValue walks a value. ownComments says whether the head and foot
// comments of a collection are walked inside it (a mapping's value: an INI
// section's comment is in the section) or were already walked by the
// caller (a list item: its comment marks the whole item).
func (w *walker) walkValue(n *yaml.Node, st *walkState, ownComments bool) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return w.v.leaf(n, st, w.sel.encrypt(st.keyMatch, st.marked))
	case yaml.MappingNode:
		bs := &branchState{}
		if ownComments {
			if err := w.comments(&n.HeadComment, st, bs); err != nil {
				return err
			}
		}
		if err := w.walkMappingIn(n, st, bs); err != nil {
			return err
		}
		if ownComments {
			return w.comments(&n.FootComment, st, bs)
		}
		return nil
	case yaml.SequenceNode:
		if ownComments {
			if err := w.comments(&n.HeadComment, st, &branchState{}); err != nil {
				return err
			}
		}
		if err := w.walkSequence(n, st); err != nil {
			return err
		}
		if ownComments {
			return w.comments(&n.FootComment, st, &branchState{})
		}
		return nil
	case yaml.AliasNode:
		return &PathError{Path: st.path(), Err: &ParseError{Msg: "YAML aliases must be expanded first"}}
	}
	return &PathError{Path: st.path(), Err: &ParseError{Msg: fmt.Sprintf("unexpected node kind %d", n.Kind)}}
}

func (w *walker) walkMappingIn(m *yaml.Node, st *walkState, bs *branchState) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		pre := []*string{&k.HeadComment, &k.LineComment}
		post := []*string{&k.FootComment}
		if v.Kind == yaml.ScalarNode {
			pre = append(pre, &v.HeadComment, &v.LineComment)
			post = append(post, &v.FootComment)
		} else {
			pre = append(pre, &v.LineComment)
		}
		for _, c := range pre {
			if err := w.comments(c, st, bs); err != nil {
				return err
			}
		}
		child := &walkState{
			prefix:   st.prefix + k.Value + ":",
			keyMatch: st.keyMatch || w.sel.keyMatches(k.Value),
			marked:   st.marked || bs.pending,
			parent:   st,
			key:      k.Value,
			index:    -1,
		}
		bs.pending = false
		if err := w.walkValue(v, child, true); err != nil {
			return err
		}
		for _, c := range post {
			if err := w.comments(c, st, bs); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *walker) walkSequence(s *yaml.Node, st *walkState) error {
	bs := &branchState{}
	var pendingComments []string // sops' comment items, to re-attach
	out := s.Content[:0:0]
	changed := false
	for i, item := range s.Content {
		if w.v.decrypting() && isCommentItem(item) {
			_, plain, err := w.v.comment(item.Value, st.commentAAD(), func(string) bool { return false })
			if err != nil {
				return &PathError{Path: (&walkState{parent: st, index: i}).path(), Err: err}
			}
			w.mark(plain, bs)
			pendingComments = append(pendingComments, "#"+plain)
			changed = true
			continue
		}
		if len(pendingComments) > 0 {
			item.HeadComment = joinComments(strings.Join(pendingComments, "\n"), item.HeadComment)
			pendingComments = nil
		}
		out = append(out, item)
		for _, c := range []*string{&item.HeadComment, &item.LineComment} {
			if err := w.comments(c, st, bs); err != nil {
				return err
			}
		}
		child := &walkState{
			prefix:   st.prefix,
			keyMatch: st.keyMatch,
			marked:   st.marked || bs.pending,
			parent:   st,
			index:    len(out) - 1,
		}
		bs.pending = false
		if err := w.walkValue(item, child, false); err != nil {
			return err
		}
		if err := w.comments(&item.FootComment, st, bs); err != nil {
			return err
		}
	}
	if changed {
		if len(pendingComments) > 0 {
			if len(out) > 0 {
				last := out[len(out)-1]
				last.FootComment = joinComments(last.FootComment, strings.Join(pendingComments, "\n"))
			} else {
				s.FootComment = joinComments(s.FootComment, strings.Join(pendingComments, "\n"))
			}
		}
		s.Content = out
	}
	return nil
}

func joinComments(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n" + b
}

// isCommentItem reports whether a sequence item is an encrypted comment,
// which sops writes as a list element.
func isCommentItem(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && strings.HasSuffix(n.Value, ",type:comment]") && IsEncrypted(n.Value)
}

func (w *walker) mark(plain string, bs *branchState) {
	if w.sel.commentMarks(plain) {
		bs.pending = true
	}
}

// comments handles every "#" line of one comment field.
func (w *walker) comments(field *string, st *walkState, bs *branchState) error {
	if *field == "" {
		return nil
	}
	lines := strings.Split(*field, "\n")
	if w.wholeComments {
		lines = []string{*field}
	}
	changed := false
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " \t")
		if !strings.HasPrefix(trimmed, "#") {
			continue
		}
		text := trimmed[1:]
		decide := func(plain string) bool {
			if w.sel.usesComments() {
				if w.sel.commentMarks(plain) {
					return false
				}
				return w.sel.encrypt(false, st.marked || bs.pending)
			}
			return w.sel.encrypt(st.keyMatch, false)
		}
		newText, plain, err := w.v.comment(text, st.commentAAD(), decide)
		if err != nil {
			return &PathError{Path: st.path(), Err: fmt.Errorf("comment: %w", err)}
		}
		w.mark(plain, bs)
		if newText != text {
			lines[i] = "#" + newText
			changed = true
		}
	}
	if changed {
		*field = strings.Join(lines, "\n")
	}
	return nil
}
