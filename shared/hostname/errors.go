package hostname

import "github.com/jeturing/sajet-domains/internal/i18n"

// Codes of the rejections NormalizeExternal, Registrable and ValidateSubdomain
// return. They are part of the REST contract (the problem+json "code"), so they
// never change once shipped; the messages may be reworded freely.
const (
	// CodeEmpty: nothing but spaces was entered.
	CodeEmpty = "hostname_empty"
	// CodeIsURL: a URL (scheme, path, query or fragment) was pasted.
	CodeIsURL = "hostname_is_url"
	// CodeIsEmail: an email address was entered.
	CodeIsEmail = "hostname_is_email"
	// CodeHasPort: the hostname carries a ":port".
	CodeHasPort = "hostname_has_port"
	// CodeWildcard: the name contains "*".
	CodeWildcard = "hostname_wildcard"
	// CodeIP: an IPv4 or IPv6 literal (or an all-numeric dotted name).
	CodeIP = "hostname_ip"
	// CodeTooLong: the ASCII form is longer than 253 octets (or the input is
	// absurdly long before conversion).
	CodeTooLong = "hostname_too_long"
	// CodeLabelInvalid: a character or a label breaks the hostname syntax
	// (spaces, underscores, empty labels, leading or trailing '-', labels
	// over 63 octets, "--" in positions 3–4 outside an xn-- label).
	CodeLabelInvalid = "hostname_label_invalid"
	// CodeIDNInvalid: an internationalised name that the IDNA registration
	// profile rejects.
	CodeIDNInvalid = "hostname_idn_invalid"
	// CodeSingleLabel: a name without a dot, including "localhost".
	CodeSingleLabel = "hostname_single_label"
	// CodeUnknownSuffix: the top-level domain is not on the public internet
	// (not in the Public Suffix List).
	CodeUnknownSuffix = "hostname_unknown_suffix"
	// CodeSpecialUse: a special-use name (RFC 6761 and later) that is in the
	// Public Suffix List but cannot carry a customer's website (.arpa, .onion).
	CodeSpecialUse = "hostname_special_use"
	// CodePublicSuffix: the name is itself a public suffix (com, co.uk,
	// github.io), which nobody can own.
	CodePublicSuffix = "hostname_public_suffix"
	// CodePlatformZone: the name is the platform's own domain or inside it.
	CodePlatformZone = "hostname_platform_zone"
	// CodeMixedScript: a label mixes alphabets the way no language writes (a Cyrillic letter
	// among Latin ones): UTS #39's highly restrictive profile.
	CodeMixedScript = "hostname_mixed_script"

	// CodeSubdomainEmpty: no subdomain label was given.
	CodeSubdomainEmpty = "subdomain_empty"
	// CodeSubdomainTooLong: the label is longer than 63 octets.
	CodeSubdomainTooLong = "subdomain_too_long"
	// CodeSubdomainInvalid: the label contains something outside [a-z0-9-]
	// (upper case, dots, underscores, non-ASCII).
	CodeSubdomainInvalid = "subdomain_invalid"
	// CodeSubdomainHyphen: the label starts or ends with '-'.
	CodeSubdomainHyphen = "subdomain_hyphen"
	// CodeSubdomainDoubleHyphen: "--" in positions 3–4, which DNS reserves for
	// ACE prefixes such as "xn--".
	CodeSubdomainDoubleHyphen = "subdomain_double_hyphen"
	// CodeSubdomainBlocked: the label is reserved by the platform.
	CodeSubdomainBlocked = "subdomain_blocked"
)

// Error is a rejection the user can act on. Code is stable for machines;
// Message tells the user what to type instead, in Spanish and English
// (internal/i18n), and is safe to show verbatim; Suggestion, when set, is the
// exact text to type instead (a form offers it one click away); Input is what
// was given, unmodified, so logs and API responses can echo it.
type Error struct {
	Code       string
	Message    i18n.Text
	Suggestion string
	Input      string
}

// Error returns the English message alone: it is written for the person who
// typed the input, and wrapping callers add their own context.
func (e *Error) Error() string { return e.Message.EN }

func reject(code, input string, message i18n.Text) *Error {
	return &Error{Code: code, Message: message, Input: input}
}
