package userpass

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coffer-dev/coffer/internal/logical"
)

// Mount options (`coffer auth enable -options=k=v userpass`, or tune).
const (
	optThreshold    = "lockout_threshold"
	optDuration     = "lockout_duration"
	optCounterReset = "lockout_counter_reset"
	optDisable      = "disable_lockout"
	optMemory       = "argon2_memory"
	optIterations   = "argon2_iterations"
	optParallelism  = "argon2_parallelism"
)

// Lockout defaults, as Vault's user lockout.
const (
	defaultThreshold    = 5
	defaultDuration     = 15 * time.Minute
	defaultCounterReset = 15 * time.Minute
	maxThreshold        = 1000
)

// config is a mount's settings, fixed between option changes.
type config struct {
	threshold    int
	duration     time.Duration
	counterReset time.Duration
	disabled     bool
	hash         HashParams
	// dummy is an encoded hash with the current parameters of a random
	// password nobody knows, verified in place of an unknown user's.
	dummy string
}

// parseOptions reads the mount options, refusing unknown names and values
// out of range with a 400.
func parseOptions(opts map[string]string) (*config, error) {
	c := &config{
		threshold:    defaultThreshold,
		duration:     defaultDuration,
		counterReset: defaultCounterReset,
		hash:         DefaultHashParams(),
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.TrimSpace(opts[k])
		var err error
		switch k {
		case optThreshold:
			var n int64
			if n, err = logical.ParseInt(k, v); err == nil && (n < 1 || n > maxThreshold) {
				err = logical.BadRequest("%s must be between 1 and %d", k, maxThreshold)
			}
			c.threshold = int(n)
		case optDuration, optCounterReset:
			var d time.Duration
			if d, err = logical.ParseDuration(k, v); err == nil && (d < time.Second || d > 365*24*time.Hour) {
				err = logical.BadRequest("%s must be between 1s and 365d", k)
			}
			if k == optDuration {
				c.duration = d
			} else {
				c.counterReset = d
			}
		case optDisable:
			c.disabled, err = logical.ParseBool(k, v)
		case optMemory, optIterations, optParallelism:
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			if err != nil {
				err = logical.BadRequest("%s: %q is not a positive integer", k, v)
				break
			}
			switch k {
			case optMemory:
				c.hash.Memory = uint32(n)
			case optIterations:
				c.hash.Time = uint32(n)
			default:
				if n > 255 {
					n = 255 // Validate reports it
				}
				c.hash.Threads = uint8(n)
			}
		default:
			return nil, logical.BadRequest("unknown userpass option %q (known: %s)", k,
				strings.Join([]string{optThreshold, optDuration, optCounterReset, optDisable, optMemory, optIterations, optParallelism}, ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := c.hash.Validate(); err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	return c, nil
}

// withDummy makes c's dummy hash (one full argon2id computation).
func (c *config) withDummy() error {
	var pw [32]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return fmt.Errorf("userpass: generate dummy password: %w", err)
	}
	d, err := NewHash(hex.EncodeToString(pw[:]), c.hash)
	if err != nil {
		return err
	}
	c.dummy = d
	return nil
}
