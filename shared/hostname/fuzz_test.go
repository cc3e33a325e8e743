package hostname

import (
	"errors"
	"strings"
	"testing"
)

// checkLabelForTest is an independent restatement of the label syntax, so the
// fuzzers do not merely check the implementation against itself. It returns
// "" for a valid label.
func checkLabelForTest(label string) string {
	if label == "" || len(label) > 63 {
		return "label length not in 1–63"
	}
	for _, c := range []byte(label) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "byte outside [a-z0-9-]"
		}
	}
	if strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
		return "leading or trailing '-'"
	}
	return ""
}

func checkNameForTest(name string) string {
	if name == "" || len(name) > 253 {
		return "name length not in 1–253"
	}
	for _, label := range strings.Split(name, ".") {
		if msg := checkLabelForTest(label); msg != "" {
			return msg + " in " + label
		}
	}
	return ""
}

func FuzzNormalizeExternal(f *testing.F) {
	for _, seed := range []string{
		"www.impulse-max.com", "  WWW.Impulse-Max.COM. ", "www.evolucionamujer.com", "www.techeels.io",
		"https://www.x.com/path", "www.x.com:8080", "[::1]:80", "*.x.com", "a_b.com", "co.uk",
		"x.sajet.us", "Café.com", "cafe\u0301.com", "xn--caf-dma.com", "ｗｗｗ．ｘ．ｃｏｍ", "пример.рф",
		"a.b.example.co.uk", "xn--abc-.com", "Ꭰ.com", "1.2.3.4", "x.com..",
		strings.Repeat("abcdefghi.", 25) + "com",
	} {
		f.Add(seed)
	}
	f.Fuzz(checkAccepted)
}

// checkAccepted checks the package's contract for one input: refusals are
// *Error with a code and a well-formed message; an accepted name is valid
// ASCII, normalises to itself, survives the Unicode round trip shown to
// users, and yields a valid subdomain base.
func checkAccepted(t *testing.T, input string) {
	t.Helper()
	name, err := testRules.NormalizeExternal(input)
	if err != nil {
		var herr *Error
		if !errors.As(err, &herr) || herr.Code == "" || herr.Message.EN == "" || herr.Message.ES == "" {
			t.Fatalf("NormalizeExternal(%q) error %#v: want *Error with code and message", input, err)
		}
		return
	}
	if msg := checkNameForTest(name); msg != "" {
		t.Fatalf("NormalizeExternal(%q) = %q: %s", input, name, msg)
	}
	again, err := testRules.NormalizeExternal(name)
	if err != nil || again != name {
		t.Fatalf("not idempotent: %q → %q → %q, %v", input, name, again, err)
	}
	if display := Unicode(name); display != name {
		back, err := testRules.NormalizeExternal(display)
		if err != nil || back != name {
			t.Fatalf("display form does not round-trip: %q → %q → Unicode %q → %q, %v", input, name, display, back, err)
		}
	}
	if _, err := Registrable(name); err != nil {
		t.Fatalf("accepted %q has no registrable domain: %v", name, err)
	}
	base := SubdomainBase(name)
	if msg := checkLabelForTest(base); msg != "" {
		t.Fatalf("SubdomainBase(%q) = %q: %s", name, base, msg)
	}
	if strings.Contains(base, "--") {
		t.Fatalf("SubdomainBase(%q) = %q contains \"--\"", name, base)
	}
}

func FuzzSubdomainBase(f *testing.F) {
	for _, seed := range []string{"www.impulse-max.com", "a.b.example.co.uk", "xn--caf-dma.com", "", "---", "co.uk", "WWW.X_Y.COM."} {
		f.Add(seed, uint16(0))
	}
	f.Fuzz(func(t *testing.T, input string, n uint16) {
		base := SubdomainBase(input)
		if msg := checkLabelForTest(base); msg != "" {
			t.Fatalf("SubdomainBase(%q) = %q: %s", input, base, msg)
		}
		var r Rules
		// Blocked labels are the one refusal a base may get; the syntax never.
		if err := r.ValidateSubdomain(base); err != nil && !r.Blocked(base) {
			t.Fatalf("ValidateSubdomain(SubdomainBase(%q) = %q) = %v", input, base, err)
		}
		c := Candidate(base, int(n))
		if msg := checkLabelForTest(c); msg != "" {
			t.Fatalf("Candidate(%q, %d) = %q: %s", base, n, c, msg)
		}
		if n > 0 {
			if err := r.ValidateSubdomain(c); err != nil && !r.Blocked(c) {
				t.Fatalf("ValidateSubdomain(Candidate(%q, %d) = %q) = %v", base, n, c, err)
			}
		}
	})
}
