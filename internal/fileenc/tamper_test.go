package fileenc_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/coffer-dev/coffer/internal/fileenc"
)

var encRe = regexp.MustCompile(`ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),type:([a-z]+)\]`)

// encOf returns the ENC[...] string on the line that starts with prefix.
func encOf(t *testing.T, file, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(file, "\n") {
		if strings.HasPrefix(l, prefix) {
			if m := encRe.FindString(l); m != "" {
				return m
			}
		}
	}
	t.Fatalf("no ENC value on a line starting with %q", prefix)
	return ""
}

func flipData(enc string) string {
	m := encRe.FindStringSubmatch(enc)
	data := []byte(m[1])
	// Change one base64 character of the ciphertext to another valid one.
	if data[0] == 'A' {
		data[0] = 'B'
	} else {
		data[0] = 'A'
	}
	return strings.Replace(enc, "data:"+m[1], "data:"+string(data), 1)
}

func TestTamper(t *testing.T) {
	k := loadTestKey(t, 1)
	plain := "db:\n    user: admin\n    password: hunter2\nport: 5432\nnote_unencrypted: hello\n"
	enc := string(cofferEncrypt(t, plain, fileenc.FormatYAML, ageOpts(k)))
	keys := keysFor(k)
	if got := cofferDecrypt(t, []byte(enc), fileenc.FormatYAML, keys); got != plain {
		t.Fatalf("untampered decrypt = %q", got)
	}
	pw := encOf(t, enc, "    password:")
	user := encOf(t, enc, "    user:")
	mac := encOf(t, enc, "    mac:")
	lastmod := regexp.MustCompile(`lastmodified: "([^"]+)"`).FindStringSubmatch(enc)[1]

	tests := []struct {
		name     string
		edit     func(string) string
		wantIs   error
		wantText string
	}{
		{"flipped value", func(s string) string { return strings.Replace(s, pw, flipData(pw), 1) }, fileenc.ErrAuth, `["db"]["password"]`},
		{"swapped values", func(s string) string {
			s = strings.Replace(s, pw, "@@", 1)
			s = strings.Replace(s, user, pw, 1)
			return strings.Replace(s, "@@", user, 1)
		}, fileenc.ErrAuth, `["db"]["user"]`},
		{"value moved to another key", func(s string) string { return strings.Replace(s, "    password:", "    passwd:", 1) }, fileenc.ErrAuth, `["db"]["passwd"]`},
		{"type changed", func(s string) string {
			return strings.Replace(s, pw, strings.Replace(pw, "type:str", "type:int", 1), 1)
		}, nil, `["db"]["password"]`},
		{"unknown type", func(s string) string {
			return strings.Replace(s, pw, strings.Replace(pw, "type:str", "type:xml", 1), 1)
		}, nil, "unknown type"},
		{"malformed ENC", func(s string) string { return strings.Replace(s, pw, strings.Replace(pw, ",iv:", ",vi:", 1), 1) }, nil, `["db"]["password"]`},
		{"short iv", func(s string) string {
			return strings.Replace(s, pw, encRe.ReplaceAllString(pw, "ENC[AES256_GCM,data:${1},iv:AAAA,tag:${3},type:${4}]"), 1)
		}, nil, "iv must be 32 bytes"},
		{"value in clear text", func(s string) string { return strings.Replace(s, pw, "hunter3", 1) }, fileenc.ErrNotEncryptedValue, `["db"]["password"]`},
		{"value removed", func(s string) string { return strings.Replace(s, "    user: "+user+"\n", "", 1) }, fileenc.ErrMACMismatch, "MAC mismatch"},
		{"unencrypted value changed", func(s string) string {
			return strings.Replace(s, "note_unencrypted: hello", "note_unencrypted: bye", 1)
		}, fileenc.ErrMACMismatch, "MAC mismatch"},
		{"value added in clear", func(s string) string { return strings.Replace(s, "port:", "extra_unencrypted: x\nport:", 1) }, fileenc.ErrMACMismatch, "MAC mismatch"},
		{"mac flipped", func(s string) string { return strings.Replace(s, mac, flipData(mac), 1) }, fileenc.ErrAuth, "sops metadata"},
		{"lastmodified changed", func(s string) string { return strings.Replace(s, lastmod, "2020-01-01T00:00:00Z", 1) }, fileenc.ErrAuth, "sops metadata"},
		{"mac removed", func(s string) string { return regexp.MustCompile(`(?m)^    mac: .*\n`).ReplaceAllString(s, "") }, nil, "mac is missing"},
		{"age enc damaged", func(s string) string {
			return regexp.MustCompile(`(?m)^(            )YWdl`).ReplaceAllString(s, "${1}XWdl")
		}, fileenc.ErrNoKey, k.recipient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tampered := tc.edit(enc)
			if tampered == enc {
				t.Fatal("edit changed nothing")
			}
			out, err := decrypt([]byte(tampered), fileenc.FormatYAML, keys)
			if err == nil {
				t.Fatalf("decrypt succeeded on a tampered file:\n%s", out)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error = %v, want %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not mention %q", err, tc.wantText)
			}
			for _, secret := range []string{"hunter2", "admin"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret value", err)
				}
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	k1, k2 := loadTestKey(t, 1), loadTestKey(t, 2)
	enc := cofferEncrypt(t, "a: 1\n", fileenc.FormatYAML, ageOpts(k1))
	_, err := decrypt(enc, fileenc.FormatYAML, keysFor(k2))
	if !errors.Is(err, fileenc.ErrNoKey) || !strings.Contains(err.Error(), k1.recipient) {
		t.Errorf("decrypt with the wrong key: %v, want ErrNoKey naming %s", err, k1.recipient)
	}
	_, err = decrypt(enc, fileenc.FormatYAML, &fileenc.Keys{})
	if !errors.Is(err, fileenc.ErrNoKey) || !strings.Contains(err.Error(), "no age identity") {
		t.Errorf("decrypt without identities: %v", err)
	}
}

func TestMACOnlyEncryptedAllowsClearEdits(t *testing.T) {
	k := loadTestKey(t, 1)
	opts := ageOpts(k)
	opts.Selectors = fileenc.Selectors{EncryptedRegex: "^password$", MACOnlyEncrypted: true}
	enc := string(cofferEncrypt(t, "password: s3cret\nreplicas: 2\n", fileenc.FormatYAML, opts))
	edited := strings.Replace(enc, "replicas: 2", "replicas: 3", 1)
	got := cofferDecrypt(t, []byte(edited), fileenc.FormatYAML, keysFor(k))
	if got != "password: s3cret\nreplicas: 3\n" {
		t.Errorf("decrypt after a clear-text edit = %q", got)
	}
}
