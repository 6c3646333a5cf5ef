package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
)

// The grammar. Vault's HCL1 parser also accepts these keys; "name" at the top
// level and "comment" in a path block are accepted and ignored, as in Vault.
var (
	rootSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "name"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "path", LabelNames: []string{"pattern"}}},
	}
	pathSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "capabilities"},
			{Name: "policy"},
			{Name: "allowed_parameters"},
			{Name: "denied_parameters"},
			{Name: "required_parameters"},
			{Name: "min_wrapping_ttl"},
			{Name: "max_wrapping_ttl"},
			{Name: "comment"},
		},
	}
	// Keys Vault accepts in a path block that Coffer does not implement. They
	// are errors, not ignored: ignoring them would drop a restriction.
	unsupportedAttributes = map[string]string{
		"mfa_methods":           "a Vault Enterprise feature",
		"control_group":         "a Vault Enterprise feature",
		"subscribe_event_types": "event subscriptions are not implemented",
	}
)

// Parse parses policy text, in HCL or (when it starts with "{") JSON, into a
// Policy named name. The name is normalized with NormalizeName; "root" is
// refused. Every error is a *ParseError.
func Parse(name, text string) (*Policy, error) {
	n := NormalizeName(name)
	switch n {
	case "":
		return nil, &ParseError{Msg: "policy name is empty"}
	case RootName:
		return nil, &ParseError{Policy: n, Msg: ErrRootPolicy.Error(), err: ErrRootPolicy}
	}
	rules, err := parseRules(n, text)
	if err != nil {
		return nil, err
	}
	return &Policy{Name: n, Raw: text, Rules: rules}, nil
}

// Format returns text in canonical form, for `coffer policy fmt`: HCL goes
// through hclwrite.Format, JSON is re-indented. Text that does not parse is
// refused with the *ParseError Parse would return.
func Format(text string) (string, error) {
	if _, err := parseRules("", text); err != nil {
		return "", err
	}
	if isJSON(text) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, []byte(strings.TrimSpace(text)), "", "  "); err != nil {
			return "", &ParseError{Msg: "format json: " + err.Error()}
		}
		buf.WriteByte('\n')
		return buf.String(), nil
	}
	return string(hclwrite.Format([]byte(text))), nil
}

func isJSON(text string) bool {
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	return strings.HasPrefix(t, "{")
}

