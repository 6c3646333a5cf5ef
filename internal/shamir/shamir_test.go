package shamir_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"os"
	"testing"

	"github.com/coffer-dev/coffer/internal/shamir"
)

// refMul is a slow schoolbook GF(2^8) product reduced by 0x11B, written
// independently of the package's constant-time one, to compute expected
// shares.
func refMul(a, b byte) byte {
	var p uint16
	for i := range 8 {
		if b&(1<<i) != 0 {
			p ^= uint16(a) << i
		}
	}
	for i := 15; i >= 8; i-- {
		if p&(1<<i) != 0 {
			p ^= 0x11B << (i - 8)
		}
	}
	return byte(p)
}

// refShare evaluates, for each secret byte, the polynomial with intercept
// secret[i] and coefficients coeffs[i] (lowest degree first) at x.
func refShare(secret []byte, coeffs [][]byte, x byte) []byte {
	out := make([]byte, len(secret)+1)
	for i, s := range secret {
		y, xp := s, byte(1)
		for _, c := range coeffs[i] {
			xp = refMul(xp, x)
			y ^= refMul(c, xp)
		}
		out[i] = y
	}
	out[len(secret)] = x
	return out
}

func TestKnownAnswers(t *testing.T) {
	tests := []struct {
		name   string
		shares [][]byte
		want   []byte
	}{
		// f(x) = 0x42 + 0x07x: f(1) = 0x45, f(2) = 0x42 + 0x0E = 0x4C.
		{"linear by hand", [][]byte{{0x45, 1}, {0x4C, 2}}, []byte{0x42}},
		// f(x) = 1 + x + x², g(x) = 0xFF + 2x², with 3·3 = 5:
		// x=1: f=0x01 g=0xFD; x=2: f=0x07 g=0xF7; x=3: f=0x07 g=0xF5.
		{"quadratic by hand", [][]byte{{0x01, 0xFD, 1}, {0x07, 0xF7, 2}, {0x07, 0xF5, 3}}, []byte{0x01, 0xFF}},
		{"quadratic by hand, reordered", [][]byte{{0x07, 0xF5, 3}, {0x01, 0xFD, 1}, {0x07, 0xF7, 2}}, []byte{0x01, 0xFF}},
		{"reference, high x", [][]byte{
			refShare([]byte("k"), [][]byte{{0x20, 0x99}}, 0x53),
			refShare([]byte("k"), [][]byte{{0x20, 0x99}}, 0xCA),
			refShare([]byte("k"), [][]byte{{0x20, 0x99}}, 0xFF),
		}, []byte("k")},
		{"reference, degree 4, 5 of 5", func() [][]byte {
			secret := []byte("coffer!")
			coeffs := make([][]byte, len(secret))
			for i := range coeffs {
				coeffs[i] = []byte{byte(i*37 + 1), byte(i * 91), 0xFE, byte(i + 200)}
			}
			var s [][]byte
			for _, x := range []byte{9, 250, 17, 128, 64} {
				s = append(s, refShare(secret, coeffs, x))
			}
			return s
		}(), []byte("coffer!")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shamir.Combine(tc.shares)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("Combine(%x) = %x, %v, want %x", tc.shares, got, err, tc.want)
			}
		})
	}
}

type vaultVectors struct {
	Vectors []struct {
		Secret    string   `json:"secret"`
		Threshold int      `json:"threshold"`
		Shares    []string `json:"shares"`
	} `json:"vectors"`
}

func loadVaultVectors(tb testing.TB) (secrets [][]byte, thresholds []int, shares [][][]byte) {
	tb.Helper()
	raw, err := os.ReadFile("testdata/vault-shares.json")
	if err != nil {
		tb.Fatal(err)
	}
	var vv vaultVectors
	if err := json.Unmarshal(raw, &vv); err != nil {
		tb.Fatal(err)
	}
	for _, v := range vv.Vectors {
		s, err := hex.DecodeString(v.Secret)
		if err != nil {
			tb.Fatal(err)
		}
		var sh [][]byte
		for _, h := range v.Shares {
			b, err := hex.DecodeString(h)
			if err != nil {
				tb.Fatal(err)
			}
			sh = append(sh, b)
		}
		secrets, thresholds, shares = append(secrets, s), append(thresholds, v.Threshold), append(shares, sh)
	}
	return secrets, thresholds, shares
}

