package cidr

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  string
	}{
		{"empty", "", []string{}, ""},
		{"spaces only", "  ", []string{}, ""},
		{"one block", "10.0.0.0/8", []string{"10.0.0.0/8"}, ""},
		{"host bits cleared", "10.1.2.3/8", []string{"10.0.0.0/8"}, ""},
		{"single v4 address", "127.0.0.1", []string{"127.0.0.1/32"}, ""},
		{"single v6 address", "::1", []string{"::1/128"}, ""},
		{"v6 block", "2001:db8::1/32", []string{"2001:db8::/32"}, ""},
		{"mapped v4 address", "::ffff:10.0.0.1", []string{"10.0.0.1/32"}, ""},
		{"mapped v4 block", "::ffff:10.0.0.0/104", []string{"10.0.0.0/8"}, ""},
		{"list with spaces and empties", " 10.0.0.0/8 , ,192.168.0.0/16,", []string{"10.0.0.0/8", "192.168.0.0/16"}, ""},
		{"duplicates kept once", "10.0.0.0/8,10.9.9.9/8", []string{"10.0.0.0/8"}, ""},
		{"bad block", "10.0.0.0/33", nil, `invalid CIDR block "10.0.0.0/33": not a CIDR block`},
		{"hostname", "example.com", nil, `invalid CIDR block "example.com": not an IP address or CIDR block`},
		{"zone", "fe80::1%eth0", nil, "zones are not allowed"},
		{"too long", strings.Repeat("1", 100), nil, "too long"},
		{"too many", strings.Repeat("10.0.0.1,", MaxEntries+1), nil, "more than 256 entries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseString(tc.in)
			if tc.err != "" {
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseString(%q) error = %v, want *ParseError containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseString(%q) = %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, l.Strings()); diff != "" {
				t.Errorf("ParseString(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestAllowsRemote(t *testing.T) {
	l, err := ParseString("10.0.0.0/8,2001:db8::/32,127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.2.3.4:5555", true},
		{"10.2.3.4", true},
		{"11.0.0.1:80", false},
		{"127.0.0.1:1", true},
		{"127.0.0.2:1", false},
		{"[2001:db8::5]:443", true},
		{"[2001:db9::5]:443", false},
		{"[::ffff:10.0.0.9]:80", true},
		{"[fe80::1%eth0]:80", false},
		{"", false},
		{"garbage", false},
		{"10.0.0.1:notaport", false},
	}
	for _, tc := range tests {
		if got := l.AllowsRemote(tc.addr); got != tc.want {
			t.Errorf("AllowsRemote(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if !(List{}).AllowsRemote("garbage") {
		t.Errorf("empty list AllowsRemote(garbage) = false, want true (no restriction)")
	}
}

func TestSubsetOf(t *testing.T) {
	outer, _ := ParseString("10.0.0.0/8,192.168.1.0/24")
	tests := []struct {
		in   string
		want bool
	}{
		{"10.1.0.0/16", true},
		{"10.0.0.0/8", true},
		{"10.0.0.5", true},
		{"192.168.1.7,10.9.0.0/16", true},
		{"192.168.0.0/16", false},
		{"0.0.0.0/0", false},
		{"11.0.0.1", false},
		{"::ffff:10.0.0.1", true},
		{"::/0", false},
	}
	for _, tc := range tests {
		l, err := ParseString(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.SubsetOf(outer); got != tc.want {
			t.Errorf("ParseString(%q).SubsetOf(%v) = %v, want %v", tc.in, outer.Strings(), got, tc.want)
		}
	}
	all, _ := ParseString("0.0.0.0/0")
	if !all.SubsetOf(nil) {
		t.Errorf("SubsetOf(empty) = false, want true")
	}
}

func TestContainsIgnoresZone(t *testing.T) {
	l, _ := ParseString("fe80::/10")
	if !l.Contains(netip.MustParseAddr("fe80::1%eth0")) {
		t.Errorf("Contains(fe80::1%%eth0) = false, want true")
	}
}
