package logical

import (
	"encoding/json"

	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a Vault-style duration field: an integer number of
// seconds (JSON number or numeric string) or a Go duration string ("1h30m",
// "90s"), plus "d" for days as Vault allows ("7d"). nil or "" is zero.
func ParseDuration(field string, v any) (time.Duration, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return 0, BadRequest("%s: %q is not a whole number of seconds", field, x.String())
		}
		return secs(field, n)
	case float64:
		if x != math.Trunc(x) {
			return 0, BadRequest("%s: %v is not a whole number of seconds", field, x)
		}
		return secs(field, int64(x))
	case int:
		return secs(field, int64(x))
	case int64:
		return secs(field, x)
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, nil
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return secs(field, n)
		}
		if strings.HasSuffix(s, "d") {
			n, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 64)
			if err == nil && n >= 0 && n < 1<<20 {
				return time.Duration(n) * 24 * time.Hour, nil
			}
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, BadRequest("%s: %q is not a duration (use seconds or a form like \"1h30m\")", field, s)
		}
		return d.Truncate(time.Second), nil
	default:
		return 0, BadRequest("%s: must be a duration", field)
	}
}

func secs(field string, n int64) (time.Duration, error) {
	if n < 0 || n > math.MaxInt64/int64(time.Second) {
		return 0, BadRequest("%s: %d seconds is out of range", field, n)
	}
	return time.Duration(n) * time.Second, nil
}

// ParseInt reads an integer field given as a JSON number or numeric string.
func ParseInt(field string, v any) (int64, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return 0, BadRequest("%s: %q is not an integer", field, x.String())
		}
		return n, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, BadRequest("%s: %v is not an integer", field, x)
		}
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case string:
		if strings.TrimSpace(x) == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, BadRequest("%s: %q is not an integer", field, x)
		}
		return n, nil
	default:
		return 0, BadRequest("%s: must be an integer", field)
	}
}

// ParseBool reads a boolean field given as a JSON bool or a string.
func ParseBool(field string, v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		if strings.TrimSpace(x) == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err != nil {
			return false, BadRequest("%s: %q is not a boolean", field, x)
		}
		return b, nil
	default:
		return false, BadRequest("%s: must be a boolean", field)
	}
}

// ParseString reads a string field. Numbers and bools are refused, so a
// typo'd type is an error rather than a silent conversion.
func ParseString(field string, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	default:
		return "", BadRequest("%s: must be a string", field)
	}
}

// ParseStrings reads a list-of-strings field given as a JSON array or a
// comma-separated string (Vault accepts both).
func ParseStrings(field string, v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.TrimSpace(x) == "" {
			return []string{}, nil
		}
		parts := strings.Split(x, ",")
		out := make([]string, 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, BadRequest("%s: every element must be a string", field)
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return append([]string(nil), x...), nil
	default:
		return nil, BadRequest("%s: must be a list of strings", field)
	}
}

// CheckFields refuses keys of data not in allowed, naming the first one.
func CheckFields(data map[string]any, allowed ...string) error {
	for k := range data {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			return BadRequest("unknown field %q", k)
		}
	}
	return nil
}

// FormatSeconds renders d as whole seconds, as Vault's JSON does.
func FormatSeconds(d time.Duration) int64 { return int64(d / time.Second) }
