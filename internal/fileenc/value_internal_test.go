package fileenc

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseEncValue(t *testing.T) {
	good := "ENC[AES256_GCM,data:1AFI2CY=,iv:qajpmfLpFfiDQCOTp8CeDuGmqsYMSaOdVaQkyQIo8CM=,tag:fBm4wd1me0fqDhRQWoHbUQ==,type:str]"
	if _, err := parseEncValue(good); err != nil {
		t.Fatalf("parseEncValue(good) = %v", err)
	}
	bad := map[string]string{
		"no prefix":     "ENX[AES256_GCM,data:1AFI2CY=,iv:qajpmfLpFfiDQCOTp8CeDuGmqsYMSaOdVaQkyQIo8CM=,tag:fBm4wd1me0fqDhRQWoHbUQ==,type:str]",
		"fields order":  "ENC[AES256_GCM,iv:qajpmfLpFfiDQCOTp8CeDuGmqsYMSaOdVaQkyQIo8CM=,data:1AFI2CY=,tag:fBm4wd1me0fqDhRQWoHbUQ==,type:str]",
		"unknown type":  strings.Replace(good, "type:str", "type:xml", 1),
		"bad base64":    strings.Replace(good, "data:1AFI2CY=", "data:1AFI2CY", 1),
		"short iv":      strings.Replace(good, "iv:qajpmfLpFfiDQCOTp8CeDuGmqsYMSaOdVaQkyQIo8CM=", "iv:qajpmfLpFfiDQCOT", 1),
		"short tag":     strings.Replace(good, "tag:fBm4wd1me0fqDhRQWoHbUQ==", "tag:fBm4", 1),
		"no close":      strings.TrimSuffix(good, "]"),
		"extra field":   strings.Replace(good, ",type:str]", ",type:str,x:y]", 1),
		"missing field": "ENC[AES256_GCM,data:1AFI2CY=,iv:qajpmfLpFfiDQCOTp8CeDuGmqsYMSaOdVaQkyQIo8CM=,type:str]",
	}
	for name, s := range bad {
		var pe *ParseError
		if _, err := parseEncValue(s); !errors.As(err, &pe) {
			t.Errorf("%s: parseEncValue(%q) = %v, want a ParseError", name, s, err)
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	c, err := newDataCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, v := range []any{"text", "", int64(-42), uint64(math.MaxUint64), 3.14, 1e20, true, false, when, Comment{Value: " a comment"}} {
		enc, err := c.encrypt(v, "a:b:")
		if err != nil {
			t.Fatalf("encrypt(%v): %v", v, err)
		}
		if v == "" {
			if enc != "" {
				t.Errorf("empty string encrypted to %q, want it left empty", enc)
			}
			continue
		}
		got, err := c.decrypt(enc.(string), "a:b:")
		if err != nil {
			t.Fatalf("decrypt(%v): %v", v, err)
		}
		if !cmp.Equal(got, v) {
			t.Errorf("round trip %v (%T) = %v (%T)", v, v, got, got)
		}
		if _, err := c.decrypt(enc.(string), "a:c:"); !errors.Is(err, ErrAuth) {
			t.Errorf("decrypt under another path = %v, want ErrAuth", err)
		}
	}
}

func TestPlainBytes(t *testing.T) {
	tests := []struct {
		v        any
		want     string
		wantType string
	}{
		{true, "True", "bool"},
		{false, "False", "bool"},
		{1e20, "100000000000000000000", "float"},
		{3.0, "3", "float"},
		{0.1, "0.1", "float"},
		{int64(7), "7", "int"},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), "2024-01-02T03:04:05+01:00", "time"},
	}
	for _, tc := range tests {
		b, typ, err := plainBytes(tc.v)
		if err != nil || string(b) != tc.want || typ != tc.wantType {
			t.Errorf("plainBytes(%v) = %q, %q, %v; want %q, %q", tc.v, b, typ, err, tc.want, tc.wantType)
		}
	}
}

func TestFlattenMetadata(t *testing.T) {
	md := &Metadata{
		LastModified: "2024-01-01T00:00:00Z", MAC: "ENC[x]", Version: SopsVersion, ShamirThreshold: 2,
		Selectors: Selectors{UnencryptedSuffix: "_unencrypted"},
		KeyGroups: []KeyGroup{
			{Age: []AgeKey{{Recipient: "age1a", Enc: "-----BEGIN\nx\n-----END\n"}}},
			{Vault: []VaultKey{{VaultAddress: "http://v", EnginePath: "transit", KeyName: "k", CreatedAt: "t", Enc: "vault:v1:x"}}},
		},
	}
	flat := flattenMetadata(md.node())
	wantKeys := []string{"key_groups__list_0__map_age__list_0__map_enc", "key_groups__list_1__map_hc_vault__list_0__map_vault_address", "shamir_threshold"}
	have := map[string]bool{}
	for _, kv := range flat {
		have[kv[0]] = true
	}
	for _, k := range wantKeys {
		if !have[k] {
			t.Errorf("flattened metadata lacks %q: %v", k, flat)
		}
	}
	n, err := unflattenMetadata(flat)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseMetadata(n)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(md, back, cmp.AllowUnexported(Metadata{}, KeyGroup{})); diff != "" {
		t.Errorf("flatten/unflatten round trip (-want +got):\n%s", diff)
	}
}

func TestParentAAD(t *testing.T) {
	for in, want := range map[string]string{"a:b:": "a:", "a:": ":", ":": ":"} {
		if got := parentAAD(in); got != want {
			t.Errorf("parentAAD(%q) = %q, want %q", in, got, want)
		}
	}
}
