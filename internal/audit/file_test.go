package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/coffer-dev/coffer/internal/audit"
	"github.com/google/go-cmp/cmp"
)

func TestFileDeviceWritesChainedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	d := openDevice(t, path, audit.FileOptions{})
	logPairs(t, d, 3)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	res := verifyOK(t, path, 7)
	if !res.NewChain() || res.FirstSeq != 0 || res.LastSeq != 6 {
		t.Errorf("VerifyFile = %+v, want a new chain with seq 0 to 6", res)
	}
	lines := readLines(t, path)
	var types []string
	for i, line := range lines {
		var rec struct {
			Time     string `json:"time"`
			Type     string `json:"type"`
			Seq      uint64 `json:"seq"`
			PrevHash string `json:"prev_hash"`
			Request  *struct {
				Namespace struct{ ID string } `json:"namespace"`
				Path      string              `json:"path"`
			} `json:"request"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		types = append(types, rec.Type)
		if rec.Seq != uint64(i) {
			t.Errorf("line %d: seq = %d, want %d", i+1, rec.Seq, i)
		}
		if rec.Time == "" {
			t.Errorf("line %d: no time", i+1)
		}
		if rec.Request != nil && (rec.Request.Namespace.ID != "root" || rec.Request.Path != "secret/data/app") {
			t.Errorf("line %d: request = %+v, want root namespace and path in the clear", i+1, *rec.Request)
		}
	}
	want := []string{"genesis", "request", "response", "request", "response", "request", "response"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("line types mismatch (-want +got):\n%s", diff)
	}
}

func TestFileDeviceHashesWithItsSalt(t *testing.T) {
	dir := t.TempDir()
	salt := newSalt(t)
	d1 := openDevice(t, filepath.Join(dir, "a.log"), audit.FileOptions{Salt: salt})
	d2 := openDevice(t, filepath.Join(dir, "b.log"), audit.FileOptions{})
	if !d1.Salt().Equal(salt) {
		t.Error("device does not use the salt it was given")
	}
	if d2.Salt().IsZero() || d2.Salt().Equal(salt) {
		t.Error("device without a salt did not get a fresh one")
	}
	for _, d := range []*audit.FileDevice{d1, d2} {
		logPairs(t, d, 2) // tok-0 twice per device, tok-1 twice
	}
	for _, d := range []*audit.FileDevice{d1, d2} {
		b, _ := os.ReadFile(d.Path())
		own, other := d1.Salt().Hash("tok-0"), d2.Salt().Hash("tok-0")
		if d == d2 {
			own, other = other, own
		}
		// Token in auth, request and X-Vault-Token header, in the request
		// and in the response line: 6 times.
		if n := bytes.Count(b, []byte(own)); n != 6 {
			t.Errorf("%s: hash of tok-0 under its salt appears %d times, want 6", filepath.Base(d.Path()), n)
		}
		if bytes.Contains(b, []byte(other)) {
			t.Errorf("%s: contains the other device's hash", filepath.Base(d.Path()))
		}
	}
}

func TestFileDeviceContinuesExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	salt := newSalt(t)
	d := openDevice(t, path, audit.FileOptions{Salt: salt})
	logPairs(t, d, 2)
	d.Close()

	d = openDevice(t, path, audit.FileOptions{Salt: salt})
	logPairs(t, d, 1)
	d.Close()
	res := verifyOK(t, path, 7)
	if res.LastSeq != 6 {
		t.Errorf("LastSeq = %d, want 6", res.LastSeq)
	}
	if n := bytes.Count(mustRead(t, path), []byte(`"type":"genesis"`)); n != 1 {
		t.Errorf("%d genesis lines after reopening, want 1", n)
	}
}

func TestFileDeviceRefusesCorruptTail(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.log")
	d := openDevice(t, good, audit.FileOptions{})
	logPairs(t, d, 1)
	d.Close()
	lines := readLines(t, good)
	last := lines[len(lines)-1]

	tests := []struct {
		name  string
		lines [][]byte
	}{
		{"truncated last line", append(lines[:len(lines)-1:len(lines)-1], last[:len(last)/2])},
		{"missing final newline", append(lines[:len(lines)-1:len(lines)-1], last[:len(last)-1])},
		{"garbage last line", append(lines[:len(lines):len(lines)], []byte("garbage\n"))},
		{"vault log without chain fields", [][]byte{[]byte(`{"time":"2025-01-01T00:00:00Z","type":"request"}` + "\n")}},
		{"single huge-ish line without newline", [][]byte{bytes.Repeat([]byte("x"), 10000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".log")
			writeFile(t, path, tt.lines...)
			before := mustRead(t, path)
			d, err := audit.OpenFile(path, audit.FileOptions{})
			if err == nil {
				d.Close()
				t.Fatalf("OpenFile(%s) succeeded, want ErrCorruptTail", tt.name)
			}
			if !errors.Is(err, audit.ErrCorruptTail) {
				t.Errorf("OpenFile(%s) error = %v, want ErrCorruptTail", tt.name, err)
			}
			if !bytes.Equal(before, mustRead(t, path)) {
				t.Error("OpenFile modified a file it refused")
			}
		})
	}
}

func TestFileDeviceLongLastLine(t *testing.T) {
	// The tail reader must find a line spanning many of its read chunks.
	path := filepath.Join(t.TempDir(), "audit.log")
	d := openDevice(t, path, audit.FileOptions{})
	big := sampleRequest(0, "tok", "sec")
	big.Request.Data["blob"] = strings.Repeat("x", 100_000)
	big.Request.Data["many"] = make([]any, 5000)
	if err := d.LogRequest(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = openDevice(t, path, audit.FileOptions{})
	logPairs(t, d, 1)
	d.Close()
	verifyOK(t, path, 4)
}

func TestFileDeviceReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	d := openDevice(t, path, audit.FileOptions{})
	logPairs(t, d, 2)

	t.Run("same file", func(t *testing.T) {
		if err := d.Reopen(); err != nil {
			t.Fatal(err)
		}
		logPairs(t, d, 1)
		verifyOK(t, path, 7)
	})

	t.Run("rotated", func(t *testing.T) {
		rotated := filepath.Join(dir, "audit.log.1")
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		logPairs(t, d, 1) // still goes to the renamed file until Reopen
		if err := d.Reopen(); err != nil {
			t.Fatal(err)
		}
		logPairs(t, d, 2)
		d.Close()

		old := verifyOK(t, rotated, 9)
		cur := verifyOK(t, path, 5)
		if cur.NewChain() || cur.StartHash != old.LastHash || cur.FirstSeq != old.LastSeq+1 {
			t.Errorf("rotated file starts at seq %d after %q, want seq %d after %q",
				cur.FirstSeq, cur.StartHash, old.LastSeq+1, old.LastHash)
		}
		both := append(mustRead(t, rotated), mustRead(t, path)...)
		if res, err := audit.Verify(bytes.NewReader(both)); err != nil || res.Lines != 14 {
			t.Errorf("Verify(old+new) = %v, %v, want 14 lines", res, err)
		}
		swapped := append(mustRead(t, path), mustRead(t, rotated)...)
		var ce *audit.ChainError
		if _, err := audit.Verify(bytes.NewReader(swapped)); !errors.As(err, &ce) || ce.Line != 6 {
			t.Errorf("Verify(new+old) error = %v, want a ChainError at line 6", err)
		}
	})
}

func TestFileDeviceConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	d := openDevice(t, path, audit.FileOptions{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok := fmt.Sprintf("g%d-%d", g, i)
				if err := d.LogRequest(context.Background(), sampleRequest(i, tok, tok)); err != nil {
					t.Error(err)
				}
				if err := d.LogResponse(context.Background(), sampleResponse(i, tok, tok)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	d.Close()
	verifyOK(t, path, 801)
}

func TestFileDeviceFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "audit.log")
	d := openDevice(t, path, audit.FileOptions{Fsync: true})
	logPairs(t, d, 2)
	d.Close()
	verifyOK(t, path, 5)
}

func TestFileDeviceClosed(t *testing.T) {
	d := openDevice(t, filepath.Join(t.TempDir(), "audit.log"), audit.FileOptions{})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if err := d.LogRequest(context.Background(), sampleRequest(0, "t", "s")); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("LogRequest after Close = %v, want ErrClosed", err)
	}
	if err := d.Reopen(); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Reopen after Close = %v, want ErrClosed", err)
	}
}

func TestFileDeviceRejectsBadRecords(t *testing.T) {
	d := openDevice(t, filepath.Join(t.TempDir(), "audit.log"), audit.FileOptions{})
	ctx := context.Background()
	if err := d.LogRequest(ctx, nil); err == nil {
		t.Error("LogRequest(nil) succeeded")
	}
	bad := sampleRequest(0, "t", "s")
	bad.Request.Data["c"] = make(chan int)
	if err := d.LogRequest(ctx, bad); err == nil {
		t.Error("LogRequest(unencodable data) succeeded")
	}
	if ok, why := d.Healthy(); !ok {
		t.Errorf("a record the device cannot encode made it unhealthy: %s", why)
	}
}

func TestFileDeviceSecondOpenerRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	openDevice(t, path, audit.FileOptions{})
	if d, err := audit.OpenFile(path, audit.FileOptions{}); err == nil {
		d.Close()
		t.Error("a second OpenFile of the same path succeeded, want a lock error")
	}
}

func TestFileDeviceRefusesNonRegularPaths(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	writeFile(t, target, []byte("precious\n"))
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir.log")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	fileParent := filepath.Join(target, "audit.log")

	for _, path := range []string{link, sub, fileParent} {
		if d, err := audit.OpenFile(path, audit.FileOptions{}); err == nil {
			d.Close()
			t.Errorf("OpenFile(%s) succeeded, want an error", filepath.Base(path))
		}
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o644 || !bytes.Equal(mustRead(t, target), []byte("precious\n")) {
		t.Errorf("OpenFile through a symlink touched its target (mode %v)", fi.Mode().Perm())
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A path that cannot be opened (here a directory put in place of the log,
// which fails even for root) makes Reopen and later writes fail and the
// device unhealthy, until the path is usable again.
func TestFileDeviceUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	d := openDevice(t, path, audit.FileOptions{})
	logPairs(t, d, 1)
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}

	if err := d.Reopen(); err == nil {
		t.Fatal("Reopen onto a directory succeeded")
	}
	if ok, reason := d.Healthy(); ok || !strings.Contains(reason, path) {
		t.Errorf("Healthy() = %v, %q after a failed Reopen, want false naming the path", ok, reason)
	}
	ctx := context.Background()
	if err := d.LogRequest(ctx, sampleRequest(0, "tok-x", "sec-x")); err == nil {
		t.Fatal("LogRequest with no usable file succeeded")
	} else if strings.Contains(err.Error(), "tok-x") || strings.Contains(err.Error(), "sec-x") {
		t.Errorf("LogRequest error %q quotes the record", err)
	}
	if n := d.Failures(); n != 2 {
		t.Errorf("Failures() = %d, want 2 (reopen and write)", n)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	logPairs(t, d, 1)
	if ok, reason := d.Healthy(); !ok {
		t.Errorf("Healthy() = false, %q after the path became usable", reason)
	}
	d.Close()
	old := verifyOK(t, rotated, 3)
	cur := verifyOK(t, path, 3)
	if cur.StartHash != old.LastHash {
		t.Error("the file opened after the failure does not link to the previous one")
	}
}

func TestFileDeviceLineTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	d := openDevice(t, path, audit.FileOptions{})
	huge := sampleRequest(0, "t", "s")
	huge.Request.Path = strings.Repeat("p", audit.MaxLineSize) // paths are logged in the clear
	if err := d.LogRequest(context.Background(), huge); !errors.Is(err, audit.ErrLineTooLong) {
		t.Errorf("LogRequest(oversized record) = %v, want ErrLineTooLong", err)
	}
	if ok, _ := d.Healthy(); !ok {
		t.Error("an oversized record made the device unhealthy")
	}
	logPairs(t, d, 1)
	d.Close()
	verifyOK(t, path, 3)
}
