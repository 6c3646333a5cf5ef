package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// FileOptions configures OpenFile. The zero value is the recommended
// configuration apart from the salt, which callers normally restore.
type FileOptions struct {
	// Salt keys the device's hashes. If it is zero, OpenFile generates one;
	// persist Salt() so that hashes, and sys/audit-hash, stay stable across
	// restarts.
	Salt Salt

	// Fsync makes every write wait for fsync(2) before it counts as
	// recorded, so a record survives a power loss or kernel crash, not only
	// a crash of Coffer. It costs a disk flush per request (from tens of
	// microseconds on NVMe to milliseconds elsewhere) and serializes
	// requests behind it. Off by default, like Vault's file device: a
	// record is "recorded" once write(2) has put it in the page cache.
	// Close and Reopen always fsync.
	Fsync bool
}

// FileDevice appends audit records to a file, one hash-chained JSON line
// per record (see docs/audit-format.md). It is safe for concurrent use;
// writes are serialized so the chain stays in order.
//
// The file is created with mode 0600 and missing parent directories with
// 0700, whatever the umask; an existing file is set to 0600. Opening an
// existing log continues its chain; a log whose last line is damaged is
// refused with ErrCorruptTail rather than silently restarted. On Unix the
// file is locked (flock) so two devices cannot interleave one chain.
//
// A write that fails (disk full, file gone bad) is undone as far as
// possible, reported to the caller and recorded: Healthy turns false and
// Failures grows. The device then reopens its path on the next write, and
// the first write that succeeds makes it healthy again.
type FileDevice struct {
	path  string
	salt  Salt
	fsync bool

	// sem is a one-slot semaphore guarding the fields below; unlike a
	// mutex, waiting for it honours the caller's context.
	sem     chan struct{}
	f       *os.File // nil after a failure: reopened on the next write
	size    int64    // bytes of complete lines in f
	seq     uint64   // seq of the last line written
	last    [sha256.Size]byte
	started bool // seq and last describe a chain (linking a new file)
	closed  bool

	sick bool // mirrors reason != "" without taking hmu

	failures atomic.Uint64
	hmu      sync.Mutex
	reason   string // why the device is unhealthy, "" if healthy
}

var _ Device = (*FileDevice)(nil)

// OpenFile opens (creating it if needed) the audit log at path and returns
// a device appending to it.
func OpenFile(path string, opts FileOptions) (*FileDevice, error) {
	if path == "" {
		return nil, errors.New("audit: file device needs a path")
	}
	salt := opts.Salt
	if salt.IsZero() {
		var err error
		if salt, err = NewSalt(); err != nil {
			return nil, err
		}
	}
	d := &FileDevice{
		path:  filepath.Clean(path),
		salt:  salt,
		fsync: opts.Fsync,
		sem:   make(chan struct{}, 1),
	}
	if err := d.openLocked(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path returns the path of the log file.
func (d *FileDevice) Path() string { return d.path }

// Salt returns the key the device hashes values with.
func (d *FileDevice) Salt() Salt { return d.salt }

// Healthy reports whether the last write (or reopen) succeeded, and if not,
// why. The reason names the file and the system error, never a record.
func (d *FileDevice) Healthy() (ok bool, reason string) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	return d.reason == "", d.reason
}

// Failures returns how many writes and reopens have failed since the device
// was opened. It only grows, so it suits a metrics counter.
func (d *FileDevice) Failures() uint64 { return d.failures.Load() }

// LogRequest hashes r and appends it to the log. ctx bounds only the wait
// for other writers: a record whose write has started is written.
func (d *FileDevice) LogRequest(ctx context.Context, r *Request) error {
	if r == nil {
		return errors.New("audit: nil request record")
	}
	e := getEncoder(d.salt)
	defer e.release()
	if err := e.request(r, time.Now()); err != nil {
		return err
	}
	return d.append(ctx, e)
}

// LogResponse hashes r and appends it to the log, as LogRequest.
func (d *FileDevice) LogResponse(ctx context.Context, r *Response) error {
	if r == nil {
		return errors.New("audit: nil response record")
	}
	e := getEncoder(d.salt)
	defer e.release()
	if err := e.response(r, time.Now()); err != nil {
		return err
	}
	return d.append(ctx, e)
}

// Reopen closes the file and opens the device's path again, for log
// rotation (SIGHUP) after the old file was renamed. If the path is now
// empty or missing, the new file starts with a genesis line that links to
// the last line of the old one; if it holds a log, its chain is continued.
// If opening fails, the device is unhealthy and retries on each write.
func (d *FileDevice) Reopen() error {
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	if d.closed {
		return ErrClosed
	}
	closeErr := d.closeFileLocked()
	if err := d.openLocked(); err != nil {
		d.fail(err)
		return errors.Join(closeErr, err)
	}
	d.heal()
	return closeErr
}

// Close syncs and closes the file. Later writes return ErrClosed.
func (d *FileDevice) Close() error {
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	if d.closed {
		return nil
	}
	d.closed = true
	return d.closeFileLocked()
}

// append writes the line body in e, chained to the previous line.
func (d *FileDevice) append(ctx context.Context, e *encoder) error {
	if len(e.b) > MaxLineSize-chainFieldsMax {
		return ErrLineTooLong
	}
	select {
	case d.sem <- struct{}{}:
	default:
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("audit: waiting for %s: %w", d.path, ctx.Err())
		}
	}
	defer func() { <-d.sem }()
	if d.closed {
		return ErrClosed
	}
	if d.f == nil {
		if err := d.openLocked(); err != nil {
			d.fail(err)
			return err
		}
	}
	if err := d.writeLocked(e, d.seq+1, d.last); err != nil {
		d.fail(err)
		return err
	}
	d.heal()
	return nil
}

