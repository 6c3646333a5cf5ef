//go:build !unix

package audit

import "os"

// openLogFile opens path for appending, creating it.
func openLogFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
}

// lockFile is a no-op where flock is not available.
func lockFile(*os.File) error { return nil }

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }
