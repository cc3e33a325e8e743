package hostname

import (
	"strings"
	"unicode"

	"golang.org/x/net/idna"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Look-alike attacks on internationalised names (Unicode Technical Standard #39):
//
//   - A label that mixes scripts the way no language writes ("pаypal" with a Cyrillic "а" among
//     Latin letters) is refused at registration. The rule is UTS #39's "highly restrictive"
//     profile: one script per label, or Latin together with the scripts Japanese, Chinese or
//     Korean are written in. Common and Inherited characters (digits, "-", combining marks)
//     belong to every script.
//   - A label written entirely in one other script whose every letter has a Latin twin ("аррӏе",
//     all Cyrillic) is a real name in that script and may be registered, but it is shown in its
//     xn-- form (Display), as browsers do, so it can never pass for the Latin name it imitates
//     next to a customer's real one.

// japanese, chinese and korean are the script sets UTS #39's highly restrictive level allows in
// one label, besides a single script.
var (
	japanese = []*unicode.RangeTable{unicode.Latin, unicode.Han, unicode.Hiragana, unicode.Katakana}
	chinese  = []*unicode.RangeTable{unicode.Latin, unicode.Han, unicode.Bopomofo}
	korean   = []*unicode.RangeTable{unicode.Latin, unicode.Han, unicode.Hangul}
)

// scriptOf returns the script table r belongs to, nil for Common and Inherited (they go with any
// script) and for unassigned code points.
func scriptOf(r rune) *unicode.RangeTable {
	if r < 0x80 {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return unicode.Latin
		}
		return nil
	}
	if unicode.In(r, unicode.Common, unicode.Inherited) {
		return nil
	}
	for _, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	return nil
}

// scripts returns the distinct scripts of label's characters, without Common and Inherited.
func scripts(label string) []*unicode.RangeTable {
	var out []*unicode.RangeTable
	for _, r := range label {
		t := scriptOf(r)
		if t == nil {
			continue
		}
		found := false
		for _, o := range out {
			if o == t {
				found = true
				break
			}
		}
		if !found {
			out = append(out, t)
		}
	}
	return out
}

func subset(set, of []*unicode.RangeTable) bool {
	for _, s := range set {
		found := false
		for _, o := range of {
			if s == o {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// mixedScript reports whether the U-label mixes scripts beyond what the highly restrictive
// profile allows.
func mixedScript(label string) bool {
	set := scripts(label)
	if len(set) <= 1 {
		return false
	}
	return !subset(set, japanese) && !subset(set, chinese) && !subset(set, korean)
}

// twinOnly lists, per script, the letters that look like a Latin letter in common fonts (the
// confusables data of UTS #39, as browsers' IDN display policies use it); a label made only of
// those, digits and hyphens reads as a Latin word.
var twinOnly = map[*unicode.RangeTable]map[rune]bool{
	unicode.Cyrillic: runeSet("асԁеһіјӏорԛѕԝхуъьҽпгѵѡ"),
	unicode.Greek:    runeSet("αικνορτυχϲϳοϵ"),
	unicode.Armenian: runeSet("օսհոզցաւ"),
}

func runeSet(s string) map[rune]bool {
	m := make(map[rune]bool)
	for _, r := range s {
		m[r] = true
	}
	return m
}

// wholeScriptConfusable reports whether the U-label is written in one non-Latin script using
// only letters that have Latin twins.
func wholeScriptConfusable(label string) bool {
	set := scripts(label)
	if len(set) != 1 || set[0] == unicode.Latin {
		return false
	}
	twins, ok := twinOnly[set[0]]
	if !ok {
		return false
	}
	letters := 0
	for _, r := range label {
		if scriptOf(r) == nil {
			continue
		}
		letters++
		if !twins[unicode.ToLower(r)] {
			return false
		}
	}
	return letters > 0
}

// checkScripts refuses an ASCII name one of whose xn-- labels mixes scripts.
func checkScripts(name, input string) *Error {
	for _, label := range strings.Split(name, ".") {
		if !strings.HasPrefix(label, "xn--") {
			continue
		}
		u, err := idna.Display.ToUnicode(label)
		if err != nil {
			continue // checkASCII and the IDNA profile judge undecodable labels
		}
		if mixedScript(u) {
			return reject(CodeMixedScript, input, i18n.T(
				"\""+u+"\" mezcla letras de alfabetos distintos (por ejemplo una letra cirílica entre letras latinas), "+
					"que es como se fabrican nombres que imitan a otros: escríbalo de nuevo en un solo alfabeto",
				"\""+u+"\" mixes letters of different alphabets (for example a Cyrillic letter among Latin ones), "+
					"which is how look-alike names are made: type it again in one alphabet"))
		}
	}
	return nil
}

// Display returns the form of an ASCII hostname to show people: Unicode, unless a label could
// pass for a Latin name (whole-script confusable), in which case the whole name stays in its
// xn-- form, as browsers show it.
func Display(ascii string) string {
	u := Unicode(ascii)
	if u == ascii {
		return ascii
	}
	for _, label := range strings.Split(u, ".") {
		if wholeScriptConfusable(label) || mixedScript(label) {
			return ascii
		}
	}
	return u
}
