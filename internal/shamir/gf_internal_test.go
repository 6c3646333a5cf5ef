package shamir

import "testing"

// tableMul is a reference multiplication built the textbook way, from
// log/exp tables over the generator 0x03, independently of mul. It is fine
// for tests only: its table lookups are indexed by the operands.
var tableMul = func() func(a, b byte) byte {
	var exp [510]byte
	var log [256]int
	x := byte(1)
	for i := range 255 {
		exp[i], exp[i+255] = x, x
		log[x] = i
		// x·3 = x·2 + x, with x·2 reduced by 0x11B.
		x2 := x << 1
		if x&0x80 != 0 {
			x2 ^= 0x1B
		}
		x ^= x2
	}
	return func(a, b byte) byte {
		if a == 0 || b == 0 {
			return 0
		}
		return exp[log[a]+log[b]]
	}
}()

func TestMulMatchesTables(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			if got, want := mul(byte(a), byte(b)), tableMul(byte(a), byte(b)); got != want {
				t.Fatalf("mul(%#02x, %#02x) = %#02x, want %#02x", a, b, got, want)
			}
		}
	}
}

func TestInv(t *testing.T) {
	if got := inv(0); got != 0 {
		t.Errorf("inv(0) = %#02x, want 0", got)
	}
	for a := 1; a < 256; a++ {
		if got := tableMul(byte(a), inv(byte(a))); got != 1 {
			t.Fatalf("%#02x · inv(%#02x) = %#02x, want 1", a, a, got)
		}
	}
}

// TestKnownProducts checks worked examples from FIPS-197 (the AES field).
func TestKnownProducts(t *testing.T) {
	tests := []struct{ a, b, want byte }{
		{0x57, 0x83, 0xC1}, // FIPS-197 §4.2
		{0x57, 0x13, 0xFE}, // FIPS-197 §4.2.1
		{0x53, 0xCA, 0x01}, // inverses (FIPS-197 §5.1.1 S-box example)
		{0x02, 0x80, 0x1B}, // x·x^7 = x^8 ≡ x^4+x^3+x+1
		{0x00, 0xFF, 0x00},
		{0x01, 0xAB, 0xAB},
	}
	for _, tc := range tests {
		if got := mul(tc.a, tc.b); got != tc.want {
			t.Errorf("mul(%#02x, %#02x) = %#02x, want %#02x", tc.a, tc.b, got, tc.want)
		}
	}
	if got := inv(0x53); got != 0xCA {
		t.Errorf("inv(0x53) = %#02x, want 0xca", got)
	}
}
