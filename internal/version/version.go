// Package version reports the build's version, set at link time with
// -ldflags "-X github.com/coffer-dev/coffer/internal/version.Version=...".
package version

import "runtime/debug"

// Set by the linker for release builds.
var (
	Version   = "0.1.0-dev"
	BuildDate = ""
)

// Revision returns the VCS revision the binary was built from, if known.
func Revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
