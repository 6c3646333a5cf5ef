// Package shamir splits a secret into shares, any threshold of which
// reconstruct it, with Shamir's secret sharing over GF(2^8). Coffer uses it
// for the unseal key: Split at init, Combine when enough shares arrive.
//
// # Format
//
// The format is HashiCorp Vault's, and therefore SOPS's (its key groups use
// a copy of Vault's package), so shares move freely between the three:
//
//   - arithmetic is in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (0x11B, the
//     AES field);
//   - each secret byte is the intercept of its own polynomial of degree
//     threshold-1, whose other coefficients are random;
//   - a share is len(secret)+1 bytes: the polynomials' values at the
//     share's x-coordinate, one per secret byte, then the x-coordinate
//     itself as the last byte. x-coordinates are distinct, non-zero and
//     random.
//
// Combine interpolates at x = 0 (Lagrange) using each share's last byte.
//
// # Security
//
// Fewer than threshold shares reveal nothing about the secret: any value is
// equally likely. Combine cannot tell when it is given too few shares, or
// shares of different splits, and then returns a wrong secret without
// error, so callers must authenticate the result (the barrier does: a wrong
// unseal key fails to open the root key).
//
// Field multiplication is computed bit by bit with masks, and inversion as
// a^254 by a fixed chain of multiplications, rather than with log/exp
// tables, so that neither memory access patterns nor branches depend on
// secret bytes or coefficients; timing does not reveal them through the
// cache. Only the x-coordinates, which are public (they are in every
// share), drive control flow. Randomness comes from crypto/rand only, and
// the random coefficients are zeroed after use.
//
// This package imports nothing from Coffer.
package shamir

import (
	"crypto/rand"
	"fmt"
)

// Split divides secret into parts shares, any threshold of which
// reconstruct it. It needs 2 <= threshold <= parts <= 255 and a non-empty
// secret.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, ErrEmptySecret
	case parts < 2 || parts > 255:
		return nil, fmt.Errorf("%w: parts must be between 2 and 255, got %d", ErrInvalidParts, parts)
	case threshold < 2 || threshold > parts:
		return nil, fmt.Errorf("%w: threshold must be between 2 and parts (%d), got %d", ErrInvalidThreshold, parts, threshold)
	}
	xs, err := randomCoordinates(parts)
	if err != nil {
		return nil, err
	}
	// coeffs[i*(threshold-1)+j] is the coefficient of x^(j+1) in the
	// polynomial of secret byte i.
	degree := threshold - 1
	coeffs := make([]byte, len(secret)*degree)
	defer clear(coeffs)
	if _, err := rand.Read(coeffs); err != nil {
		return nil, fmt.Errorf("shamir: read random coefficients: %w", err)
	}
	shares := make([][]byte, parts)
	for i, x := range xs {
		share := make([]byte, len(secret)+1)
		for j, s := range secret {
			c := coeffs[j*degree : (j+1)*degree]
			// Horner: ((c[d-1]·x + c[d-2])·x + … + c[0])·x + s.
			var y byte
			for k := degree - 1; k >= 0; k-- {
				y = mul(y, x) ^ c[k]
			}
			share[j] = mul(y, x) ^ s
		}
		share[len(secret)] = x
		shares[i] = share
	}
	return shares, nil
}

// randomCoordinates returns n distinct random values from 1..255.
func randomCoordinates(n int) ([]byte, error) {
	var seen [256]bool
	seen[0] = true
	xs := make([]byte, 0, n)
	buf := make([]byte, 64)
	for len(xs) < n {
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("shamir: read random x-coordinates: %w", err)
		}
		// Rejection sampling keeps every permitted value equally likely;
		// branching here is harmless since x-coordinates are public.
		for _, x := range buf {
			if !seen[x] && len(xs) < n {
				seen[x] = true
				xs = append(xs, x)
			}
		}
	}
	return xs, nil
}

// Combine reconstructs a secret from shares made by Split (or by Vault's or
// SOPS's shamir package). It needs at least two shares of the same length,
// at least two bytes long, with distinct non-zero x-coordinates. Given
// fewer shares than the threshold, it returns a wrong secret and no error.
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) < 2 {
		return nil, fmt.Errorf("%w: need at least 2, got %d", ErrTooFewShares, len(shares))
	}
	n := len(shares[0])
	if n < 2 {
		return nil, fmt.Errorf("%w: shares must be at least 2 bytes, got %d", ErrShareLength, n)
	}
	var seen [256]bool
	xs := make([]byte, len(shares))
	for i, s := range shares {
		if len(s) != n {
			return nil, fmt.Errorf("%w: share %d is %d bytes, share 1 is %d", ErrShareLength, i+1, len(s), n)
		}
		x := s[n-1]
		if x == 0 {
			return nil, fmt.Errorf("%w: share %d", ErrZeroCoordinate, i+1)
		}
		if seen[x] {
			return nil, fmt.Errorf("%w: two shares have x-coordinate %d", ErrDuplicateShare, x)
		}
		seen[x] = true
		xs[i] = x
	}
	// Lagrange basis polynomials at 0. In characteristic 2 subtraction is
	// addition, so L_i(0) = ∏_{j≠i} x_j / (x_i + x_j). They depend only on
	// the public x-coordinates.
	basis := make([]byte, len(shares))
	for i := range xs {
		l := byte(1)
		for j := range xs {
			if i != j {
				l = mul(l, mul(xs[j], inv(xs[i]^xs[j])))
			}
		}
		basis[i] = l
	}
	secret := make([]byte, n-1)
	for k := range secret {
		var v byte
		for i, s := range shares {
			v ^= mul(s[k], basis[i])
		}
		secret[k] = v
	}
	return secret, nil
}
