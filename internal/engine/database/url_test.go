package database

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestConnString: whatever the username and password hold, the driver
// reads back exactly them from the rendered URL or keyword/value string.
func TestConnString(t *testing.T) {
	creds := [][2]string{
		{"admin", "simple"},
		{"us@er:x", `p@ss:w/o?r#d%20&x=y +'"\`},
		{"ünï", "päss wörd"},
	}
	templates := []string{
		"postgresql://{{username}}:{{password}}@127.0.0.1:5432/db?sslmode=disable",
		"postgres://127.0.0.1/db?user={{username}}&password={{password}}",
		"host=127.0.0.1 port=5432 dbname=db user={{username}} password={{password}} sslmode=disable",
	}
	for _, tmpl := range templates {
		for _, c := range creds {
			cfg, err := pgx.ParseConfig(connString(tmpl, c[0], c[1], false))
			if err != nil {
				t.Fatalf("ParseConfig(connString(%q, %q)) = %v", tmpl, c[0], err)
			}
			if cfg.User != c[0] || cfg.Password != c[1] {
				t.Errorf("connString(%q, %q, %q) parses as user %q password %q", tmpl, c[0], c[1], cfg.User, cfg.Password)
			}
		}
	}
	if got := connString("postgresql://{{username}}:{{password}}@h/db", "u", "p w", true); got != "postgresql://u:p w@h/db" {
		t.Fatalf("connString with disable_escaping = %q", got)
	}
}

func TestParseConnURL(t *testing.T) {
	for tmpl, wantLiteral := range map[string]string{
		"postgresql://{{username}}:{{password}}@127.0.0.1/db":                   "",
		"postgresql://admin:s3cret@127.0.0.1/db":                                "s3cret",
		"host=127.0.0.1 user={{username}} password={{password}} dbname=db":      "",
		"host=127.0.0.1 user=admin password='lit eral' dbname=db":               "lit eral",
		"postgresql://{{username}}@127.0.0.1/db?password=q%40s&sslmode=disable": "q@s",
	} {
		got, err := parseConnURL(tmpl, false)
		if err != nil || got != wantLiteral {
			t.Errorf("parseConnURL(%q) = %q, %v; want %q", tmpl, got, err, wantLiteral)
		}
	}
	for _, bad := range []string{"", "postgresql://[::1", "host='unterminated", strings.Repeat("x", maxURLLen+1)} {
		_, err := parseConnURL(bad, false)
		if err == nil {
			t.Errorf("parseConnURL(%.40q) = nil error", bad)
			continue
		}
		if strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("parseConnURL error quotes the URL: %v", err)
		}
	}
}

func TestDisplayURL(t *testing.T) {
	for tmpl, want := range map[string]string{
		"postgresql://{{username}}:{{password}}@127.0.0.1:5432/db?sslmode=disable": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/db?sslmode=disable",
		"postgresql://admin:s3cret@127.0.0.1/db":                                   "postgresql://admin:*****@127.0.0.1/db",
		"postgres://h/db?password=s3cret&user=a":                                   "postgres://h/db?password=*****&user=a",
		"host=h user=a password=s3cret dbname=d":                                   "host=h user=a password=***** dbname=d",
		"host=h user=a password='s3 cret' dbname=d":                                "host=h user=a password=***** dbname=d",
		"host=h user={{username}} password={{password}}":                           "host=h user={{username}} password={{password}}",
	} {
		literal, err := parseConnURL(tmpl, false)
		if err != nil {
			t.Fatalf("parseConnURL(%q) = %v", tmpl, err)
		}
		if got := displayURL(tmpl, literal); got != want {
			t.Errorf("displayURL(%q) = %q, want %q", tmpl, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	const pw = `Pa55:w/o@rd 'x'`
	msgs := []string{
		"failed: password " + pw + " refused",
		"cannot parse `postgresql://u:" + escapeURLPart(pw) + "@h/db`",
		"host=h password=" + quoteDSNValue(pw),
		`trailing junk after numeric literal at or near "55:w/o"`,
	}
	for _, m := range msgs {
		got := redact(m, pw)
		if strings.Contains(got, "55:w") || strings.Contains(got, "o@rd") || !strings.Contains(got, redactedMark) {
			t.Errorf("redact(%q) = %q", m, got)
		}
	}
	if got := redact("connection refused to 127.0.0.1:5432", "Zq9-xK2m", ""); got != "connection refused to 127.0.0.1:5432" {
		t.Errorf("redact changed a message without secrets: %q", got)
	}
	if got := redact("near \"abc\"", "xabcx"); got != "near \"abc\"" {
		t.Errorf("a 3-byte piece of a secret was redacted: %q", got)
	}
}
