package hostname

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

const (
	// maxName is the longest name DNS can carry in presentation form without
	// the root dot (RFC 1035 §2.3.4: 255 octets on the wire).
	maxName = 253
	// maxLabel is RFC 1035's label limit.
	maxLabel = 63
	// maxInput bounds the work done on input before it is converted to
	// ASCII. The Unicode form of a 253-octet name is at most about four
	// times longer (each code point needs at least one punycode character
	// and is at most four UTF-8 bytes), so this never rejects a name that
	// would be valid, while keeping punycode's quadratic encoder away from
	// megabyte-sized pastes.
	maxInput = 4 * 1024
)

// Rules holds the configuration the hostname rules depend on. The zero value
// is usable (no platform zone, built-in blocklist only), but a server should
// always set Zone.
type Rules struct {
	// Zone is the platform zone in ASCII, e.g. "sajet.us". Customers get
	// subdomains of it and can never register names inside it.
	Zone string
	// ExtraBlocked are further reserved labels, typically the zone's own
	// operational names (the tunnel host, the control plane).
	ExtraBlocked []string
}

// registration is the IDNA profile for customer input: the registration
// profile of RFC 5891 §4 (no mapping: anything that is not already a valid
// U-label is rejected, including non-NFC text, full-width letters and
// ideographic full stops), with the Bidi rule. Length checking is left to
// checkASCII so that an overlong name gets CodeTooLong instead of a generic
// IDNA error. Built once; a *idna.Profile is read-only after New.
var registration = sync.OnceValue(func() *idna.Profile {
	return idna.New(idna.ValidateForRegistration(), idna.VerifyDNSLength(false))
})

// specialUseTLDs are in the Public Suffix List's ICANN section but name no
// public website a tunnel could serve: reverse DNS and Tor. The other
// special-use names (localhost, local, test, example, invalid, internal, alt)
// are not in the list at all and fail the unknown-suffix check.
var specialUseTLDs = map[string]bool{"arpa": true, "onion": true}

// NormalizeExternal turns what a customer typed into the ASCII hostname the
// database stores, or explains what to type instead.
//
// Contract:
//   - the result is lower-case ASCII, at most 253 octets, labels of 1–63
//     [a-z0-9-] not starting or ending with '-', with no trailing dot;
//   - it is under a known public suffix, longer than that suffix, and not in
//     (or equal to) the platform zone's registrable domain;
//   - NormalizeExternal(result) == result, and
//     NormalizeExternal(Unicode(result)) == result;
//   - every error is an *Error.
func (r Rules) NormalizeExternal(input string) (string, error) {
	name, err := r.normalize(input)
	if err != nil {
		return "", err
	}
	return name, nil
}

func (r Rules) normalize(input string) (string, *Error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return "", reject(CodeEmpty, input, i18n.T("escriba un nombre de host, por ejemplo www.example.com", "enter a hostname, for example www.example.com"))
	}

	// Pasted text is checked for its shape first, on the raw string, so the
	// message answers the user's actual mistake ("that is a URL") rather
	// than a symptom ("'/' is not allowed").
	if e := checkShape(s, input); e != nil {
		return "", e
	}
	if len(s) > maxInput {
		return "", reject(CodeTooLong, input, i18n.F(
			"el nombre tiene %d caracteres y un nombre de host tiene como máximo %d: escriba un solo nombre, como www.example.com",
			"the hostname is %d characters long; a hostname is at most %d: enter a single hostname such as www.example.com", len(s), maxName))
	}
	if !utf8.ValidString(s) {
		return "", reject(CodeLabelInvalid, input, i18n.T("el nombre contiene bytes que no son texto: escríbalo de nuevo, por ejemplo www.example.com", "the hostname contains bytes that are not text: type it again, for example www.example.com"))
	}

	// Only ASCII is lowered here; toASCII lowers other scripts only when
	// the name is not valid as typed (see there).
	lowered := lowerASCII(s)
	lowered = strings.TrimSuffix(lowered, ".")
	if lowered == "" {
		return "", reject(CodeEmpty, input, i18n.T("escriba un nombre de host, por ejemplo www.example.com", "enter a hostname, for example www.example.com"))
	}
	if e := checkIP(lowered, input); e != nil {
		return "", e
	}
	if e := checkCharacters(lowered, input); e != nil {
		return "", e
	}
	if e := checkLabels(lowered, input); e != nil {
		return "", e
	}

	name := lowered
	if needsIDNA(lowered) {
		var e *Error
		if name, e = toASCII(lowered, input); e != nil {
			return "", e
		}
	}
	if e := checkASCII(name, input); e != nil {
		return "", e
	}
	if e := checkScripts(name, input); e != nil {
		return "", e
	}
	if !strings.Contains(name, ".") {
		if _, icann := publicsuffix.PublicSuffix(name); icann {
			return "", reject(CodePublicSuffix, input, i18n.F(
				"%[1]s es un dominio de primer nivel que nadie puede poseer: escriba su dominio bajo él, por ejemplo www.example.%[1]s",
				"%[1]s is a top-level domain that nobody can own: enter your domain under it, for example www.example.%[1]s", name))
		}
		if name == "localhost" {
			return "", reject(CodeSingleLabel, input, i18n.T("localhost es este ordenador, no un dominio de internet: escriba su propio dominio, por ejemplo www.example.com", "localhost is this computer, not a domain on the internet: enter your own domain, for example www.example.com"))
		}
		return "", reject(CodeSingleLabel, input, i18n.F(
			"%[1]q no es un nombre de dominio completo: escríbalo con su terminación, por ejemplo %[2]s.com",
			"%[1]q is not a complete domain name: enter it with its ending, for example %[2]s.com", Unicode(name), Unicode(name)))
	}
	if e := r.checkZone(name, input); e != nil {
		return "", e
	}
	if e := checkSuffix(name, input); e != nil {
		return "", e
	}
	return name, nil
}

