package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 1000, 65535, 1 << 20, 1<<40 + 12345, 1<<63 + 1} {
		i := bucketOf(v)
		if i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, beyond %d buckets", v, i, numBuckets)
		}
		if i < prev {
			t.Fatalf("bucketOf not monotonic at %d", v)
		}
		prev = i
		got := bucketValue(i)
		diff := float64(got) - float64(v)
		if diff < 0 {
			diff = -diff
		}
		if v > 0 && diff/float64(v) > 1.0/64 {
			t.Fatalf("bucketValue(bucketOf(%d)) = %d: error %.3f%% > 1.6%%", v, got, 100*diff/float64(v))
		}
	}
	for v := uint64(0); v < 128; v++ {
		if bucketValue(bucketOf(v)) != v {
			t.Fatalf("small value %d not exact", v)
		}
	}
}

// TestQuantilesUniform checks the quantiles of a known distribution: the
// values 1..100,000 µs in random order.
func TestQuantilesUniform(t *testing.T) {
	var parts [4]Histogram
	vals := rand.Perm(100_000)
	for i, v := range vals {
		parts[i%4].Record(time.Duration(v+1) * time.Microsecond)
	}
	var h Histogram
	for i := range parts {
		h.Merge(&parts[i])
	}
	if h.Count() != 100_000 {
		t.Fatalf("count = %d", h.Count())
	}
	if h.Max() != 100_000*time.Microsecond {
		t.Fatalf("max = %v, want exactly 100ms", h.Max())
	}
	if m := h.Mean(); m < 50_000*time.Microsecond || m > 50_001*time.Microsecond {
		t.Fatalf("mean = %v, want 50.0005ms", m)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if rel := float64(got-tc.want) / float64(tc.want); rel > 0.016 || rel < -0.016 {
			t.Errorf("Quantile(%v) = %v, want %v within 1.6%%", tc.q, got, tc.want)
		}
	}
}

func TestQuantilesSkewed(t *testing.T) {
	var h Histogram
	for i := 0; i < 990; i++ {
		h.Record(100 * time.Microsecond)
	}
	for i := 0; i < 10; i++ {
		h.Record(50 * time.Millisecond)
	}
	if p := h.Quantile(0.99); p > 102*time.Microsecond || p < 98*time.Microsecond {
		t.Fatalf("p99 = %v, want ~100µs (the 990th of 1000 samples)", p)
	}
	if p := h.Quantile(0.995); p < 49*time.Millisecond {
		t.Fatalf("p99.5 = %v, want ~50ms", p)
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
}

// TestQuantilesExponential compares the histogram with exact quantiles of
// sorted samples from a long-tailed distribution (exponential, mean 2ms),
// the shape latencies under load take.
func TestQuantilesExponential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 200_000)
	var h Histogram
	for i := range samples {
		samples[i] = time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
		h.Record(samples[i])
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		want := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 1.0/64 {
			t.Errorf("Quantile(%v) = %v, want %v within 1.6%% (off by %.2f%%)", q, got, want, 100*rel)
		}
	}
	if h.Max() != samples[len(samples)-1] {
		t.Errorf("Max() = %v, want %v exactly", h.Max(), samples[len(samples)-1])
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i&0xfffff) * time.Nanosecond)
	}
}
