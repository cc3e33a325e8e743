package webhooks

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's published test vector.
func TestSignMatchesTheSpecVector(t *testing.T) {
	t.Parallel()
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

// During a rotation both secrets sign; a receiver holding either one accepts the request, and a
// request replayed after the tolerance is refused.
func TestRotationAndReplay(t *testing.T) {
	t.Parallel()
	oldKey, _ := ParseSecret(NewSecret())
	newKey, _ := ParseSecret(NewSecret())
	body := []byte(`{"type":"domain.verified"}`)
	sent := time.Now()
	h := http.Header{}
	SetHeaders(h, [][]byte{newKey, oldKey}, "msg_1", sent, body)
	if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for name, k := range map[string][]byte{"new": newKey, "old": oldKey} {
		if err := Verify(k, h, body, sent); err != nil {
			t.Errorf("%s secret: %v", name, err)
		}
	}
	if err := Verify(newKey, h, []byte(`{"type":"domain.deleted"}`), sent); err == nil {
		t.Error("a changed body verified")
	}
	if err := Verify(newKey, h, body, sent.Add(6*time.Minute)); err == nil {
		t.Error("a replay six minutes later verified")
	}
	third, _ := ParseSecret(NewSecret())
	if err := Verify(third, h, body, sent); err == nil {
		t.Error("a stranger's secret verified")
	}
}

func TestParseSecretRefusesWhatIsNotASecret(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "abc", "whsec_", "whsec_not base64!", "whsec_" + strings.Repeat("A", 8)} {
		if _, err := ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) accepted it", s)
		}
	}
}
