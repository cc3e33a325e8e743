package hostname

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

var testRules = Rules{Zone: "sajet.us", ExtraBlocked: []string{"tunnel-host", "CP"}}

func TestNormalizeExternalAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"the seed's ImpulseMax hostname is kept as it is", "www.impulse-max.com", "www.impulse-max.com"},
		{"the seed's EvolucionaMujer hostname is kept as it is", "www.evolucionamujer.com", "www.evolucionamujer.com"},
		{"the seed's TecHeels hostname is kept as it is", "www.techeels.io", "www.techeels.io"},
		{"spaces, upper case and one trailing dot are removed", "  WWW.Impulse-Max.COM. ", "www.impulse-max.com"},
		{"tabs and newlines around the name are trimmed", "\twww.x.com\n", "www.x.com"},
		{"an apex domain is accepted", "impulse-max.com", "impulse-max.com"},
		{"a deep hostname under a two-level suffix is accepted", "a.b.example.co.uk", "a.b.example.co.uk"},
		{"a name under a private suffix is accepted", "impulse.github.io", "impulse.github.io"},
		{"digits and inner hyphens are allowed", "3d-print-24.de", "3d-print-24.de"},
		{"a 63-character label is allowed", strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com"},
		{"an accented name typed with a capital converts to punycode", "Café.com", "xn--caf-dma.com"},
		{"an accented name typed in capitals converts to punycode", "MÜLLER.DE", "xn--mller-kva.de"},
		{"an accented name in lower case converts to punycode", "müller.de", "xn--mller-kva.de"},
		{"a name already in punycode is kept", "xn--caf-dma.com", "xn--caf-dma.com"},
		{"a punycode name in capitals is lower-cased", "XN--CAF-DMA.COM", "xn--caf-dma.com"},
		{"a Cyrillic name under a Cyrillic TLD converts", "пример.рф", "xn--e1afmkfd.xn--p1ai"},
		{"German sharp s is kept, not folded to ss", "straße.de", "xn--strae-oqa.de"},
		{"a name near the platform zone but outside it is accepted", "sajet.com", "sajet.com"},
		{"a name ending in the zone's letters but not its labels is accepted", "notsajet.us", "notsajet.us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := testRules.NormalizeExternal(tt.input)
			if err != nil {
				t.Fatalf("NormalizeExternal(%q) error: %v", tt.input, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeExternal(%q) = %q, want %q", tt.input, got, tt.want)
			}
			again, err := testRules.NormalizeExternal(got)
			if err != nil || again != got {
				t.Errorf("NormalizeExternal(%q) = %q, %v; normalising a normalised name must return it unchanged", got, again, err)
			}
		})
	}
}

func TestNormalizeExternalRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		code  string
		// message must contain this: the part that tells the user what to type.
		message string
	}{
		{"empty input is rejected", "", CodeEmpty, "www.example.com"},
		{"input of only spaces is rejected as empty", "   ", CodeEmpty, "www.example.com"},
		{"a lone dot is rejected as empty", ".", CodeEmpty, "www.example.com"},
		{"an https URL with a path names the host to type", "https://www.x.com/path", CodeIsURL, "enter the hostname only: www.x.com"},
		{"an http URL names the host to type", "http://www.x.com", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a host followed by a path names the host to type", "www.x.com/path", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a host with a trailing slash names the host to type", "www.x.com/", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a URL with credentials, port and query names only the host", "HTTPS://user:pw@WWW.X.com:8443/p?q=1#f", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a scheme without slashes is still a URL", "https:www.x.com", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a scheme-relative URL is a URL", "//www.x.com", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a host with a query is a URL", "www.x.com?utm=1", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a URL with no host asks for a hostname", "https:///", CodeIsURL, "enter the hostname only, for example www.example.com"},
		{"a host with a port and a path names the host alone", "www.x.com:8080/path", CodeIsURL, "enter the hostname only: www.x.com"},
		{"a URL of an IP address suggests no address", "http://[2001:db8::1]:8080/", CodeIsURL, "enter the hostname only, for example www.example.com"},
		{"a URL whose host is not a hostname either suggests an example", "https://%!/", CodeIsURL, "enter the hostname only, for example www.example.com"},
		{"a Windows-style path separator is a URL", `www.x.com\shop`, CodeIsURL, "enter the hostname only: www.x.com"},
		{"an email address names its domain", "info@impulse-max.com", CodeIsEmail, "impulse-max.com"},
		{"a port is rejected and the host without it suggested", "www.x.com:8080", CodeHasPort, "enter the hostname without a port: www.x.com"},
		{"an empty port is rejected like a port", "www.x.com:", CodeHasPort, "www.x.com"},
		{"an IPv4 address is rejected", "192.0.2.1", CodeIP, "not an IP address"},
		{"an IPv4 address with a trailing dot is rejected", "192.0.2.1.", CodeIP, "not an IP address"},
		{"an IPv4 address with a port is rejected as an IP", "192.0.2.1:80", CodeIP, "not an IP address"},
		{"an IPv6 address is rejected", "2001:db8::1", CodeIP, "not an IP address"},
		{"a bracketed IPv6 address is rejected", "[2001:db8::1]", CodeIP, "not an IP address"},
		{"a bracketed IPv6 address with a port is rejected", "[::1]:443", CodeIP, "not an IP address"},
		{"an all-numeric dotted name is treated as an address", "1.2.3", CodeIP, "not an IP address"},
		{"a wildcard is rejected and a concrete host suggested", "*.x.com", CodeWildcard, "for example www.x.com"},
		{"a wildcard in the middle is rejected", "www.*.com", CodeWildcard, "enter each hostname on its own"},
		{"a wildcard on junk suggests an example", "*.%!", CodeWildcard, "for example www.example.com"},
		{"an underscore is rejected", "my_shop.com", CodeLabelInvalid, `cannot contain "_"`},
		{"a space inside is rejected", "www.impulse max.com", CodeLabelInvalid, "remove them: www.impulsemax.com"},
		{"spaces around junk suggest an example, not the junk", "0 % !", CodeLabelInvalid, "remove them, for example www.example.com"},
		{"an underscore suggests a hyphen", "my_shop.com", CodeLabelInvalid, `use only letters, digits, "-" and ".": my-shop.com`},
		{"a non-breaking space inside is rejected", "www.impulse\u00a0max.com", CodeLabelInvalid, "cannot contain spaces"},
		{"a punctuation character is named", "shop!.com", CodeLabelInvalid, `'!'`},
		{"a colon that is not a port is rejected", "a:b:c.com", CodeLabelInvalid, `':'`},
		{"two trailing dots leave an empty label", "x.com..", CodeLabelInvalid, "remove the extra dot: x.com"},
		{"a leading dot is an empty label", ".x.com", CodeLabelInvalid, "remove the extra dot: x.com"},
		{"consecutive dots are an empty label", "www..x.com", CodeLabelInvalid, "remove the extra dot: www.x.com"},
		{"a label starting with a hyphen is rejected", "-shop.x.com", CodeLabelInvalid, `cannot start or end with "-"`},
		{"a label ending with a hyphen is rejected", "shop-.x.com", CodeLabelInvalid, `cannot start or end with "-"`},
		{"a double hyphen in positions three and four is rejected", "ab--cd.com", CodeLabelInvalid, `"--"`},
		{"a 64-character label is rejected", strings.Repeat("a", 64) + ".com", CodeLabelInvalid, "at most 63"},
		{"a 64-octet punycode label is rejected as a label", strings.Repeat("aé", 30) + ".com", CodeLabelInvalid, "at most 63"},
		{"a name over 253 octets is rejected", strings.Repeat("abcdefghi.", 26) + "com", CodeTooLong, "253"},
		{"megabytes of input are rejected without converting them", strings.Repeat("a", 1<<20), CodeTooLong, "253"},
		{"invalid UTF-8 is rejected", "caf\xe9.com", CodeLabelInvalid, "not text"},
		{"localhost is rejected", "localhost", CodeSingleLabel, "www.example.com"},
		{"localhost with a trailing dot is rejected", "LOCALHOST.", CodeSingleLabel, "www.example.com"},
		{"a single label is rejected with an example ending", "impulse-max", CodeSingleLabel, "impulse-max.com"},
		{"a top-level domain is a public suffix", "com", CodePublicSuffix, "www.example.com"},
		{"a registry second level is a public suffix", "co.uk", CodePublicSuffix, "www.example.co.uk"},
		{"a private-section suffix is a public suffix", "github.io", CodePublicSuffix, "www.example.github.io"},
		{"a wildcard-rule suffix is a public suffix", "foo.ck", CodePublicSuffix, "www.example.foo.ck"},
		{"an unknown TLD is rejected", "foo.invalidtld", CodeUnknownSuffix, `".invalidtld" is not a top-level domain`},
		{"a .local mDNS name is rejected as unknown", "printer.local", CodeUnknownSuffix, "www.example.com"},
		{"a name under localhost is rejected as unknown", "app.localhost", CodeUnknownSuffix, "www.example.com"},
		{"a reverse-DNS name is special use", "1.in-addr.arpa", CodeSpecialUse, "www.example.com"},
		{"an onion name is special use", "abc.onion", CodeSpecialUse, "www.example.com"},
		{"the platform zone is rejected", "sajet.us", CodePlatformZone, "enter your own domain"},
		{"a name inside the platform zone is rejected", "impulse-max.sajet.us", CodePlatformZone, "enter your own domain"},
		{"the platform zone in capitals with a dot is rejected", "X.SAJET.US.", CodePlatformZone, "enter your own domain"},
		{"a decomposed accent suggests the composed form", "cafe\u0301.com", CodeIDNInvalid, "enter it as café.com (xn--caf-dma.com)"},
		{"full-width letters and dots suggest the ASCII form", "ｗｗｗ．ｘ．ｃｏｍ", CodeIDNInvalid, "enter it as www.x.com"},
		{"an ideographic full stop suggests a dot", "café。com", CodeIDNInvalid, "enter it as café.com"},
		{"invalid punycode is rejected", "xn--abc.com", CodeIDNInvalid, "xn-- form"},
		{"punycode that decodes to ASCII is rejected", "xn--abc-.com", CodeLabelInvalid, `"-"`},
		{"a symbol that is not a letter is rejected", "shop\u2122.com", CodeIDNInvalid, "enter it as shoptm.com"},
		{"a zero-width joiner out of context is rejected", "a\u200db.com", CodeIDNInvalid, "check the spelling"},
		{"an invisible soft hyphen suggests the name without it", "ab\u00adc.com", CodeIDNInvalid, "enter it as abc.com"},
		{"a single internationalised label is shown in Unicode", "café", CodeSingleLabel, "café.com"},
		{"mixing right-to-left and left-to-right wrongly is rejected", "a\u05d0.com", CodeIDNInvalid, "check the spelling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := testRules.NormalizeExternal(tt.input)
			if err == nil {
				t.Fatalf("NormalizeExternal(%q) = %q, want error %s", tt.input, got, tt.code)
			}
			var herr *Error
			if !errors.As(err, &herr) {
				t.Fatalf("NormalizeExternal(%q) error %T %v, want *Error", tt.input, err, err)
			}
			if herr.Code != tt.code {
				t.Errorf("NormalizeExternal(%q) code = %s, want %s (message %q)", tt.input, herr.Code, tt.code, herr.Message)
			}
			if !strings.Contains(herr.Message.EN, tt.message) {
				t.Errorf("NormalizeExternal(%q) message = %q, want it to contain %q", tt.input, herr.Message, tt.message)
			}
			if herr.Input != tt.input {
				t.Errorf("NormalizeExternal(%q) Input = %q, want the input unmodified", tt.input, herr.Input)
			}
			if herr.Error() != herr.Message.EN {
				t.Errorf("Error() = %q, want the English message %q", herr.Error(), herr.Message.EN)
			}
			if herr.Message.ES == "" || herr.Message.ES == herr.Message.EN {
				t.Errorf("NormalizeExternal(%q) has no Spanish message: %+v", tt.input, herr.Message)
			}
		})
	}
}

