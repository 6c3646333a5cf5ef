package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testRequest(token string) *Request {
	return &Request{
		Auth:    &Auth{ClientToken: token},
		Request: &RequestInfo{Operation: "read", Path: "secret/x", ClientToken: token},
	}
}

// breakAndRecover replaces the device's file with bad, checks that a write
// fails and is reported, then that the next write reopens the path and
// continues the chain.
func breakAndRecover(t *testing.T, d *FileDevice, bad *os.File, wantReason string) {
	t.Helper()
	ctx := context.Background()
	d.sem <- struct{}{}
	good := d.f
	d.f = bad
	<-d.sem
	good.Close()

	err := d.LogRequest(ctx, testRequest("t-fail"))
	if err == nil {
		t.Fatal("LogRequest on a broken file succeeded")
	}
	if strings.Contains(err.Error(), "t-fail") {
		t.Errorf("LogRequest error %q quotes the record", err)
	}
	ok, reason := d.Healthy()
	if ok || !strings.Contains(reason, wantReason) {
		t.Errorf("Healthy() = %v, %q after a failed write, want false and a reason containing %q", ok, reason, wantReason)
	}
	if n := d.Failures(); n != 1 {
		t.Errorf("Failures() = %d, want 1", n)
	}

	if err := d.LogRequest(ctx, testRequest("t-ok")); err != nil {
		t.Fatalf("LogRequest after the failure = %v, want the device to reopen its file", err)
	}
	if ok, reason := d.Healthy(); !ok {
		t.Errorf("Healthy() = false, %q after a successful write", reason)
	}
	if n := d.Failures(); n != 1 {
		t.Errorf("Failures() = %d after recovery, want it to stay 1", n)
	}
	d.Close()
	res, err := VerifyFile(d.Path())
	if err != nil {
		t.Fatalf("VerifyFile after recovery: %v", err)
	}
	if res.Lines != 3 {
		t.Errorf("VerifyFile().Lines = %d, want 3 (genesis, before, after)", res.Lines)
	}
}

func TestFileDeviceFdClosedUnderneath(t *testing.T) {
	d, err := OpenFile(filepath.Join(t.TempDir(), "audit.log"), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.LogRequest(context.Background(), testRequest("t0")); err != nil {
		t.Fatal(err)
	}
	// A closed *os.File: write(2) is never reached, like a revoked fd.
	bad, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	bad.Close()
	breakAndRecover(t, d, bad, "closed")
}

func TestFileDeviceDiskFull(t *testing.T) {
	// /dev/full fails every write(2) with ENOSPC, as a full disk does.
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full here: %v", err)
	}
	d, err := OpenFile(filepath.Join(t.TempDir(), "audit.log"), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.LogRequest(context.Background(), testRequest("t0")); err != nil {
		t.Fatal(err)
	}
	breakAndRecover(t, d, full, syscall.ENOSPC.Error())
}

func TestFileDeviceWaitHonoursContext(t *testing.T) {
	d, err := OpenFile(filepath.Join(t.TempDir(), "audit.log"), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.sem <- struct{}{} // a writer stuck in write(2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = d.LogRequest(ctx, testRequest("t"))
	<-d.sem
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LogRequest while the device is busy = %v, want DeadlineExceeded", err)
	}
	if ok, _ := d.Healthy(); !ok {
		t.Error("a caller giving up made the device unhealthy")
	}
	// An already cancelled context does not stop a write that can proceed.
	cancel()
	if err := d.LogRequest(ctx, testRequest("t")); err != nil {
		t.Errorf("LogRequest(cancelled ctx) on an idle device = %v, want nil", err)
	}
}

func TestDiscardTruncatesTornWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	d, err := OpenFile(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.LogRequest(context.Background(), testRequest("t0")); err != nil {
		t.Fatal(err)
	}
	// Half a line lands, then the write fails.
	d.sem <- struct{}{}
	if _, err := d.f.Write([]byte(`{"time":"2025`)); err != nil {
		t.Fatal(err)
	}
	d.discardLocked(len(`{"time":"2025`))
	<-d.sem
	if err := d.LogRequest(context.Background(), testRequest("t1")); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if res, err := VerifyFile(path); err != nil || res.Lines != 3 {
		t.Errorf("VerifyFile after a torn write = %v, %v, want 3 clean lines", res, err)
	}
}

func TestGenesisHash(t *testing.T) {
	h := genesisHash()
	if got := hex.EncodeToString(h[:]); got != GenesisHash {
		t.Errorf("sha256(GenesisString) = %s, want GenesisHash %s", got, GenesisHash)
	}
}
