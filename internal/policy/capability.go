package policy

import "strings"

// Capability is a set of policy capabilities. The zero value grants nothing.
type Capability uint16

// The capabilities of the policy language, declared in the order Vault's
// documentation lists them; Names reports them in this order.
const (
	Create Capability = 1 << iota
	Read
	Update
	Patch
	Delete
	List
	Sudo
	// Deny forbids everything on the paths its rule wins, whatever else the
	// rule or other policies grant for the same pattern.
	Deny
)

// allCapabilities is what the root policy holds: everything but Deny.
const allCapabilities = Create | Read | Update | Patch | Delete | List | Sudo

var capabilityNames = [...]struct {
	c    Capability
	name string
}{
	{Create, "create"},
	{Read, "read"},
	{Update, "update"},
	{Patch, "patch"},
	{Delete, "delete"},
	{List, "list"},
	{Sudo, "sudo"},
	{Deny, "deny"},
}

// ParseCapability returns the capability named s ("read", "sudo", ...).
func ParseCapability(s string) (Capability, bool) {
	for _, cn := range capabilityNames {
		if cn.name == s {
			return cn.c, true
		}
	}
	return 0, false
}

// Has reports whether c holds every capability in want.
func (c Capability) Has(want Capability) bool { return c&want == want }

// Names returns the names of the capabilities in c, in the order create,
// read, update, patch, delete, list, sudo, deny.
func (c Capability) Names() []string {
	var names []string
	for _, cn := range capabilityNames {
		if c&cn.c != 0 {
			names = append(names, cn.name)
		}
	}
	return names
}

// String returns the names in c joined by commas, or "none".
func (c Capability) String() string {
	if c == 0 {
		return "none"
	}
	return strings.Join(c.Names(), ",")
}
