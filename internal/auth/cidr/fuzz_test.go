package cidr

import (
	"errors"
	"testing"
)

// FuzzParseString feeds arbitrary strings to the list parser: no panics,
// only *ParseError failures, every accepted block is canonical and
// re-parses to itself, and a block's own address is inside the list.
func FuzzParseString(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8", "127.0.0.1", "::1", "2001:db8::/32,10.0.0.0/8", "::ffff:10.0.0.0/104",
		"10.0.0.0/33", "fe80::1%eth0", " , ,", "1.2.3.4/0", "", "1.2.3", "::ffff:1.2.3.4/95",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseString(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseString(%q) error %T %v, want *ParseError", s, err, err)
			}
			if len(pe.Entry) > maxEntryLen {
				t.Fatalf("ParseString(%q) error quotes %d bytes", s, len(pe.Entry))
			}
			return
		}
		if len(l) > MaxEntries {
			t.Fatalf("ParseString(%q) returned %d entries", s, len(l))
		}
		again, err := Parse(l.Strings())
		if err != nil {
			t.Fatalf("Parse(%q) of accepted output: %v", l.Strings(), err)
		}
		for i := range l {
			if again[i] != l[i] || l[i] != l[i].Masked() {
				t.Fatalf("ParseString(%q)[%d] = %v, not canonical (re-parsed %v)", s, i, l[i], again[i])
			}
			if !l.Contains(l[i].Addr()) {
				t.Fatalf("list %v does not contain its own block's address %v", l.Strings(), l[i].Addr())
			}
		}
		if !l.SubsetOf(l) {
			t.Fatalf("list %v is not a subset of itself", l.Strings())
		}
	})
}