// checkShape rejects input that is something other than a hostname: a URL,
// an email address, a wildcard. A URL is rejected, not stripped: the user may
// have pasted the wrong field (a path, a query with a different host in it),
// and silently storing a guess would put a name in the database that nobody
// typed. Telling them the host we would have used costs one retype.
func checkShape(s, input string) *Error {
	lower := strings.ToLower(s)
	switch {
	case strings.Contains(s, "://"),
		strings.HasPrefix(s, "//"),
		strings.HasPrefix(lower, "http:"),
		strings.HasPrefix(lower, "https:"),
		strings.ContainsAny(s, "/\\?#"):
		host := hostOfURL(s)
		if _, err := netip.ParseAddr(host); err == nil {
			host = "" // suggesting an address would only earn the next rejection
		}
		return suggestHost(CodeIsURL, input, "escriba solo el nombre de host", "enter the hostname only", host)
	case strings.Contains(s, "@"):
		_, domain, _ := strings.Cut(s, "@")
		return suggestHost(CodeIsEmail, input, "escriba el nombre de host del sitio web, no una dirección de correo", "enter the website's hostname, not an email address", hostPart(domain))
	case strings.Contains(s, "*"):
		rest := strings.TrimLeft(s, "*.")
		rest = strings.ToLower(strings.TrimSuffix(rest, "."))
		if rest == "" || strings.IndexFunc(rest, implausible) >= 0 {
			rest = "www.example.com"
		} else if IsApex(rest) {
			rest = "www." + rest
		}
		e := reject(CodeWildcard, input, i18n.T("no se admiten comodines: escriba cada nombre de host por separado, por ejemplo "+rest,
			"wildcards are not supported: enter each hostname on its own, for example "+rest))
		e.Suggestion = rest
		return e
	}
	return nil
}

// suggestHost rejects input with a sentence (es, en) offering host as the
// thing to type, unless it is obviously not a hostname either ("https://%!/"),
// in which case an example is better advice.
func suggestHost(code, input, es, en, host string) *Error {
	if host == "" || strings.IndexFunc(host, implausible) >= 0 {
		return reject(code, input, i18n.T(es+", por ejemplo www.example.com", en+", for example www.example.com"))
	}
	e := reject(code, input, i18n.T(es+": "+host, en+": "+host))
	e.Suggestion = host
	return e
}

func implausible(r rune) bool {
	if r >= utf8.RuneSelf {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}
	return !isHostByte(byte(r)) && r != '.' && !('A' <= r && r <= 'Z')
}

