package audit_test

import (
	"context"
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

// fakeDevice counts what it records, or fails with err.
type fakeDevice struct {
	mu    sync.Mutex
	err   error
	count int
}

func (f *fakeDevice) LogRequest(context.Context, *audit.Request) error   { return f.log() }
func (f *fakeDevice) LogResponse(context.Context, *audit.Response) error { return f.log() }

func (f *fakeDevice) log() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.count++
	return nil
}

func (f *fakeDevice) recorded() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

var (
	errDiskA = errors.New("disk a failed")
	errDiskB = errors.New("disk b failed")
)

func TestBrokerNoDevices(t *testing.T) {
	var b audit.Broker
	if b.Enabled() {
		t.Error("zero Broker: Enabled() = true")
	}
	if err := b.LogRequest(context.Background(), sampleRequest(0, "t", "s")); err != nil {
		t.Errorf("LogRequest with auditing off = %v, want nil", err)
	}
	if err := b.LogResponse(context.Background(), sampleResponse(0, "t", "s")); err != nil {
		t.Errorf("LogResponse with auditing off = %v, want nil", err)
	}
}

func TestBrokerFailsClosed(t *testing.T) {
	tests := []struct {
		name     string
		errs     []error // one device per entry; nil is healthy
		wantErrs []error // nil: success
	}{
		{"one healthy", []error{nil}, nil},
		{"one failing", []error{errDiskA}, []error{audit.ErrNoDeviceRecorded, errDiskA}},
		{"failing and healthy", []error{errDiskA, nil}, nil},
		{"healthy and failing", []error{nil, errDiskA}, nil},
		{"all failing", []error{errDiskA, errDiskB}, []error{audit.ErrNoDeviceRecorded, errDiskA, errDiskB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b audit.Broker
			var devs []*fakeDevice
			for i, err := range tt.errs {
				d := &fakeDevice{err: err}
				devs = append(devs, d)
				if err := b.Add(fmt.Sprintf("dev%d/", i), d); err != nil {
					t.Fatal(err)
				}
			}
			if !b.Enabled() {
				t.Fatal("Enabled() = false with devices")
			}
			ctx := context.Background()
			for _, err := range []error{
				b.LogRequest(ctx, sampleRequest(0, "t", "s")),
				b.LogResponse(ctx, sampleResponse(0, "t", "s")),
			} {
				if tt.wantErrs == nil {
					if err != nil {
						t.Errorf("Log = %v, want nil", err)
					}
					continue
				}
				for _, want := range tt.wantErrs {
					if !errors.Is(err, want) {
						t.Errorf("Log = %v, want it to wrap %v", err, want)
					}
				}
				if err != nil && !strings.Contains(err.Error(), `"dev0/"`) {
					t.Errorf("Log = %v, want it to name the failing device", err)
				}
			}
			for i, d := range devs {
				if want := 2 * boolInt(tt.errs[i] == nil); d.recorded() != want {
					t.Errorf("device %d recorded %d events, want %d", i, d.recorded(), want)
				}
			}
		})
	}
}

// The same, with real file devices: one whose path became a directory.
func TestBrokerFileDevices(t *testing.T) {
	dir := t.TempDir()
	good := openDevice(t, filepath.Join(dir, "good.log"), audit.FileOptions{})
	badPath := filepath.Join(dir, "bad.log")
	bad := openDevice(t, badPath, audit.FileOptions{})
	os.Rename(badPath, badPath+".1")
	if err := os.Mkdir(badPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := bad.Reopen(); err == nil {
		t.Fatal("Reopen onto a directory succeeded")
	}

	var b audit.Broker
	b.Add("good/", good)
	b.Add("bad/", bad)
	logPairs(t, &b, 3) // the same records go to both devices concurrently
	if ok, _ := bad.Healthy(); ok {
		t.Error("the broken device reports healthy")
	}
	b.Remove("good/")
	err := b.LogRequest(context.Background(), sampleRequest(0, "tok-9", "sec-9"))
	if !errors.Is(err, audit.ErrNoDeviceRecorded) {
		t.Errorf("LogRequest with only a broken device = %v, want ErrNoDeviceRecorded", err)
	}
	good.Close()
	verifyOK(t, good.Path(), 7)
}

func TestBrokerDevices(t *testing.T) {
	var b audit.Broker
	a, c := &fakeDevice{}, &fakeDevice{}
	if err := b.Add("b/", a); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("a/", c); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("a/", a); !errors.Is(err, audit.ErrDeviceExists) {
		t.Errorf("Add(duplicate) = %v, want ErrDeviceExists", err)
	}
	if err := b.Add("nil/", nil); err == nil {
		t.Error("Add(nil device) succeeded")
	}
	if diff := cmp.Diff([]string{"a/", "b/"}, b.Names()); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
	if d, ok := b.Device("b/"); !ok || d != a {
		t.Errorf("Device(b/) = %v, %v, want the device added there", d, ok)
	}
	if d, ok := b.Remove("b/"); !ok || d != a {
		t.Errorf("Remove(b/) = %v, %v, want the device added there", d, ok)
	}
	if _, ok := b.Remove("b/"); ok {
		t.Error("Remove(b/) twice succeeded")
	}
	b.Remove("a/")
	if b.Enabled() {
		t.Error("Enabled() = true after removing every device")
	}
}

func TestBrokerHash(t *testing.T) {
	var b audit.Broker
	d := openDevice(t, filepath.Join(t.TempDir(), "audit.log"), audit.FileOptions{})
	b.Add("file/", d)
	b.Add("fake/", &fakeDevice{})
	got, err := b.Hash("file/", "my-secret-vault")
	if want := d.Salt().Hash("my-secret-vault"); err != nil || got != want {
		t.Errorf("Hash(file/) = %q, %v, want %q", got, err, want)
	}
	if _, err := b.Hash("nope/", "x"); !errors.Is(err, audit.ErrDeviceNotFound) {
		t.Errorf("Hash(unknown) error = %v, want ErrDeviceNotFound", err)
	}
	if _, err := b.Hash("fake/", "x"); !errors.Is(err, audit.ErrNoSalt) {
		t.Errorf("Hash(saltless device) error = %v, want ErrNoSalt", err)
	}
}

// Devices come and go while events flow; run with -race.
func TestBrokerConcurrentChanges(t *testing.T) {
	var b audit.Broker
	keep := &fakeDevice{}
	b.Add("keep/", keep)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if err := b.LogRequest(ctx, sampleRequest(i, "t", "s")); err != nil {
					t.Errorf("goroutine %d: LogRequest = %v", g, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			name := fmt.Sprintf("tmp%d/", i%3)
			b.Add(name, &fakeDevice{err: errDiskA})
			b.Names()
			b.Remove(name)
		}
	})
	wg.Wait()
	if got := keep.recorded(); got != 800 {
		t.Errorf("the permanent device recorded %d events, want 800", got)
	}
}
