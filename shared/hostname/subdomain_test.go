package hostname

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSubdomainBase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ascii string
		want  string
	}{
		{"the seed's ImpulseMax gets impulse-max", "www.impulse-max.com", "impulse-max"},
		{"the seed's EvolucionaMujer gets evolucionamujer", "www.evolucionamujer.com", "evolucionamujer"},
		{"the seed's TecHeels gets techeels", "www.techeels.io", "techeels"},
		{"an apex gets its name without the suffix", "impulse-max.com", "impulse-max"},
		{"a deeper host joins its extra labels", "shop.impulse-max.com", "shop-impulse-max"},
		{"only a leading www is dropped", "shop.www.impulse-max.com", "shop-www-impulse-max"},
		{"www before deeper labels is dropped", "www.shop.impulse-max.com", "shop-impulse-max"},
		{"a two-level public suffix is removed whole", "a.b.example.co.uk", "a-b-example"},
		{"a private suffix is removed whole", "www.impulse.github.io", "impulse"},
		{"a punycode label loses its xn-- prefix", "xn--caf-dma.com", "caf-dma"},
		{"a punycode label among others loses its prefix", "shop.xn--mller-kva.de", "shop-mller-kva"},
		{"a registrable www is kept, being the name itself", "www.com", "www"},
		{"a long result is cut to 63 without a trailing hyphen", strings.Repeat("a", 62) + ".b.example.com", strings.Repeat("a", 62)},
		{"the result is cut to exactly 63", strings.Repeat("a", 40) + "." + strings.Repeat("b", 40) + ".com", strings.Repeat("a", 40) + "-" + strings.Repeat("b", 22)},
		{"unnormalised input is still mapped to a valid label", "  Shop_Now.Example.COM. ", "shop-now-example"},
		{"a bare public suffix still yields a label", "co.uk", "co-uk"},
		{"input with nothing usable falls back to site", "---", "site"},
		{"empty input falls back to site", "", "site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := SubdomainBase(tt.ascii)
			if got != tt.want {
				t.Errorf("SubdomainBase(%q) = %q, want %q", tt.ascii, got, tt.want)
			}
			if err := checkLabelForTest(got); err != "" {
				t.Errorf("SubdomainBase(%q) = %q: %s", tt.ascii, got, err)
			}
		})
	}
}

func TestSeedCustomersEndToEnd(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"www.impulse-max.com":     "impulse-max",
		"www.evolucionamujer.com": "evolucionamujer",
		"www.techeels.io":         "techeels",
	}
	got := make(map[string]string)
	for input := range want {
		name, err := testRules.NormalizeExternal(input)
		if err != nil {
			t.Fatalf("NormalizeExternal(%q): %v", input, err)
		}
		base := SubdomainBase(name)
		if err := testRules.ValidateSubdomain(base); err != nil {
			t.Errorf("ValidateSubdomain(%q): %v", base, err)
		}
		got[name] = base
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("seed subdomains (-want +got):\n%s", diff)
	}
}

func TestValidateSubdomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		label   string
		code    string // "" = valid
		message string // must be contained in the message
	}{
		{"a plain name is valid", "impulse-max", "", ""},
		{"a single character is valid", "a", "", ""},
		{"digits alone are valid", "2024", "", ""},
		{"63 characters are valid", strings.Repeat("a", 63), "", ""},
		{"a double hyphen after position four is valid", "abcd--e", "", ""},
		{"a blocked word inside a longer label is valid", "admin-shop", "", ""},
		{"empty is rejected", "", CodeSubdomainEmpty, "enter a subdomain"},
		{"64 characters are rejected with a cut suggestion", strings.Repeat("a", 64), CodeSubdomainTooLong, "try " + strings.Repeat("a", 63)},
		{"upper case is rejected with the lower-case suggestion", "Impulse-Max", CodeSubdomainInvalid, "try impulse-max"},
		{"an underscore is rejected with a hyphen suggestion", "my_shop", CodeSubdomainInvalid, "try my-shop"},
		{"a dot is rejected", "a.b", CodeSubdomainInvalid, "try a-b"},
		{"the full platform hostname suggests its first label", "Impulse-Max.sajet.us", CodeSubdomainInvalid, "enter only the part before .sajet.us: try impulse-max"},
		{"non-ASCII is rejected", "café", CodeSubdomainInvalid, "try caf"},
		{"a space is rejected", "my shop", CodeSubdomainInvalid, "try my-shop"},
		{"a leading hyphen is rejected", "-shop", CodeSubdomainHyphen, "try shop"},
		{"a trailing hyphen is rejected", "shop-", CodeSubdomainHyphen, "try shop"},
		{"a double hyphen in positions three and four is rejected", "xn--caf-dma", CodeSubdomainDoubleHyphen, "try xn-caf-dma"},
		{"any double hyphen in positions three and four is rejected", "ab--cd", CodeSubdomainDoubleHyphen, "try ab-cd"},
		{"a built-in blocked label is rejected", "admin", CodeSubdomainBlocked, "for example admin-2"},
		{"www is blocked", "www", CodeSubdomainBlocked, "reserved"},
		{"an operator's extra blocked label is rejected", "tunnel-host", CodeSubdomainBlocked, "reserved"},
		{"an extra blocked label configured in capitals is rejected", "cp", CodeSubdomainBlocked, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := testRules.ValidateSubdomain(tt.label)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("ValidateSubdomain(%q) = %v, want valid", tt.label, err)
				}
				return
			}
			var herr *Error
			if !errors.As(err, &herr) {
				t.Fatalf("ValidateSubdomain(%q) = %v (%T), want *Error %s", tt.label, err, err, tt.code)
			}
			if herr.Code != tt.code || !strings.Contains(herr.Message.EN, tt.message) || herr.Input != tt.label {
				t.Errorf("ValidateSubdomain(%q) = {%s %q %q}, want code %s, message containing %q, input unmodified",
					tt.label, herr.Code, herr.Message, herr.Input, tt.code, tt.message)
			}
		})
	}
}

