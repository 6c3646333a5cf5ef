package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// parseKVArgs turns "key=value" arguments into a request body, as the Vault
// CLI does: "key=@file" reads the value from a file, "key=-" from stdin, and
// a lone "-" reads a whole JSON object from stdin.
func parseKVArgs(env *Env, args []string) (map[string]any, error) {
	out := map[string]any{}
	stdinUsed := false
	readStdin := func() ([]byte, error) {
		if stdinUsed {
			return nil, usagef("standard input can be used only once")
		}
		stdinUsed = true
		b, err := io.ReadAll(io.LimitReader(env.Stdin, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	for _, a := range args {
		if a == "-" {
			b, err := readStdin()
			if err != nil {
				return nil, err
			}
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				return nil, fmt.Errorf("standard input is not a JSON object: %v", err)
			}
			for k, v := range m {
				out[k] = v
			}
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("invalid argument %q: want key=value, key=@file, key=- or -", a)
		}
		switch {
		case v == "-":
			b, err := readStdin()
			if err != nil {
				return nil, err
			}
			out[k] = strings.TrimSuffix(string(b), "\n")
		case strings.HasPrefix(v, "@"):
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, fmt.Errorf("read value of %q: %w", k, err)
			}
			out[k] = string(b)
		default:
			out[k] = v
		}
	}
	return out, nil
}
