// Package cidr parses the CIDR block lists auth methods bind logins to
// (approle's secret_id_bound_cidrs and cidr_list) and checks a caller's
// address against them.
//
// A list is given as a JSON array or a comma-separated string, as Vault
// accepts. Each entry is a CIDR block ("10.0.0.0/8", "2001:db8::/32") or a
// single address, which means that address alone (/32 or /128). Blocks are
// stored in canonical form (host bits cleared). The parser is fed
// untrusted input: it bounds the number and length of entries and its errors
// quote at most one short entry.
//
// Checks fail closed: an address that cannot be parsed is outside every
// non-empty list. IPv4-mapped IPv6 addresses are compared as IPv4.
//
// This package must not import core, server or any engine.
package cidr

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxEntries bounds the number of blocks in one list.
const MaxEntries = 256

// maxEntryLen bounds one entry; the longest valid IPv6 CIDR is well below.
const maxEntryLen = 64

// List is a parsed list of CIDR blocks. The zero value is the empty list,
// which binds nothing.
type List []netip.Prefix

// Parse parses entries (already split) into a List. Empty entries are
// skipped; duplicates are kept once.
func Parse(entries []string) (List, error) {
	if len(entries) > MaxEntries {
		return nil, &ParseError{Reason: fmt.Sprintf("more than %d entries", MaxEntries)}
	}
	out := make(List, 0, len(entries))
	seen := map[netip.Prefix]bool{}
	for _, raw := range entries {
		s := strings.TrimSpace(raw)
		if s == "" {
			continue
		}
		p, err := parseOne(s)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// ParseString parses a comma-separated list.
func ParseString(s string) (List, error) {
	if strings.TrimSpace(s) == "" {
		return List{}, nil
	}
	if strings.Count(s, ",") >= MaxEntries {
		return nil, &ParseError{Reason: fmt.Sprintf("more than %d entries", MaxEntries)}
	}
	return Parse(strings.Split(s, ","))
}

func parseOne(s string) (netip.Prefix, error) {
	if len(s) > maxEntryLen {
		return netip.Prefix{}, &ParseError{Entry: s[:16] + "...", Reason: "too long"}
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, &ParseError{Entry: s, Reason: "not a CIDR block"}
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, &ParseError{Entry: s, Reason: "zones are not allowed"}
		}
		return canonical(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, &ParseError{Entry: s, Reason: "not an IP address or CIDR block"}
	}
	if a.Zone() != "" {
		return netip.Prefix{}, &ParseError{Entry: s, Reason: "zones are not allowed"}
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// canonical clears host bits and turns an IPv4-mapped IPv6 block into the
// IPv4 block it covers.
func canonical(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// Strings renders the list as Vault shows it.
func (l List) Strings() []string {
	out := make([]string, len(l))
	for i, p := range l {
		out[i] = p.String()
	}
	return out
}

// Contains reports whether addr is in one of the blocks.
func (l List) Contains(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, p := range l {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// AllowsRemote reports whether a caller at remoteAddr ("host:port", or a
// bare address) may log in under l. An empty list allows everyone; a
// non-empty list refuses an address it cannot parse.
func (l List) AllowsRemote(remoteAddr string) bool {
	if len(l) == 0 {
		return true
	}
	a, ok := RemoteIP(remoteAddr)
	return ok && l.Contains(a)
}

// RemoteIP extracts the IP of a "host:port" or bare-address string.
func RemoteIP(remoteAddr string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(remoteAddr, "[]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// SubsetOf reports whether every block of l lies inside some block of
// outer. Every list is a subset of an empty outer list (no restriction).
func (l List) SubsetOf(outer List) bool {
	if len(outer) == 0 {
		return true
	}
	for _, p := range l {
		inside := false
		for _, o := range outer {
			if o.Addr().Is4() == p.Addr().Is4() && o.Bits() <= p.Bits() && o.Contains(p.Addr()) {
				inside = true
				break
			}
		}
		if !inside {
			return false
		}
	}
	return true
}