func TestValidateSubdomainSuggestionsPass(t *testing.T) {
	t.Parallel()
	// A suggestion that would itself be refused sends the user in circles.
	for _, label := range []string{"Impulse-Max", "my_shop", "-shop", "ab--cd", strings.Repeat("x", 70), "admin", "a.b.c"} {
		err := testRules.ValidateSubdomain(label)
		var herr *Error
		if !errors.As(err, &herr) {
			t.Fatalf("ValidateSubdomain(%q) = %v, want *Error", label, err)
		}
		_, suggestion, ok := strings.Cut(herr.Message.EN, "try ")
		if !ok {
			_, suggestion, ok = strings.Cut(herr.Message.EN, "for example ")
		}
		if !ok {
			t.Fatalf("ValidateSubdomain(%q) message %q suggests nothing", label, herr.Message)
		}
		if err := testRules.ValidateSubdomain(suggestion); err != nil {
			t.Errorf("ValidateSubdomain(%q) suggests %q, which is refused: %v", label, suggestion, err)
		}
	}
}

func TestCandidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 63)
	tests := []struct {
		name string
		base string
		n    int
		want string
	}{
		{"the first candidate is the base itself", "impulse-max", 0, "impulse-max"},
		{"the second candidate is base-2", "impulse-max", 1, "impulse-max-2"},
		{"the third candidate is base-3", "impulse-max", 2, "impulse-max-3"},
		{"the hundredth candidate is base-100", "impulse-max", 99, "impulse-max-100"},
		{"a negative index is the base", "impulse-max", -1, "impulse-max"},
		{"a 63-character base is cut to fit its suffix", long, 1, strings.Repeat("a", 61) + "-2"},
		{"a longer suffix cuts the base further", long, 9, strings.Repeat("a", 60) + "-10"},
		{"a cut never leaves a hyphen before the suffix", strings.Repeat("a", 60) + "-bcd", 1, strings.Repeat("a", 60) + "-2"},
		{"the largest index still fits", long, int(^uint(0) >> 1), strings.Repeat("a", 43) + "-9223372036854775808"},
		{"an empty base gets the fallback", "", 1, "site-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Candidate(tt.base, tt.n)
			if got != tt.want {
				t.Errorf("Candidate(%q, %d) = %q, want %q", tt.base, tt.n, got, tt.want)
			}
			if tt.base != "" || tt.n > 0 {
				if err := checkLabelForTest(got); err != "" {
					t.Errorf("Candidate(%q, %d) = %q: %s", tt.base, tt.n, got, err)
				}
			}
		})
	}
}

func TestCandidateSequenceIsDistinct(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"impulse-max", strings.Repeat("b", 63), "a"} {
		seen := make(map[string]int)
		for n := range 1000 {
			c := Candidate(base, n)
			if prev, dup := seen[c]; dup {
				t.Fatalf("Candidate(%q, %d) = Candidate(%q, %d) = %q", base, n, base, prev, c)
			}
			seen[c] = n
		}
	}
}
