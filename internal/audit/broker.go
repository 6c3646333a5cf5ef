package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Device records audit events. A device is given the same record as every
// other device, concurrently: it must not modify it, and hashes a copy.
type Device interface {
	LogRequest(ctx context.Context, r *Request) error
	LogResponse(ctx context.Context, r *Response) error
}

// Broker sends each event to every enabled device, named by the path it is
// enabled at (as in sys/audit). With no device enabled, auditing is off and
// logging succeeds; otherwise it fails closed: an event counts as recorded
// only if at least one device recorded it, and ErrNoDeviceRecorded tells
// the caller to refuse the request.
//
// The zero Broker has no device and is ready to use. Devices can be added
// and removed while events are logged; an event goes to the devices
// enabled when it was submitted.
type Broker struct {
	mu      sync.Mutex                 // serializes Add and Remove
	devices atomic.Pointer[[]entryDev] // copy on write, sorted by name
}

type entryDev struct {
	name string
	dev  Device
}

var _ Device = (*Broker)(nil)

// Add enables d under name. It returns ErrDeviceExists if name is taken.
// The broker does not own d: whoever removes it closes it.
func (b *Broker) Add(name string, d Device) error {
	if d == nil {
		return fmt.Errorf("audit: enable %q: nil device", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.load()
	i, found := slices.BinarySearchFunc(cur, name, cmpName)
	if found {
		return fmt.Errorf("%w: %q", ErrDeviceExists, name)
	}
	next := slices.Insert(slices.Clone(cur), i, entryDev{name, d})
	b.devices.Store(&next)
	return nil
}

// Remove disables the device enabled under name and returns it, or false
// if there is none. Events already submitted may still reach it.
func (b *Broker) Remove(name string) (Device, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.load()
	i, found := slices.BinarySearchFunc(cur, name, cmpName)
	if !found {
		return nil, false
	}
	d := cur[i].dev
	next := slices.Delete(slices.Clone(cur), i, i+1)
	b.devices.Store(&next)
	return d, true
}

// Device returns the device enabled under name.
func (b *Broker) Device(name string) (Device, bool) {
	cur := b.load()
	if i, found := slices.BinarySearchFunc(cur, name, cmpName); found {
		return cur[i].dev, true
	}
	return nil, false
}

// Names returns the names of the enabled devices, sorted.
func (b *Broker) Names() []string {
	cur := b.load()
	names := make([]string, len(cur))
	for i, e := range cur {
		names[i] = e.name
	}
	return names
}

// Enabled reports whether any device is enabled, that is, whether auditing
// is on.
func (b *Broker) Enabled() bool { return len(b.load()) > 0 }

// Hash returns input hashed as the device enabled under name would log it,
// for sys/audit-hash. The device must have a Salt method, as FileDevice
// does.
func (b *Broker) Hash(name, input string) (string, error) {
	d, ok := b.Device(name)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrDeviceNotFound, name)
	}
	s, ok := d.(interface{ Salt() Salt })
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrNoSalt, name)
	}
	return s.Salt().Hash(input), nil
}

// LogRequest sends r to every enabled device; see Broker.
func (b *Broker) LogRequest(ctx context.Context, r *Request) error {
	return b.fanOut(func(d Device) error { return d.LogRequest(ctx, r) })
}

// LogResponse sends r to every enabled device; see Broker.
func (b *Broker) LogResponse(ctx context.Context, r *Response) error {
	return b.fanOut(func(d Device) error { return d.LogResponse(ctx, r) })
}

// fanOut calls log on every device, in parallel when there are several so
// that one slow device does not delay the others.
func (b *Broker) fanOut(log func(Device) error) error {
	devs := b.load()
	if len(devs) == 0 {
		return nil
	}
	errs := make([]error, len(devs))
	if len(devs) == 1 {
		errs[0] = log(devs[0].dev)
	} else {
		var wg sync.WaitGroup
		for i := 1; i < len(devs); i++ {
			wg.Go(func() { errs[i] = log(devs[i].dev) })
		}
		errs[0] = log(devs[0].dev)
		wg.Wait()
	}
	if slices.Contains(errs, nil) {
		return nil
	}
	for i, err := range errs {
		errs[i] = fmt.Errorf("audit device %q: %w", devs[i].name, err)
	}
	return fmt.Errorf("%w: %w", ErrNoDeviceRecorded, errors.Join(errs...))
}

func (b *Broker) load() []entryDev {
	if p := b.devices.Load(); p != nil {
		return *p
	}
	return nil
}

func cmpName(e entryDev, name string) int { return strings.Compare(e.name, name) }
