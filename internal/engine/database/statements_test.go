package database

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coffer-dev/coffer/internal/logical"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"seed", `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
			[]string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`, `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{{name}}"`}},
		{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"empty pieces", " ;; SELECT 1 ;\n; ", []string{"SELECT 1"}},
		{"blank", " \n\t", nil},
		{"semicolon in string", `SELECT 'a;b'; SELECT 2`, []string{`SELECT 'a;b'`, "SELECT 2"}},
		{"doubled quote", `SELECT 'it''s; fine'; SELECT 2`, []string{`SELECT 'it''s; fine'`, "SELECT 2"}},
		{"escape string", `SELECT E'a\';b'; SELECT 2`, []string{`SELECT E'a\';b'`, "SELECT 2"}},
		{"backslash in standard string", `SELECT 'a\'; SELECT 2`, []string{`SELECT 'a\'`, "SELECT 2"}},
		{"identifier ending in e", `SELECT some'x;y'`, []string{`SELECT some'x;y'`}},
		{"quoted identifier", `CREATE ROLE "a;""b"; SELECT 2`, []string{`CREATE ROLE "a;""b"`, "SELECT 2"}},
		{"dollar quoted", "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$; SELECT 3", []string{"DO $$ BEGIN PERFORM 1; PERFORM 2; END $$", "SELECT 3"}},
		{"tagged dollar quote", "DO $body$ BEGIN EXECUTE $$x;$$; END $body$; SELECT 3", []string{"DO $body$ BEGIN EXECUTE $$x;$$; END $body$", "SELECT 3"}},
		{"positional parameter", "SELECT $1; SELECT $2", []string{"SELECT $1", "SELECT $2"}},
		{"dollar in identifier", "SELECT a$b$c; SELECT 2", []string{"SELECT a$b$c", "SELECT 2"}},
		{"line comment", "SELECT 1 -- a; b\n; SELECT 2", []string{"SELECT 1 -- a; b", "SELECT 2"}},
		{"comment only piece", "SELECT 1; -- the end;\n", []string{"SELECT 1"}},
		{"nested block comment", "SELECT /* a /* b; */ c; */ 1; SELECT 2", []string{"SELECT /* a /* b; */ c; */ 1", "SELECT 2"}},
		{"comment alone", "/* x; */", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitStatements(tc.in)
			if err != nil {
				t.Fatalf("splitStatements(%q) = %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("splitStatements(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestSplitStatementsErrors(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 'abc`:            "unterminated quoted string starting at byte 7",
		`CREATE ROLE "x`:         "unterminated quoted identifier starting at byte 12",
		`DO $$ BEGIN`:            "unterminated dollar-quoted string starting at byte 3",
		`DO $a$ BEGIN $b$`:       "unterminated dollar-quoted string starting at byte 3",
		`SELECT 1 /* x /* y */`:  "unterminated /* comment starting at byte 9",
		`SELECT E'\'`:            "unterminated quoted string starting at byte 8",
		"SELECT 'a''; SELECT 2;": "unterminated quoted string starting at byte 7",
	} {
		_, err := splitStatements(in)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Msg != want {
			t.Errorf("splitStatements(%q) = %v, want a ParseError %q", in, err, want)
		}
	}
}

func TestParseStatements(t *testing.T) {
	// A string is one element: not split on its commas.
	got, err := parseStatements("creation_statements", "GRANT SELECT, INSERT ON t TO x; SELECT 1")
	if err != nil || len(got) != 1 {
		t.Fatalf("parseStatements(string) = %q, %v; want one element", got, err)
	}
	got, err = parseStatements("creation_statements", []any{"SELECT 1", " ", "SELECT 2; SELECT 3"})
	if err != nil || !cmp.Equal(got, []string{"SELECT 1", "SELECT 2; SELECT 3"}) {
		t.Fatalf("parseStatements(list) = %q, %v", got, err)
	}
	compiled, err := compileStatements("creation_statements", got)
	if err != nil || len(compiled) != 3 {
		t.Fatalf("compileStatements(%q) = %q, %v", got, compiled, err)
	}
	if got, err := parseStatements("x", nil); err != nil || len(got) != 0 {
		t.Fatalf("parseStatements(nil) = %q, %v", got, err)
	}
	for _, bad := range []any{[]any{"SELECT 1", 2}, 42.0, map[string]any{}, "SELECT 'x", strings.Repeat("x", maxStatementsLen+1)} {
		_, err := parseStatements("creation_statements", bad)
		var ire *logical.InvalidRequestError
		if !errors.As(err, &ire) || !strings.HasPrefix(ire.Msg, "creation_statements") {
			t.Errorf("parseStatements(%.40v) = %v, want a 400 naming the field", bad, err)
		}
	}
}

func TestRender(t *testing.T) {
	v := templateVars{username: "v-a-b", password: "Pw-1", expiration: "2030-01-02 03:04:05+0000"}
	got := render(`CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; -- {{username}} {{other}}`, v)
	want := `CREATE ROLE "v-a-b" PASSWORD 'Pw-1' VALID UNTIL '2030-01-02 03:04:05+0000'; -- v-a-b {{other}}`
	if got != want {
		t.Fatalf("render = %q, want %q", got, want)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{`a`: `"a"`, `a"b`: `"a""b"`, `Mixed Case`: `"Mixed Case"`} {
		if got := quoteIdent(in); got != want {
			t.Errorf("quoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{`a`: `'a'`, `it's`: `'it''s'`, `a\b'`: `E'a\\b'''`} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}