// hostOfURL extracts the host a browser would use from a pasted URL, for the
// suggestion only: "https://user@WWW.X.com:8080/p?q" → "www.x.com".
func hostOfURL(s string) string {
	if _, after, ok := strings.Cut(s, "://"); ok {
		s = after
	} else if scheme, rest, ok := strings.Cut(s, ":"); ok && (strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
		s = rest // "https:www.x.com"
	}
	s = strings.TrimLeft(s, "/\\")
	if i := strings.IndexAny(s, "/\\?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	return hostPart(s)
}

// hostPart drops a port and a trailing dot and lower-cases, keeping brackets
// of an IPv6 literal out of the suggestion.
func hostPart(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i >= 0 {
			return strings.ToLower(s[1:i])
		}
		return ""
	}
	if strings.Count(s, ":") == 1 {
		s, _, _ = strings.Cut(s, ":")
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

func isPort(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// checkIP rejects IP literals (a tunnel routes by Host header and Cloudflare
// issues no certificates for them) and host:port. An IP with a port is
// reported as an IP: removing the port would not help.
func checkIP(s, input string) *Error {
	msg := i18n.T("escriba un nombre de dominio, no una dirección IP: por ejemplo www.example.com", "enter a domain name, not an IP address: for example www.example.com")
	if strings.HasPrefix(s, "[") {
		return reject(CodeIP, input, msg)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return reject(CodeIP, input, msg)
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return reject(CodeIP, input, msg)
	}
	if host, port, ok := strings.Cut(s, ":"); ok && !strings.Contains(port, ":") && isPort(port) {
		host = strings.TrimSuffix(host, ".")
		if _, err := netip.ParseAddr(host); err == nil || allNumeric(host) {
			return reject(CodeIP, input, msg)
		}
		return suggestHost(CodeHasPort, input, "escriba el nombre de host sin puerto", "enter the hostname without a port", host)
	}
	if allNumeric(s) {
		return reject(CodeIP, input, msg)
	}
	return nil
}

// allNumeric reports whether every label is digits: "1.2.3" is an incomplete
// address, and no top-level domain is numeric (RFC 3696 §2).
func allNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || !isPort(label) {
			return false
		}
	}
	return true
}

// checkCharacters rejects ASCII that cannot appear in a hostname, naming the
// character. Non-ASCII is left to IDNA, except whitespace, which deserves its
// own message because it is invisible.
func checkCharacters(s, input string) *Error {
	for _, c := range s {
		switch {
		case unicode.IsSpace(c):
			return suggestHost(CodeLabelInvalid, input, "un nombre de host no puede contener espacios: quítelos",
				"hostnames cannot contain spaces: remove them", strings.Join(strings.Fields(s), ""))
		case c == '_':
			return suggestHost(CodeLabelInvalid, input, `un nombre de host no puede contener "_": use solo letras, dígitos, "-" y "."`,
				`hostnames cannot contain "_": use only letters, digits, "-" and "."`, strings.ReplaceAll(s, "_", "-"))
		case c < utf8.RuneSelf && !isHostByte(byte(c)) && c != '.':
			return reject(CodeLabelInvalid, input, i18n.F(
				`un nombre de host no puede contener %q: use solo letras, dígitos, "-" y "."`,
				`hostnames cannot contain %q: use only letters, digits, "-" and "."`, c))
		}
	}
	return nil
}

// checkLabels applies the label rules that do not depend on the ASCII form:
// no empty labels, no '-' at either end, and no "--" in positions 3–4 of an
// ASCII label other than an xn-- one (RFC 5891 §4.2.3.1: reserved for
// future ACE prefixes; registries refuse such names).
func checkLabels(s, input string) *Error {
	labels := strings.Split(s, ".")
	for _, label := range labels {
		switch {
		case label == "":
			return suggestHost(CodeLabelInvalid, input, fmt.Sprintf("%q tiene una parte vacía entre puntos: quite el punto sobrante", s),
				fmt.Sprintf("%q has an empty part between dots: remove the extra dot", s), collapseDots(s))
		case label[0] == '-' || label[len(label)-1] == '-':
			return reject(CodeLabelInvalid, input, i18n.F(
				`%q no puede empezar ni terminar con "-": revise cómo se escribe %q`,
				`%q cannot start or end with "-": check the spelling of %q`, label, s))
		case isASCII(label) && len(label) > maxLabel:
			return reject(CodeLabelInvalid, input, i18n.F(
				"la parte %q tiene %d caracteres; cada parte entre puntos puede tener como máximo %d",
				"the part %q is %d characters long; each part between dots can be at most %d", label, len(label), maxLabel))
		case isASCII(label) && len(label) >= 4 && label[2:4] == "--" && !strings.HasPrefix(label, "xn--"):
			return reject(CodeLabelInvalid, input, i18n.F(
				`%q no puede tener "--" como tercer y cuarto carácter (reservado para los nombres internacionales xn--): revise cómo se escribe %q`,
				`%q cannot have "--" as its third and fourth characters (reserved for xn-- international names): check the spelling of %q`, label, s))
		}
	}
	return nil
}

func collapseDots(s string) string {
	var parts []string
	for _, p := range strings.Split(s, ".") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

// needsIDNA reports whether s has a U-label to encode or an A-label ("xn--")
// to check: an xn-- label must decode to a valid U-label, or the name would
// display as something the registration profile would have refused.
func needsIDNA(s string) bool {
	return !isASCII(s) || strings.HasPrefix(s, "xn--") || strings.Contains(s, ".xn--")
}

// toASCII encodes an internationalised name with the registration profile.
// Non-ASCII letters are lowered only if the name is not valid as typed: IDNA
// treats a few scripts' upper case as canonical (Cherokee), and lowering
// those unconditionally would reject the display form Unicode produces.
// Input that only the browser-style lookup mapping accepts (decomposed
// accents, full-width letters, "。" dots, upper case outside ASCII) is
// rejected with the mapped form as the suggestion, so the stored name is
// always one the customer has seen and confirmed.
func toASCII(s, input string) (string, *Error) {
	p := registration()
	ascii, err := p.ToASCII(s)
	if err != nil {
		if full := strings.ToLower(s); full != s {
			ascii, err = p.ToASCII(full)
		}
	}
	if err == nil {
		return ascii, nil
	}
	if suggestion := suggestIDN(s); suggestion != "" {
		return "", reject(CodeIDNInvalid, input, i18n.F(
			"%q contiene caracteres que no se pueden registrar tal como están escritos: escríbalo como %s",
			"%q contains characters that cannot be registered as typed: enter it as %s", s, suggestion))
	}
	return "", reject(CodeIDNInvalid, input, i18n.F(
		"%q contiene caracteres no permitidos en nombres de dominio: revise cómo se escribe, o escriba la forma xn-- que muestra su registrador",
		"%q contains characters that are not allowed in domain names: check the spelling, or enter the xn-- form your registrar shows", s))
}

// suggestIDN maps s the way a browser's address bar would and returns the
// result, in Unicode and ASCII, if that result is itself acceptable.
func suggestIDN(s string) string {
	ascii, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return ""
	}
	ascii = strings.TrimSuffix(ascii, ".")
	u, err := registration().ToUnicode(ascii)
	if err != nil || checkASCII(ascii, "") != nil {
		return ""
	}
	// Only suggest what this package would then accept.
	if again, err := registration().ToASCII(u); err != nil || again != ascii {
		return ""
	}
	if u == ascii {
		return ascii
	}
	return u + " (" + ascii + ")"
}

// checkASCII is the final syntax check on the stored form. Everything earlier
// exists to produce a better message; this is what guarantees the contract.
func checkASCII(name, input string) *Error {
	if len(name) > maxName {
		return reject(CodeTooLong, input, i18n.F(
			"el nombre tiene %d caracteres en su forma DNS y el límite es %d: escriba un nombre más corto",
			"the hostname is %d characters long in DNS form; the limit is %d: enter a shorter hostname", len(name), maxName))
	}
	for _, label := range strings.Split(name, ".") {
		if e := checkLabelSyntax(label, name, input); e != nil {
			return e
		}
	}
	return nil
}

func checkLabelSyntax(label, name, input string) *Error {
	if label == "" {
		return suggestHost(CodeLabelInvalid, input, fmt.Sprintf("%q tiene una parte vacía entre puntos: quite el punto sobrante", name),
			fmt.Sprintf("%q has an empty part between dots: remove the extra dot", name), collapseDots(name))
	}
	if len(label) > maxLabel {
		return reject(CodeLabelInvalid, input, i18n.F(
			"la parte %q tiene %d caracteres en su forma DNS; cada parte entre puntos puede tener como máximo %d",
			"the part %q is %d characters long in DNS form; each part between dots can be at most %d", label, len(label), maxLabel))
	}
	for i := 0; i < len(label); i++ {
		if !isHostByte(label[i]) {
			return reject(CodeLabelInvalid, input, i18n.F(
				`un nombre de host no puede contener %q: use solo letras, dígitos, "-" y "."`,
				`hostnames cannot contain %q: use only letters, digits, "-" and "."`, label[i]))
		}
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return reject(CodeLabelInvalid, input, i18n.F(`%q no puede empezar ni terminar con "-"`, `%q cannot start or end with "-"`, label))
	}
	return nil
}

// checkZone rejects the platform's own names. Not only the zone: the zone's
// whole registrable domain is ours (with zone apps.sajet.us, www.sajet.us is
// still not a customer's), and letting a customer claim it would let them
// route our hostnames to their container.
func (r Rules) checkZone(name, input string) *Error {
	zone := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r.Zone)), ".")
	if zone == "" {
		return nil
	}
	owned := zone
	if reg, err := publicsuffix.EffectiveTLDPlusOne(zone); err == nil {
		owned = reg
	}
	if name == owned || strings.HasSuffix(name, "."+owned) ||
		name == zone || strings.HasSuffix(name, "."+zone) {
		return reject(CodePlatformZone, input, i18n.F(
			"%s es parte del dominio propio de la plataforma, %s, donde su subdominio se asigna automáticamente: escriba su propio dominio, por ejemplo www.example.com",
			"%s is part of the platform's own domain %s, where your subdomain is assigned for you: enter your own domain instead, for example www.example.com", name, owned))
	}
	return nil
}