// TestVaultShares combines shares made by Vault's own Split: every subset
// of at least threshold shares must give the secret.
func TestVaultShares(t *testing.T) {
	secrets, thresholds, shares := loadVaultVectors(t)
	for i, secret := range secrets {
		n := len(shares[i])
		for mask := 1; mask < 1<<n; mask++ {
			sub := subset(shares[i], mask)
			if len(sub) < thresholds[i] {
				continue
			}
			got, err := shamir.Combine(sub)
			if err != nil || !bytes.Equal(got, secret) {
				t.Errorf("Combine(vault shares %b) = %x, %v, want %x", mask, got, err, secret)
			}
		}
	}
}

func subset(shares [][]byte, mask int) [][]byte {
	var out [][]byte
	for i, s := range shares {
		if mask&(1<<i) != 0 {
			out = append(out, s)
		}
	}
	return out
}

func randomSecret(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSplitCombineProperty(t *testing.T) {
	trials := 300
	if testing.Short() {
		trials = 30
	}
	below := 0
	for range trials {
		n := 2 + mrand.IntN(11)  // 2..12 parts
		k := 2 + mrand.IntN(n-1) // 2..n threshold
		// 16+ bytes: k-1 shares give a uniformly random result, so a
		// false "reconstructed" below has probability 256^-16.
		secret := randomSecret(t, 16+mrand.IntN(49))
		shares, err := shamir.Split(secret, n, k)
		if err != nil {
			t.Fatalf("Split(%d bytes, %d, %d): %v", len(secret), n, k, err)
		}
		if len(shares) != n {
			t.Fatalf("Split(%d, %d) gave %d shares", n, k, len(shares))
		}
		xs := map[byte]bool{}
		for _, s := range shares {
			if len(s) != len(secret)+1 {
				t.Fatalf("share is %d bytes, want %d", len(s), len(secret)+1)
			}
			x := s[len(s)-1]
			if x == 0 || xs[x] {
				t.Fatalf("Split(%d, %d): x-coordinate %d is zero or repeated", n, k, x)
			}
			xs[x] = true
		}
		// Every subset of at least k shares reconstructs; every subset of
		// exactly k-1 (at least 2) shares does not.
		for mask := 1; mask < 1<<n; mask++ {
			sub := subset(shares, mask)
			if len(sub) < 2 || len(sub) < k-1 {
				continue
			}
			got, err := shamir.Combine(sub)
			if err != nil {
				t.Fatalf("Combine(%d of %d, threshold %d): %v", len(sub), n, k, err)
			}
			switch {
			case len(sub) >= k && !bytes.Equal(got, secret):
				t.Fatalf("Combine(%d of %d, threshold %d) = %x, want %x", len(sub), n, k, got, secret)
			case len(sub) == k-1 && bytes.Equal(got, secret):
				t.Fatalf("Combine(%d of %d, threshold %d) reconstructed the secret", len(sub), n, k)
			case len(sub) == k-1:
				below++
			}
		}
	}
	if below == 0 {
		t.Error("no below-threshold subset was tried")
	}
}

// TestSplitIsRandom: the same secret splits differently each time, and
// x-coordinates are spread over 1..255.
func TestSplitIsRandom(t *testing.T) {
	secret := []byte("the same secret, twice")
	a, err := shamir.Split(secret, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := shamir.Split(secret, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[0][:len(secret)], b[0][:len(secret)]) {
		t.Error("two splits of one secret gave the same first share")
	}
	seen := map[byte]bool{}
	for range 200 {
		s, err := shamir.Split([]byte{1}, 2, 2)
		if err != nil {
			t.Fatal(err)
		}
		seen[s[0][1]], seen[s[1][1]] = true, true
	}
	if len(seen) < 100 {
		t.Errorf("400 x-coordinates took only %d distinct values", len(seen))
	}
	// The largest split uses every coordinate once.
	all, err := shamir.Split([]byte{7}, 255, 255)
	if err != nil {
		t.Fatal(err)
	}
	got, err := shamir.Combine(all)
	if err != nil || !bytes.Equal(got, []byte{7}) {
		t.Errorf("Combine(255 of 255) = %x, %v, want 07", got, err)
	}
}

func TestErrors(t *testing.T) {
	split := func(secret []byte, parts, threshold int) func() error {
		return func() error { _, err := shamir.Split(secret, parts, threshold); return err }
	}
	combine := func(shares ...[]byte) func() error {
		return func() error { _, err := shamir.Combine(shares); return err }
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"empty secret", split(nil, 3, 2), shamir.ErrEmptySecret},
		{"zero-length secret", split([]byte{}, 3, 2), shamir.ErrEmptySecret},
		{"one part", split([]byte("x"), 1, 1), shamir.ErrInvalidParts},
		{"negative parts", split([]byte("x"), -1, 2), shamir.ErrInvalidParts},
		{"256 parts", split([]byte("x"), 256, 2), shamir.ErrInvalidParts},
		{"threshold one", split([]byte("x"), 3, 1), shamir.ErrInvalidThreshold},
		{"threshold zero", split([]byte("x"), 3, 0), shamir.ErrInvalidThreshold},
		{"threshold above parts", split([]byte("x"), 3, 4), shamir.ErrInvalidThreshold},
		{"no shares", combine(), shamir.ErrTooFewShares},
		{"one share", combine([]byte{1, 2}), shamir.ErrTooFewShares},
		{"one-byte shares", combine([]byte{1}, []byte{2}), shamir.ErrShareLength},
		{"empty shares", combine([]byte{}, []byte{}), shamir.ErrShareLength},
		{"different lengths", combine([]byte{1, 2}, []byte{1, 2, 3}), shamir.ErrShareLength},
		{"later share shorter", combine([]byte{1, 2, 3}, []byte{4, 5, 6}, []byte{7, 8}), shamir.ErrShareLength},
		{"duplicate x", combine([]byte{1, 2}, []byte{3, 2}), shamir.ErrDuplicateShare},
		{"same share twice", combine([]byte{1, 2, 3}, []byte{4, 5, 6}, []byte{1, 2, 3}), shamir.ErrDuplicateShare},
		{"zero x", combine([]byte{1, 0}, []byte{3, 2}), shamir.ErrZeroCoordinate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
		})
	}
	// Valid edge cases.
	if _, err := shamir.Split([]byte("x"), 2, 2); err != nil {
		t.Errorf("Split(2, 2) = %v, want nil", err)
	}
	if _, err := shamir.Split([]byte("x"), 255, 2); err != nil {
		t.Errorf("Split(255, 2) = %v, want nil", err)
	}
}

