package hostname

import "testing"

func TestMixedScriptLabelsAreRefused(t *testing.T) {
	t.Parallel()
	r := Rules{Zone: "sajet.us"}
	tests := []struct {
		input string
		code  string // "" = accepted
	}{
		{"pаypal.com", CodeMixedScript},        // Cyrillic а among Latin letters
		{"www.аcorp.com", CodeMixedScript},     // next to a customer's www.acorp.com
		{"xn--pypal-4ve.com", CodeMixedScript}, // the same, typed in its xn-- form
		{"münchen.de", ""},                     // Latin with a diacritic: one script
		{"пример.рф", ""},                      // all Cyrillic
		{"日本語テスト.jp", ""},                      // Han and Katakana: Japanese
		{"sony-ソニー.jp", ""},                    // Latin with Katakana: Japanese
		{"한국어abc.kr", ""},                      // Hangul with Latin: Korean
		{"ελληνικά.gr", ""},                    // all Greek
		{"αbc.com", CodeMixedScript},           // Greek alpha among Latin
		{"ソニー한국.com", CodeMixedScript},         // Katakana with Hangul: no language
	}
	for _, tt := range tests {
		_, err := r.NormalizeExternal(tt.input)
		got := ""
		if e, ok := err.(*Error); ok {
			got = e.Code
		} else if err != nil {
			t.Fatalf("%q: %v is not an *Error", tt.input, err)
		}
		if tt.code == "" && err != nil || tt.code != "" && got != tt.code {
			t.Errorf("NormalizeExternal(%q) = %v (code %q), want code %q", tt.input, err, got, tt.code)
		}
	}
}

// A name that can pass for a Latin one is shown in its xn-- form; real IDNs are shown in Unicode.
func TestDisplayShowsConfusablesAsPunycode(t *testing.T) {
	t.Parallel()
	r := Rules{Zone: "sajet.us"}
	tests := []struct {
		input   string
		unicode bool // shown in Unicode
	}{
		{"аррӏе.com", false},   // all Cyrillic, reads "apple"
		{"www.асе.com", false}, // reads "ace"
		{"пример.рф", true},
		{"münchen.de", true},
		{"www.example.com", true},
		{"ορο.gr", false}, // Greek letters that read "opo"
	}
	for _, tt := range tests {
		ascii, err := r.NormalizeExternal(tt.input)
		if err != nil {
			t.Fatalf("%q: %v", tt.input, err)
		}
		got := Display(ascii)
		if tt.unicode && got != Unicode(ascii) || !tt.unicode && got != ascii {
			t.Errorf("Display(%q) = %q (Unicode %q)", ascii, got, Unicode(ascii))
		}
	}
}