func parseRules(policy, text string) ([]Rule, error) {
	filename := policy
	if filename == "" {
		filename = "policy"
	}
	var (
		file  *hcl.File
		diags hcl.Diagnostics
	)
	if isJSON(text) {
		file, diags = hcljson.Parse([]byte(text), filename)
	} else {
		file, diags = hclsyntax.ParseConfig([]byte(text), filename, hcl.InitialPos)
	}
	if diags.HasErrors() {
		return nil, diagError(policy, diags)
	}
	if err := checkNames(policy, file.Body, rootSchema, "at the top level"); err != nil {
		return nil, err
	}
	content, diags := file.Body.Content(rootSchema)
	if diags.HasErrors() {
		return nil, diagError(policy, diags)
	}
	if a := content.Attributes["name"]; a != nil {
		if _, err := stringValue(policy, a.Expr, "name"); err != nil {
			return nil, err
		}
	}
	rules := make([]Rule, 0, len(content.Blocks))
	for _, b := range content.Blocks {
		r, err := parsePathBlock(policy, b)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parsePathBlock(policy string, b *hcl.Block) (Rule, error) {
	pattern, msg := checkPattern(b.Labels[0])
	if msg != "" {
		return Rule{}, posError(policy, b.LabelRanges[0], "path %q: %s", b.Labels[0], msg)
	}
	if err := checkNames(policy, b.Body, pathSchema, "in a path block"); err != nil {
		return Rule{}, err
	}
	content, diags := b.Body.Content(pathSchema)
	if diags.HasErrors() {
		return Rule{}, diagError(policy, diags)
	}
	r := Rule{Pattern: pattern, Line: b.DefRange.Start.Line}
	attr := func(name string) hcl.Expression {
		if a := content.Attributes[name]; a != nil {
			return a.Expr
		}
		return nil
	}

	if e := attr("capabilities"); e != nil {
		elems, err := listElems(policy, e, "capabilities")
		if err != nil {
			return Rule{}, err
		}
		for _, el := range elems {
			s, err := stringValue(policy, el, "capability")
			if err != nil {
				return Rule{}, err
			}
			c, ok := ParseCapability(s)
			if !ok {
				return Rule{}, posError(policy, el.Range(), "unknown capability %q", s)
			}
			r.Capabilities |= c
		}
	}
	if e := attr("policy"); e != nil {
		s, err := stringValue(policy, e, "policy")
		if err != nil {
			return Rule{}, err
		}
		// The pre-0.5 policy field, mapped exactly as Vault maps it (Vault
		// predates patch and never added it to "write" or "sudo").
		switch s {
		case "deny":
			r.Capabilities |= Deny
		case "read":
			r.Capabilities |= Read | List
		case "write":
			r.Capabilities |= Create | Read | Update | Delete | List
		case "sudo":
			r.Capabilities |= Create | Read | Update | Delete | List | Sudo
		default:
			return Rule{}, posError(policy, e.Range(), `unknown policy %q (want "deny", "read", "write" or "sudo")`, s)
		}
	}
	if r.Capabilities&Deny != 0 {
		r.Capabilities = Deny
	}

	var err error
	if e := attr("allowed_parameters"); e != nil {
		if r.AllowedParameters, err = parseParams(policy, e, "allowed_parameters"); err != nil {
			return Rule{}, err
		}
	}
	if e := attr("denied_parameters"); e != nil {
		if r.DeniedParameters, err = parseParams(policy, e, "denied_parameters"); err != nil {
			return Rule{}, err
		}
	}
	if e := attr("required_parameters"); e != nil {
		elems, err := listElems(policy, e, "required_parameters")
		if err != nil {
			return Rule{}, err
		}
		for _, el := range elems {
			s, err := stringValue(policy, el, "required parameter")
			if err != nil {
				return Rule{}, err
			}
			r.RequiredParameters = append(r.RequiredParameters, strings.ToLower(s))
		}
	}
	if e := attr("min_wrapping_ttl"); e != nil {
		if r.MinWrappingTTL, err = ttlValue(policy, e, "min_wrapping_ttl"); err != nil {
			return Rule{}, err
		}
	}
	if e := attr("max_wrapping_ttl"); e != nil {
		if r.MaxWrappingTTL, err = ttlValue(policy, e, "max_wrapping_ttl"); err != nil {
			return Rule{}, err
		}
		if r.MinWrappingTTL > 0 && r.MaxWrappingTTL > 0 && r.MaxWrappingTTL < r.MinWrappingTTL {
			return Rule{}, posError(policy, e.Range(), "max_wrapping_ttl cannot be less than min_wrapping_ttl")
		}
	}
	if e := attr("comment"); e != nil {
		if _, err := stringValue(policy, e, "comment"); err != nil {
			return Rule{}, err
		}
	}
	return r, nil
}

// checkPattern strips the leading "/" (as Vault does) and validates the glob
// syntax. It returns the pattern, or a message saying what is wrong.
//
// Coffer is stricter than Vault here: Vault treats a "*" before the end, or a
// segment such as "+foo", as literal characters, which is never what the
// author meant; Coffer refuses them. A "+" inside a segment ("c++") is a
// literal, as in Vault.
func checkPattern(raw string) (string, string) {
	p := strings.TrimPrefix(raw, "/")
	switch {
	case p == "":
		return "", "empty path pattern"
	case strings.Contains(p, "{{"):
		return "", "templated policy paths are not supported"
	case strings.Contains(p, "+*"):
		return "", `"+*" is not allowed; write "+/*" or end the segment before "*"`
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
		return "", `"*" is only allowed at the end of a path pattern`
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(p, "*"), "/") {
		if strings.HasPrefix(seg, "+") && seg != "+" {
			return "", `"+" must be a whole path segment`
		}
	}
	return p, ""
}

// checkNames reports the first attribute or block in body (in source order)
// that schema does not declare, with a message better than HCL's.
func checkNames(policy string, body hcl.Body, schema *hcl.BodySchema, where string) error {
	type item struct {
		name  string
		rng   hcl.Range
		block bool
	}
	var items []item
	if sb, ok := body.(*hclsyntax.Body); ok {
		for _, a := range sb.Attributes {
			items = append(items, item{a.Name, a.NameRange, false})
		}
		for _, b := range sb.Blocks {
			items = append(items, item{b.Type, b.TypeRange, true})
		}
	} else {
		// JSON has no attribute/block distinction: every property is a name.
		attrs, diags := body.JustAttributes()
		if diags.HasErrors() {
			return diagError(policy, diags)
		}
		for _, a := range attrs {
			items = append(items, item{a.Name, a.NameRange, false})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rng.Start.Byte < items[j].rng.Start.Byte })

	_, native := body.(*hclsyntax.Body)
	for _, it := range items {
		isAttr, isBlock := false, false
		for _, a := range schema.Attributes {
			isAttr = isAttr || a.Name == it.name
		}
		for _, b := range schema.Blocks {
			isBlock = isBlock || b.Type == it.name
		}
		switch {
		case isAttr && it.block:
			return posError(policy, it.rng, "%q must be an attribute: write %s = ...", it.name, it.name)
		case isBlock && !it.block && native:
			return posError(policy, it.rng, `%q must be a block: write %s "<pattern>" { ... }`, it.name, it.name)
		case isAttr || isBlock:
		case unsupportedAttributes[it.name] != "":
			return posError(policy, it.rng, "%q is not supported: %s", it.name, unsupportedAttributes[it.name])
		case it.block:
			return posError(policy, it.rng, "unknown block type %q %s", it.name, where)
		default:
			return posError(policy, it.rng, "unknown attribute %q %s", it.name, where)
		}
	}
	return nil
}

func listElems(policy string, expr hcl.Expression, what string) ([]hcl.Expression, error) {
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		return nil, posError(policy, expr.Range(), "%s must be a list", what)
	}
	return elems, nil
}

func stringValue(policy string, expr hcl.Expression, what string) (string, error) {
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return "", diagError(policy, diags)
	}
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", posError(policy, expr.Range(), "%s must be a string", what)
	}
	return v.AsString(), nil
}

