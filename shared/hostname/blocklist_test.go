package hostname

import (
	"strings"
	"testing"
)

func TestBlocklistHoldsTheRequiredLabels(t *testing.T) {
	t.Parallel()
	// docs/API.md lists these as the labels the blocklist must always hold; removing one from
	// blocklist.txt must fail.
	required := strings.Fields(`admin api app www mail smtp imap pop ftp ns ns1 ns2 dns mx cdn static
		assets status support help docs blog dev staging test auth login sso oauth billing dashboard
		console portal root cpanel webmail autodiscover autoconfig wpad localhost`)
	var r Rules
	for _, label := range required {
		if !r.Blocked(label) {
			t.Errorf("Blocked(%q) = false, want true", label)
		}
	}
}

func TestBlocklistEntriesAreValidLabels(t *testing.T) {
	t.Parallel()
	// A typo in the data file would otherwise block nothing, silently.
	set := builtinBlocklist()
	if len(set) < 40 {
		t.Fatalf("blocklist has %d entries; parsing lost some", len(set))
	}
	for label := range set {
		if err := checkLabelForTest(label); err != "" {
			t.Errorf("blocklist.txt entry %q: %s", label, err)
		}
	}
}

func TestBlocked(t *testing.T) {
	t.Parallel()
	r := Rules{ExtraBlocked: []string{" Tunnel-Host ", "", "cp"}}
	tests := []struct {
		name  string
		label string
		want  bool
	}{
		{"a built-in label is blocked", "admin", true},
		{"a built-in label in capitals is blocked", "ADMIN", true},
		{"an extra label is blocked whatever its configured case and spaces", "tunnel-host", true},
		{"another extra label is blocked", "cp", true},
		{"an empty label is not blocked by an empty extra entry", "", false},
		{"a label merely containing a blocked word is free", "admin-shop", false},
		{"a customer name is free", "impulse-max", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := r.Blocked(tt.label); got != tt.want {
				t.Errorf("Blocked(%q) = %v, want %v", tt.label, got, tt.want)
			}
		})
	}
}

func TestParseBlocklist(t *testing.T) {
	t.Parallel()
	got := parseBlocklist("# comment\n\n  Admin  # trailing comment\nAPI\n\t\n")
	if len(got) != 2 {
		t.Fatalf("parseBlocklist = %v, want admin and api", got)
	}
	for _, want := range []string{"admin", "api"} {
		if _, ok := got[want]; !ok {
			t.Errorf("parseBlocklist lacks %q: %v", want, got)
		}
	}
}