// writeLocked appends the body in e as the line numbered seq, chained to
// prev.
func (d *FileDevice) writeLocked(e *encoder, seq uint64, prev [sha256.Size]byte) error {
	line := appendChain(e.b, seq, &prev)
	sum := sha256.Sum256(line)
	line = append(line, '\n')
	e.b = line
	n, err := d.f.Write(line) // one write(2) for a regular file
	if err != nil {
		d.discardLocked(n)
		return fmt.Errorf("audit: %w", err)
	}
	d.size += int64(n)
	d.seq, d.last, d.started = seq, sum, true
	if d.fsync {
		if err := d.f.Sync(); err != nil {
			// The line may or may not survive; after a failed fsync the
			// kernel's view of the file cannot be trusted, so reopen it
			// (which rereads the tail) before the next write.
			d.dropFileLocked()
			return fmt.Errorf("audit: %w", err)
		}
	}
	return nil
}

// discardLocked undoes a failed write of which n bytes may have landed,
// and drops the file so the next write reopens it and checks its tail. If a
// partial line cannot be cut off, that check refuses the file and the
// device stays unhealthy until an operator repairs it.
func (d *FileDevice) discardLocked(n int) {
	if n > 0 {
		_ = d.f.Truncate(d.size) // best effort: the reopen checks the result
	}
	d.dropFileLocked()
}

func (d *FileDevice) dropFileLocked() {
	_ = d.f.Close() // the file has already failed us; its error adds nothing
	d.f = nil
}

func (d *FileDevice) closeFileLocked() error {
	if d.f == nil {
		return nil
	}
	syncErr := d.f.Sync()
	closeErr := d.f.Close()
	d.f = nil
	if err := errors.Join(syncErr, closeErr); err != nil {
		return fmt.Errorf("audit: close %s: %w", d.path, err)
	}
	return nil
}

// openLocked opens d.path and positions the chain at its end, writing a
// genesis line into an empty file.
func (d *FileDevice) openLocked() error {
	if err := mkdirAll0700(filepath.Dir(d.path)); err != nil {
		return fmt.Errorf("audit: create directory for %s: %w", d.path, err)
	}
	f, err := openLogFile(d.path)
	if err != nil {
		return fmt.Errorf("audit: open log: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if err := lockFile(f); err != nil {
		return fmt.Errorf("audit: lock %s (is another audit device or process using it?): %w", d.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: open log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("audit: open log %s: not a regular file", d.path)
	}
	// O_CREATE's mode went through the umask, and an existing file keeps
	// whatever it had: set it outright.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("audit: open log: %w", err)
	}

	if fi.Size() == 0 {
		seq, prev := uint64(0), genesisHash()
		if d.started { // rotation: link the new file to the old one
			seq, prev = d.seq+1, d.last
		}
		d.f, d.size = f, 0
		e := getEncoder(d.salt)
		e.genesis(time.Now())
		err := d.writeLocked(e, seq, prev)
		e.release()
		if err != nil {
			d.f = nil
			return err
		}
		if d.fsync {
			if err := syncDir(filepath.Dir(d.path)); err != nil {
				d.f = nil
				return fmt.Errorf("audit: sync directory of %s: %w", d.path, err)
			}
		}
		ok = true
		return nil
	}

	line, reason, err := readLastLine(f, fi.Size())
	if err != nil {
		return fmt.Errorf("audit: read end of %s: %w", d.path, err)
	}
	var fields chainFields
	if reason == "" {
		fields, reason = parseLine(line)
	}
	if reason != "" {
		return fmt.Errorf("%w: %s: %s", ErrCorruptTail, d.path, reason)
	}
	d.f, d.size = f, fi.Size()
	d.seq, d.last, d.started = *fields.Seq, sha256.Sum256(line), true
	ok = true
	return nil
}

// readLastLine returns the last line of f, which is size bytes long,
// without its newline, reading backwards in growing chunks. If the file
// does not end in a complete line of at most MaxLineSize bytes, it returns
// why in corrupt.
func readLastLine(f *os.File, size int64) (line []byte, corrupt string, err error) {
	var tail []byte // the bytes from pos to the end of the file
	pos, chunk := size, int64(4096)
	for pos > 0 {
		n := min(chunk, pos)
		b := make([]byte, n, n+int64(len(tail)))
		if _, err := f.ReadAt(b, pos-n); err != nil {
			return nil, "", err
		}
		search := b
		if pos == size {
			if b[n-1] != '\n' {
				return nil, reasonNoNewline, nil
			}
			search = b[:n-1]
		}
		b = append(b, tail...)
		if i := bytes.LastIndexByte(search, '\n'); i >= 0 {
			return b[i+1 : len(b)-1], "", nil
		}
		tail, pos = b, pos-n
		if len(tail) > MaxLineSize+1 {
			return nil, reasonTooLong, nil
		}
		chunk *= 2
	}
	return tail[:len(tail)-1], "", nil
}

// mkdirAll0700 creates dir and its missing parents with mode 0700, whatever
// the umask. Directories that already exist are left alone.
func mkdirAll0700(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll0700(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // created concurrently: not ours to chmod
		}
		return err
	}
	return os.Chmod(dir, 0o700)
}

// fail and heal are called with sem held.
func (d *FileDevice) fail(err error) {
	d.failures.Add(1)
	d.sick = true
	d.hmu.Lock()
	d.reason = err.Error()
	d.hmu.Unlock()
}

func (d *FileDevice) heal() {
	if !d.sick {
		return
	}
	d.sick = false
	d.hmu.Lock()
	d.reason = ""
	d.hmu.Unlock()
}
