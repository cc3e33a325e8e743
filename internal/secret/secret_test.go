package secret

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestTokensAreFreshAndHashedAsStored(t *testing.T) {
	t.Parallel()
	a, ha := Token("sjt_")
	b, hb := Token("sjt_")
	if a == b || bytes.Equal(ha, hb) {
		t.Fatal("two tokens are the same")
	}
	if !regexp.MustCompile(`^sjt_[A-Za-z0-9_-]{43}$`).MatchString(a) {
		t.Errorf("token %q is not sjt_ + 43 base64url characters", a)
	}
	if !bytes.Equal(Hash(a), ha) || len(ha) != 32 {
		t.Error("the hash returned is not Hash(token)")
	}
	if h := Hex(16); len(h) != 32 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("Hex(16) = %q", h)
	}
	if a, b := ID(), ID(); a == b || len(a) != 26 {
		t.Errorf("ids %q and %q: want two different 26-character texts", a, b)
	}
}