func TestURLMessageIsExact(t *testing.T) {
	t.Parallel()
	_, err := testRules.NormalizeExternal("https://www.x.com/path")
	want := &Error{Code: CodeIsURL, Message: i18n.T("escriba solo el nombre de host: www.x.com", "enter the hostname only: www.x.com"),
		Suggestion: "www.x.com", Input: "https://www.x.com/path"}
	if diff := cmp.Diff(want, err); diff != "" {
		t.Errorf("NormalizeExternal of a URL (-want +got):\n%s", diff)
	}
}

func TestZoneRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rules Rules
		input string
		code  string // "" = accepted
	}{
		{"without a zone the platform's domain is an ordinary name", Rules{}, "x.sajet.us", ""},
		{"a zone written in capitals with a dot still protects itself", Rules{Zone: " SAJET.US. "}, "x.sajet.us", CodePlatformZone},
		{"a zone below the registrable domain protects that whole domain", Rules{Zone: "apps.sajet.us"}, "www.sajet.us", CodePlatformZone},
		{"a zone below the registrable domain protects the apex", Rules{Zone: "apps.sajet.us"}, "sajet.us", CodePlatformZone},
		{"a zone does not protect other domains", Rules{Zone: "apps.sajet.us"}, "www.impulse-max.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.rules.NormalizeExternal(tt.input)
			var got string
			if herr := (*Error)(nil); errors.As(err, &herr) {
				got = herr.Code
			} else if err != nil {
				t.Fatalf("error %T is not *Error", err)
			}
			if got != tt.code {
				t.Errorf("Rules{Zone: %q}.NormalizeExternal(%q) code = %q, want %q", tt.rules.Zone, tt.input, got, tt.code)
			}
		})
	}
}