// checkSuffix requires a name under a real public suffix and longer than it.
//
// The Public Suffix List has an ICANN section (TLDs and registry second
// levels such as co.uk) and a private section (github.io, eu.org, ...).
// Names under a private suffix are accepted: some are real delegations whose
// holders control DNS (x.eu.org), and registrable domains computed with the
// private section keep one customer's TXT proof from covering another's.
// Names that are a suffix, of either section, are refused: nobody owns them.
// A TLD absent from the list (the list's implicit "*" rule, reported as
// icann=false with a one-label suffix) is refused as unknown.
func checkSuffix(name, input string) *Error {
	suffix, icann := publicsuffix.PublicSuffix(name)
	tld := name[strings.LastIndexByte(name, '.')+1:]
	if !icann && !strings.Contains(suffix, ".") {
		return reject(CodeUnknownSuffix, input, i18n.F(
			"%q no es un dominio de primer nivel de internet: revise la terminación de %s, por ejemplo www.example.com",
			"%q is not a top-level domain on the public internet: check the ending of %s, for example www.example.com", "."+tld, name))
	}
	if specialUseTLDs[tld] {
		return reject(CodeSpecialUse, input, i18n.F(
			"los nombres %q no son sitios web de internet: escriba su propio dominio, por ejemplo www.example.com",
			"%q names are not websites on the public internet: enter your own domain, for example www.example.com", "."+tld))
	}
	if name == suffix {
		return reject(CodePublicSuffix, input, i18n.F(
			"%[1]s es un sufijo público que nadie puede poseer: escriba su dominio bajo él, por ejemplo www.example.%[1]s",
			"%[1]s is a public suffix that nobody can own: enter your domain under it, for example www.example.%[1]s", name))
	}
	return nil
}

