//go:build unix

package audit

import (
	"os"
	"syscall"
)

// openLogFile opens path for appending, creating it. O_NOFOLLOW keeps a
// symlink planted at the path from redirecting the log (and the chmod that
// follows) to another file; O_NONBLOCK keeps a FIFO planted there from
// blocking the open until a reader appears (the caller then refuses it as
// not a regular file). O_RDWR lets the tail be read to continue the chain.
func openLogFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
}

// lockFile takes an exclusive advisory lock on f, failing at once if
// another open file description holds it.
func lockFile(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lockErr error
	err = rc.Control(func(fd uintptr) {
		lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	})
	if err != nil {
		return err
	}
	return lockErr
}

// syncDir makes a new directory entry in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
