// Package secret makes the control plane's secrets and random identifiers, and hashes secrets
// for storage, in one place: bearer tokens for the API (sjt_) and agents (sja_), verification
// and claim tokens, push nonces.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Token returns a new bearer token, prefix followed by 256 random bits in base64url, and the
// hash to store (Hash). The secret itself is shown once and never stored.
func Token(prefix string) (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24: it crashes the program instead
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token)
}

// Hash is the SHA-256 stored for a token. Tokens carry 256 bits of randomness, so a plain hash
// (no salt, no slow KDF) cannot be brute-forced, and a lookup stays one index probe.
func Hash(token string) []byte {
	h := Sum(token)
	return h[:]
}

// Sum is Hash as an array, for in-memory sets of valid tokens.
func Sum(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// tokenChars is the length of a token's random part: 32 bytes in base64url.
var tokenChars = base64.RawURLEncoding.EncodedLen(32)

// WellFormed reports whether token could be one Token(prefix) made, so that a malformed token is
// refused without a database lookup.
func WellFormed(token, prefix string) bool {
	if len(token) != len(prefix)+tokenChars || token[:len(prefix)] != prefix {
		return false
	}
	for _, c := range []byte(token[len(prefix):]) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Hex returns n random bytes as 2n lower-case hex digits: the form the verification and claim
// tokens of the platform's DNS records take (jeturing-verify-<32 hex>).
func Hex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ID returns 128 random bits as text (crypto/rand.Text): request ids, nonces, boot ids.
func ID() string { return rand.Text() }