func TestUnicode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ascii string
		want  string
	}{
		{"punycode is shown in Unicode", "xn--caf-dma.com", "café.com"},
		{"every label is decoded", "xn--e1afmkfd.xn--p1ai", "пример.рф"},
		{"plain ASCII is unchanged", "www.impulse-max.com", "www.impulse-max.com"},
		{"invalid punycode is returned as given", "xn--abc.com", "xn--abc.com"},
		{"punycode decoding to ASCII is returned as given", "xn--abc-.com", "xn--abc-.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Unicode(tt.ascii); got != tt.want {
				t.Errorf("Unicode(%q) = %q, want %q", tt.ascii, got, tt.want)
			}
		})
	}
}

func TestUnicodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, input := range []string{"Café.com", "MÜLLER.de", "пример.рф", "straße.de", "☃.com", "Ꭰ.com"} {
		ascii, err := testRules.NormalizeExternal(input)
		if err != nil {
			t.Fatalf("NormalizeExternal(%q): %v", input, err)
		}
		display := Unicode(ascii)
		back, err := testRules.NormalizeExternal(display)
		if err != nil || back != ascii {
			t.Errorf("%q → %q → Unicode %q → %q, %v; the display form must normalise back", input, ascii, display, back, err)
		}
	}
}

func TestEveryCodePointKeepsTheInvariants(t *testing.T) {
	t.Parallel()
	// The fuzzer rarely builds valid internationalised names from random
	// bytes, so walk the scripts customers are likely to use (Latin through
	// CJK punctuation) and check what FuzzNormalizeExternal checks. A full
	// sweep to U+10FFFF passed when this was written; it takes ~20 s.
	for r := rune(0x80); r < 0x3100; r++ {
		for _, input := range []string{"a" + string(r) + "b.com", string(r) + ".de", "A" + string(r) + "B.COM"} {
			checkAccepted(t, input)
		}
	}
}

func TestRegistrableAndIsApex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ascii   string
		want    string
		apex    bool
		errCode string
	}{
		{"a www host's registrable domain is the apex", "www.impulse-max.com", "impulse-max.com", false, ""},
		{"an apex is its own registrable domain", "impulse-max.com", "impulse-max.com", true, ""},
		{"a two-level suffix is kept whole", "shop.example.co.uk", "example.co.uk", false, ""},
		{"a private suffix counts as a suffix", "a.impulse.github.io", "impulse.github.io", false, ""},
		{"a public suffix has no registrable domain", "co.uk", "", false, CodePublicSuffix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Registrable(tt.ascii)
			var code string
			if herr := (*Error)(nil); errors.As(err, &herr) {
				code = herr.Code
			} else if err != nil {
				t.Fatalf("Registrable(%q) error %T is not *Error", tt.ascii, err)
			}
			if got != tt.want || code != tt.errCode {
				t.Errorf("Registrable(%q) = %q, code %q; want %q, code %q", tt.ascii, got, code, tt.want, tt.errCode)
			}
			if apex := IsApex(tt.ascii); apex != tt.apex {
				t.Errorf("IsApex(%q) = %v, want %v", tt.ascii, apex, tt.apex)
			}
		})
	}
}
