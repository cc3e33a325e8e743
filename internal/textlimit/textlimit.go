// Package textlimit bounds text that crosses a trust boundary (an agent's error, a peer's
// message) before it is stored, logged or shown, without ever splitting a UTF-8 sequence.
package textlimit

import "unicode/utf8"

// Truncate returns the longest prefix of s that is at most n bytes and ends on a character
// boundary.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