// parseParams reads an allowed_parameters or denied_parameters map.
func parseParams(policy string, expr hcl.Expression, what string) (map[string][]any, error) {
	pairs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		return nil, posError(policy, expr.Range(), "%s must be a map of parameter names to lists of values", what)
	}
	if len(pairs) == 0 {
		return nil, nil
	}
	params := make(map[string][]any, len(pairs))
	for _, kv := range pairs {
		key, err := stringValue(policy, kv.Key, what+" key")
		if err != nil {
			return nil, err
		}
		key = strings.ToLower(key)
		if _, dup := params[key]; dup {
			return nil, posError(policy, kv.Key.Range(), "duplicate parameter %q in %s", key, what)
		}
		elems, err := listElems(policy, kv.Value, fmt.Sprintf("%s value of %q", what, key))
		if err != nil {
			return nil, err
		}
		vals := make([]any, 0, len(elems))
		for _, el := range elems {
			v, diags := el.Value(nil)
			if diags.HasErrors() {
				return nil, diagError(policy, diags)
			}
			g, ok := goValue(v)
			if !ok {
				return nil, posError(policy, el.Range(), "unsupported value in %s", what)
			}
			vals = append(vals, g)
		}
		// Vault documents [] as the only value for "*" and ignores any other.
		if key == "*" && len(vals) > 0 {
			return nil, posError(policy, kv.Value.Range(), `the only value allowed for parameter "*" is []`)
		}
		params[key] = vals
	}
	return params, nil
}

// goValue converts a constant HCL value to the types a JSON request body
// decodes to: string, float64, bool, nil, []any, map[string]any.
func goValue(v cty.Value) (any, bool) {
	if v.IsNull() {
		return nil, true
	}
	if !v.IsWhollyKnown() {
		return nil, false
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), true
	case t == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return f, true
	case t == cty.Bool:
		return v.True(), true
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			g, ok := goValue(ev)
			if !ok {
				return nil, false
			}
			out = append(out, g)
		}
		return out, true
	case t.IsMapType() || t.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			g, ok := goValue(ev)
			if !ok {
				return nil, false
			}
			out[k.AsString()] = g
		}
		return out, true
	}
	return nil, false
}

// ttlValue reads a wrapping TTL the way Vault's ParseDurationSecond does: a
// number of seconds, "90" (seconds), "2d" (days) or a Go duration ("1h30m").
func ttlValue(policy string, expr hcl.Expression, what string) (time.Duration, error) {
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return 0, diagError(policy, diags)
	}
	var (
		d   time.Duration
		err error
	)
	switch {
	case v.IsNull() || !v.IsKnown():
		err = fmt.Errorf("must be a duration")
	case v.Type() == cty.String:
		d, err = parseDurationSecond(v.AsString())
	case v.Type() == cty.Number:
		d, err = secondsDuration(v.AsBigFloat())
	default:
		err = fmt.Errorf("must be a duration")
	}
	if err == nil && d < 0 {
		err = fmt.Errorf("must not be negative")
	}
	if err != nil {
		return 0, posError(policy, expr.Range(), "%s: %v", what, err)
	}
	return d, nil
}

func parseDurationSecond(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return mulDuration(n, time.Second)
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return mulDuration(n, 24*time.Hour)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

func secondsDuration(f *big.Float) (time.Duration, error) {
	if !f.IsInt() {
		return 0, fmt.Errorf("must be a whole number of seconds")
	}
	n, acc := f.Int64()
	if acc != big.Exact {
		return 0, fmt.Errorf("out of range")
	}
	return mulDuration(n, time.Second)
}

func mulDuration(n int64, unit time.Duration) (time.Duration, error) {
	if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, fmt.Errorf("out of range")
	}
	return time.Duration(n) * unit, nil
}

func posError(policy string, rng hcl.Range, format string, args ...any) *ParseError {
	return &ParseError{
		Policy: policy,
		Line:   rng.Start.Line,
		Column: rng.Start.Column,
		Msg:    fmt.Sprintf(format, args...),
	}
}

// diagError turns the first error diagnostic into a *ParseError, with HCL's
// summary and detail folded into one lower-case line.
func diagError(policy string, diags hcl.Diagnostics) *ParseError {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := lowerFirst(d.Summary)
		if d.Detail != "" {
			msg += ": " + lowerFirst(strings.TrimSuffix(strings.Join(strings.Fields(d.Detail), " "), "."))
		}
		pe := &ParseError{Policy: policy, Msg: msg}
		if d.Subject != nil {
			pe.Line, pe.Column = d.Subject.Start.Line, d.Subject.Start.Column
		}
		return pe
	}
	return &ParseError{Policy: policy, Msg: "invalid policy"}
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || !unicode.IsUpper(r) {
		return s
	}
	// Keep acronyms ("JSON", "HCL") as they are.
	if r2, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(r2) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