func FuzzCombine(f *testing.F) {
	_, _, shares := loadVaultVectors(f)
	for _, sh := range shares {
		f.Add(bytes.Join(sh, nil), uint8(len(sh)))
	}
	f.Add([]byte{0x45, 1, 0x4C, 2}, uint8(2))
	f.Add([]byte{1, 0, 2, 0}, uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, n uint8) {
		// Cut raw into n shares of equal size, plus a ragged last one
		// when it does not divide, to reach the length checks too.
		var shares [][]byte
		if n > 0 {
			size := len(raw) / int(n)
			for i := range int(n) {
				end := (i + 1) * size
				if i == int(n)-1 {
					end = len(raw)
				}
				shares = append(shares, raw[i*size:end])
			}
		}
		secret, err := shamir.Combine(shares)
		if err == nil && len(secret) != len(shares[0])-1 {
			t.Fatalf("Combine gave %d bytes from %d-byte shares", len(secret), len(shares[0]))
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	secret := make([]byte, 32)
	b.SetBytes(int64(len(secret)))
	for b.Loop() {
		if _, err := shamir.Split(secret, 5, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombine(b *testing.B) {
	shares, err := shamir.Split(make([]byte, 32), 5, 3)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(32)
	for b.Loop() {
		if _, err := shamir.Combine(shares[:3]); err != nil {
			b.Fatal(err)
		}
	}
}
