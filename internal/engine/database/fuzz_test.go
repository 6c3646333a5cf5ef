package database

import (
	"strings"
	"testing"
	"time"
)

// FuzzSplitStatements: splitting never panics; every piece is trimmed
// and non-empty; and splitting the pieces joined again gives the same
// pieces.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{
		`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
		"DO $$ BEGIN PERFORM 1; END $$; SELECT E'\\';' -- x;\n; /* a /* b */ ; */ SELECT \"a;\"\"b\"",
		"SELECT $1; SELECT a$b$c; $t$ ; $t$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		parts, err := splitStatements(sql)
		if err != nil {
			return
		}
		for _, p := range parts {
			if p == "" || p != strings.TrimSpace(p) {
				t.Fatalf("splitStatements(%q) gave piece %q", sql, p)
			}
		}
		again, err := splitStatements(strings.Join(parts, "\n;\n"))
		if err != nil {
			t.Fatalf("re-splitting the pieces of %q: %v", sql, err)
		}
		if strings.Join(again, "\x00") != strings.Join(parts, "\x00") {
			t.Fatalf("re-splitting %q: %q, want %q", sql, again, parts)
		}
	})
}

// FuzzUsernameTemplate: any template either fails to parse or renders a
// valid username or fails cleanly, in bounded time and memory.
func FuzzUsernameTemplate(f *testing.F) {
	for _, s := range []string{defaultUsernameTemplate, `{{.RoleName | truncate_sha256 12}}`, `{{printf "%05d" 3}}`,
		`{{if .DisplayName}}{{.DisplayName}}{{end}}`, `{{range 10}}x{{end}}`} {
		f.Add(s, "token-x", "role")
	}
	f.Fuzz(func(t *testing.T, tmpl, display, role string) {
		ut, err := parseUsernameTemplate(tmpl)
		if err != nil {
			return
		}
		done := make(chan struct{})
		var name string
		go func() {
			defer close(done)
			name, err = ut.generate(display, role)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("template %q did not finish", tmpl)
		}
		if err == nil && validUsername(name) != nil {
			t.Fatalf("template %q rendered the invalid username %q", tmpl, name)
		}
	})
}

// FuzzSchedule: parsing never panics, and next returns a later minute
// that the schedule matches.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"0 * * * *", "*/15 9-17 * * MON-FRI", "0 0 29 2 *", "5/20 1,2,3 1-31/2 JAN,DEC 0,7"} {
		f.Add(s, int64(1714564800))
	}
	f.Fuzz(func(t *testing.T, spec string, unix int64) {
		sc, err := parseSchedule(spec)
		if err != nil {
			return
		}
		after := time.Unix(unix%(4e9), 0).UTC()
		next, ok := sc.next(after)
		if !ok {
			return
		}
		if !next.After(after) || next.Second() != 0 {
			t.Fatalf("%q next after %v = %v", spec, after, next)
		}
		if sc.minute&(1<<uint(next.Minute())) == 0 || sc.hour&(1<<uint(next.Hour())) == 0 || !sc.dayMatches(next) {
			t.Fatalf("%q next after %v = %v, which it does not match", spec, after, next)
		}
	})
}

// FuzzRedact: no four consecutive bytes of a secret survive in a message
// (for secrets made of word bytes, as every password this engine makes).
func FuzzRedact(f *testing.F) {
	f.Add(`syntax error at or near "Ab3-xyz"`, "Ab3-xyz9")
	f.Add("cannot parse `postgresql://u:p%40ss@h`", "p@ss")
	f.Add("password=secret1 host=h", "secret1")
	f.Fuzz(func(t *testing.T, msg, secret string) {
		for i := 0; i < len(secret); i++ {
			c := secret[i]
			if !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' {
				return // outside the alphabet the property is stated for
			}
		}
		got := redact(msg, secret)
		if len(secret) < minFragment {
			return
		}
		for k := 0; k+minFragment <= len(secret); k++ {
			if strings.Contains(got, secret[k:k+minFragment]) {
				t.Fatalf("redact(%q, %q) = %q keeps %q", msg, secret, got, secret[k:k+minFragment])
			}
		}
	})
}

// FuzzConnURL: parsing a connection_url never panics, and what a read
// shows never holds the password the URL carries.
func FuzzConnURL(f *testing.F) {
	f.Add("postgresql://{{username}}:{{password}}@127.0.0.1:5432/db?sslmode=disable")
	f.Add("postgresql://admin:s3cr3t-pw@h/db?password=other-secret")
	f.Add("host=h user=admin password='s3 cr3t' dbname=d")
	f.Fuzz(func(t *testing.T, tmpl string) {
		literal, err := parseConnURL(tmpl, false)
		if err != nil || len(literal) < minFragment {
			return
		}
		for i := 0; i < len(literal); i++ {
			c := literal[i]
			if !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' {
				return
			}
		}
		if shown := displayURL(tmpl, literal); strings.Contains(shown, literal) {
			t.Fatalf("displayURL(%q) = %q shows the password %q", tmpl, shown, literal)
		}
	})
}
