package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// printData writes v in the chosen format. Tables are for humans (sorted
// "Key  Value" rows); json and yaml are stable for scripts.
func printData(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(toPlain(v))
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	default:
		m, ok := v.(map[string]any)
		if !ok {
			_, err := fmt.Fprintln(w, formatValue(v))
			return err
		}
		return printTable(w, m)
	}
}

// toPlain round-trips through JSON so yaml sees plain maps, strings and
// numbers (json.Number would otherwise print as a string).
func toPlain(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return v
	}
	return out
}

func printTable(w io.Writer, m map[string]any) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "Key\tValue")
	fmt.Fprintln(tw, "---\t-----")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\n", k, formatValue(m[k]))
	}
	return tw.Flush()
}

// printKV writes rows in the given order (for status-like output).
func printKV(w io.Writer, rows [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "Key\tValue")
	fmt.Fprintln(tw, "---\t-----")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "n/a"
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case []string:
		return "[" + strings.Join(x, " ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + formatValue(x[k])
		}
		return "map[" + strings.Join(parts, " ") + "]"
	default:
		return fmt.Sprint(x)
	}
}

// fieldValue returns one field of m as printed by -field: strings raw,
// everything else as JSON.
func fieldValue(m map[string]any, field string) (string, error) {
	v, ok := m[field]
	if !ok {
		return "", fmt.Errorf("field %q not present in the response", field)
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
