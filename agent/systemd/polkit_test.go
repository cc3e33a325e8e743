package systemd_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/agent/systemd"
)

// The rule the package ships allows cloudflared.service only, and the edit the ops guide
// describes for replicas is read back exactly.
func TestPolkitUnits(t *testing.T) {
	shipped := filepath.Join("..", "..", "packaging", "polkit", "50-sajet-agent.rules")
	units, err := systemd.PolkitUnits(shipped)
	if err != nil || !slices.Equal(units, []string{"cloudflared.service"}) {
		t.Fatalf("PolkitUnits(shipped rule) = %q, %v; want [cloudflared.service]", units, err)
	}
	if err := systemd.CheckPolkitUnits(shipped, []string{"cloudflared.service"}); err != nil {
		t.Errorf("the shipped rule and the shipped agent.yml disagree: %v", err)
	}

	data, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(t.TempDir(), "50-sajet-agent.rules")
	replicas := strings.Replace(string(data), `var units = ["cloudflared.service"];`,
		`var units = ["cloudflared@1.service", "cloudflared@2.service"];`, 1)
	if err := os.WriteFile(edited, []byte(replicas), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := systemd.CheckPolkitUnits(edited, []string{"cloudflared@1.service", "cloudflared@2.service"}); err != nil {
		t.Errorf("edited rule: %v", err)
	}
	err = systemd.CheckPolkitUnits(edited, []string{"cloudflared@1.service", "cloudflared@3.service"})
	for _, want := range []string{"does not allow cloudflared@3.service", "also allows cloudflared@2.service", "make its list line `var units = [\"cloudflared@1.service\", \"cloudflared@3.service\"];`"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPolkitUnits with a different list = %v, want it to say %q", err, want)
		}
	}

	broken := filepath.Join(t.TempDir(), "broken.rules")
	if err := os.WriteFile(broken, []byte("var units = ['cloudflared.service'];\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := systemd.PolkitUnits(broken); err == nil || !strings.Contains(err.Error(), "double-quoted") {
		t.Errorf("single quotes: %v, want an error asking for double quotes", err)
	}
}
