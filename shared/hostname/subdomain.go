package hostname

import (
	"strconv"
	"strings"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// fallbackLabel is used when nothing usable is left of a name, so callers
// always get a label to start their candidate sequence from.
const fallbackLabel = "site"

// SubdomainBase derives the platform subdomain label from a normalised
// external hostname: the registrable name without its public suffix, preceded
// by the labels in front of it except a leading "www".
//
//	www.impulse-max.com   → impulse-max
//	shop.impulse-max.com  → shop-impulse-max
//	a.b.example.co.uk     → a-b-example
//	xn--caf-dma.com       → caf-dma
//
// Punycode labels lose their "xn--" prefix and keep the rest of their ASCII
// form: a label may not start with "xn--" unless it is a real A-label, and
// keeping the encoded tail (rather than transliterating café to cafe) keeps
// café.com and cafe.com from competing for one base.
//
// The result always passes the label syntax of ValidateSubdomain (1–63 of
// [a-z0-9-], no '-' at either end, no "--" anywhere), for any input; it may be
// blocklisted or taken, which is what Candidate is for.
func SubdomainBase(ascii string) string {
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(ascii)), ".")
	var labels []string
	if reg, err := Registrable(name); err == nil {
		suffix := reg[strings.IndexByte(reg, '.')+1:]
		base := strings.TrimSuffix(reg, "."+suffix)
		labels = strings.Split(strings.TrimSuffix(name, reg), ".")
		labels = append(labels[:len(labels)-1], base) // drop the "" before reg
	} else {
		// Not a normalised name (a bare suffix, garbage): still produce
		// something valid from all of it rather than fail.
		labels = strings.Split(name, ".")
	}
	if len(labels) > 1 && labels[0] == "www" {
		labels = labels[1:]
	}
	for i, l := range labels {
		labels[i] = strings.TrimPrefix(l, "xn--")
	}
	if label := sanitizeLabel(strings.Join(labels, "-")); label != "" {
		return label
	}
	return fallbackLabel
}

// sanitizeLabel maps s onto the label alphabet: bytes outside [a-z0-9-]
// become '-', runs of '-' collapse to one, and the result is cut to 63 with no
// '-' at either end. Collapsing also removes every "--", so the result can
// never look like an ACE prefix. It may return "".
func sanitizeLabel(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), maxLabel+1))
	lastHyphen := true // drops leading '-'
	for i := 0; i < len(s) && b.Len() < maxLabel+1; i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if !isHostByte(c) {
			c = '-'
		}
		if c == '-' {
			if lastHyphen {
				continue
			}
			lastHyphen = true
		} else {
			lastHyphen = false
		}
		b.WriteByte(c)
	}
	out := b.String()
	if len(out) > maxLabel {
		out = out[:maxLabel]
	}
	return strings.TrimRight(out, "-")
}

// ValidateSubdomain checks a subdomain label, requested explicitly or
// generated: 1–63 of [a-z0-9-], no '-' at either end, no "--" in positions
// 3–4 (reserved for ACE prefixes such as "xn--"), and not blocklisted. The
// label is checked as given, not normalised, so what passes is exactly what
// gets stored; the error (an *Error) suggests a label that would pass the
// syntax rules.
func (r Rules) ValidateSubdomain(label string) error {
	if e := r.validateSubdomain(label); e != nil {
		return e
	}
	return nil
}

func (r Rules) validateSubdomain(label string) *Error {
	if label == "" {
		return reject(CodeSubdomainEmpty, label, i18n.T("escriba un subdominio, por ejemplo el nombre de su empresa", "enter a subdomain, for example your company name"))
	}
	zone := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r.Zone)), ".")
	for i := 0; i < len(label); i++ {
		if isHostByte(label[i]) {
			continue
		}
		// Someone typing the whole platform hostname means its first label.
		lower := strings.ToLower(strings.TrimSpace(label))
		if zone != "" && strings.HasSuffix(lower, "."+zone) {
			return suggestLabel(CodeSubdomainInvalid, label, i18n.F("escriba solo la parte anterior a .%s", "enter only the part before .%s", zone),
				strings.TrimSuffix(lower, "."+zone))
		}
		return suggestLabel(CodeSubdomainInvalid, label, i18n.T(`un subdominio solo puede contener letras minúsculas a–z, dígitos y "-"`,
			`a subdomain can contain only lower-case letters a–z, digits and "-"`), label)
	}
	if len(label) > maxLabel {
		return suggestLabel(CodeSubdomainTooLong, label, i18n.F("un subdominio puede tener como máximo %d caracteres, no %d",
			"a subdomain can be at most %d characters, not %d", maxLabel, len(label)), label)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return suggestLabel(CodeSubdomainHyphen, label, i18n.T(`un subdominio no puede empezar ni terminar con "-"`, `a subdomain cannot start or end with "-"`), label)
	}
	if len(label) >= 4 && label[2:4] == "--" {
		return suggestLabel(CodeSubdomainDoubleHyphen, label, i18n.T(`un subdominio no puede tener "--" como tercer y cuarto carácter (reservado para los nombres xn--)`,
			`a subdomain cannot have "--" as its third and fourth characters (reserved for xn-- names)`), label)
	}
	if r.Blocked(label) {
		e := reject(CodeSubdomainBlocked, label, i18n.F("%q está reservado por la plataforma: elija otro subdominio, por ejemplo %s",
			"%q is reserved by the platform: choose another subdomain, for example %s", label, r.unblocked(label)))
		e.Suggestion = r.unblocked(label)
		return e
	}
	return nil
}

// suggestLabel rejects label, appending the sanitised form of bad as the
// thing to type when there is one.
func suggestLabel(code, label string, problem i18n.Text, bad string) *Error {
	if s := sanitizeLabel(bad); s != "" && !(len(s) >= 4 && s[2:4] == "--") {
		e := reject(code, label, i18n.F("%s: pruebe %s", "%s: try %s", problem, s))
		e.Suggestion = s
		return e
	}
	return reject(code, label, i18n.F("%s, por ejemplo el nombre de su empresa", "%s, for example your company name", problem))
}

// unblocked returns the first candidate of label that is not reserved, for the
// message only; the caller's own sequence also skips names already taken.
func (r Rules) unblocked(label string) string {
	for n := 1; ; n++ {
		if c := Candidate(label, n); !r.Blocked(c) {
			return c
		}
	}
}

// Candidate returns the n-th deterministic candidate for base: n=0 is base
// itself, n=1 is base-2, n=2 is base-3, and so on. base is cut so the result
// stays within 63 characters without a '-' before the suffix. Callers try
// n = 0, 1, 2, … and take the first candidate that is neither blocked nor
// taken; determinism makes concurrent registrations converge on the same
// sequence, and the database's unique index decides between them.
//
// If base is a valid label (as SubdomainBase always returns), every candidate
// is one too. Negative n is treated as 0.
func Candidate(base string, n int) string {
	if n <= 0 {
		return base
	}
	suffix := "-" + strconv.FormatUint(uint64(n)+1, 10) // unsigned: n+1 cannot overflow
	if keep := maxLabel - len(suffix); len(base) > keep {
		base = base[:keep]
	}
	base = strings.TrimRight(base, "-")
	if base == "" {
		base = fallbackLabel
	}
	return base + suffix
}
