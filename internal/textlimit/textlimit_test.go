package textlimit

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateNeverSplitsACharacter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: cutting inside it drops it
		{"héllo", 3, "hé"},
		{"日本", 4, "日"},
		{"x", 0, ""},
		{"x", -1, ""},
	}
	for _, tt := range tests {
		if got := Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
	long := strings.Repeat("ñ", 1000)
	for n := range 50 {
		if got := Truncate(long, n); !utf8.ValidString(got) || len(got) > n {
			t.Fatalf("Truncate(…, %d) = %q", n, got)
		}
	}
}