// Unicode returns the display form of an ASCII hostname (xn-- labels decoded).
// Names that do not decode cleanly are returned unchanged: showing the ASCII
// is always safe, showing a half-decoded name is not.
func Unicode(ascii string) string {
	u, err := idna.Display.ToUnicode(ascii)
	if err != nil {
		return ascii
	}
	return u
}

// Registrable returns the registrable domain (eTLD+1) of a normalised name,
// e.g. impulse-max.com for www.impulse-max.com: the name DNS ownership proofs
// are placed under. The error is an *Error.
func Registrable(ascii string) (string, error) {
	reg, err := publicsuffix.EffectiveTLDPlusOne(ascii)
	if err != nil {
		return "", reject(CodePublicSuffix, ascii, i18n.F(
			"%q no tiene dominio registrable: escriba un nombre bajo un sufijo público, por ejemplo www.example.com",
			"%q has no registrable domain: enter a name under a public suffix, for example www.example.com", ascii))
	}
	return reg, nil
}

// IsApex reports whether ascii is its own registrable domain (impulse-max.com,
// not www.impulse-max.com). An apex cannot carry a CNAME, so verification
// and the instructions shown to the customer differ.
func IsApex(ascii string) bool {
	reg, err := Registrable(ascii)
	return err == nil && reg == ascii
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isHostByte reports whether c may appear in a label of the stored form.
func isHostByte(c byte) bool { return 'a' <= c && c <= 'z' || isDigit(c) || c == '-' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
