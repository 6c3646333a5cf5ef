package shamir

// Arithmetic in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (0x11B), the AES
// field. Addition is XOR. Neither function below indexes a table or
// branches on its operands: every loop runs a fixed number of times and
// conditional steps are selected with masks.

// mul returns a·b.
func mul(a, b byte) byte {
	var p byte
	for range 8 {
		// -(b&1) is 0xFF when the low bit of b is set, 0x00 otherwise.
		p ^= a & -(b & 1)
		// Multiply a by x, reducing by 0x11B when its top bit falls out.
		a = a<<1 ^ 0x1B&-(a>>7)
		b >>= 1
	}
	return p
}

// inv returns a⁻¹ as a²⁵⁴ (Fermat: a²⁵⁵ = 1 for a ≠ 0), and 0 for 0.
func inv(a byte) byte {
	// a²⁵⁴ = a² · a⁴ · a⁸ · … · a¹²⁸: seven squarings, seven products.
	r := byte(1)
	for range 7 {
		a = mul(a, a)
		r = mul(r, a)
	}
	return r
}
