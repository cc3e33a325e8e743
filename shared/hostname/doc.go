// Package hostname holds the rules for customers' hostnames: how what a
// customer types becomes the name the platform stores, which names are
// refused and why, and how the platform subdomain (impulse-max.sajet.us for
// www.impulse-max.com) is derived. The REST API applies them on input and
// the agent may re-check what it is sent, so both sides agree by importing
// one implementation.
//
// # External hostnames
//
// Rules.NormalizeExternal trims spaces, lower-cases, drops one trailing dot,
// converts internationalised names to punycode and validates. Every rejection
// is an *Error whose Code is stable (the API's problem+json code) and whose
// Message says what to type instead. The decisions behind the rules:
//
//   - A pasted URL is rejected, never stripped, and the message names the
//     host we found ("enter the hostname only: www.x.com"). Guessing would
//     store a name nobody typed; a URL's host can differ from what the user
//     meant (a redirect, a link from another site), and the cost of asking is
//     one retype.
//   - IDNs use the IDNA2008 registration profile (RFC 5891 §4), which maps
//     nothing: input that is only valid after browser-style mapping
//     (decomposed accents, full-width letters, "。") is refused with the
//     mapped form as the suggestion. What is stored is then always something
//     the customer saw and confirmed. Letter case is the exception: "Café.com"
//     and "CAFÉ.COM" are accepted as xn--caf-dma.com.
//   - Syntax follows RFC 1035/1123 for the stored ASCII form: at most 253
//     octets, labels of 1–63 [a-z0-9-] that neither start nor end with '-'.
//     "--" in positions 3–4 is refused except in xn-- labels, because it is
//     reserved for ACE prefixes and registries will not register it.
//     Underscores are refused: they are not valid in hostnames and
//     certificates cannot cover them.
//   - The name must sit under a public suffix from the Public Suffix List and
//     be longer than it. A TLD absent from the list (.invalidtld, .local,
//     .internal) is unknown; the special-use .arpa and .onion are refused
//     though listed. Names under a private-section suffix (x.github.io,
//     x.eu.org) are accepted, since some are genuine delegations; a name that
//     is a suffix of either section (com, co.uk, github.io) is refused because
//     nobody owns it.
//   - Names in the platform zone's registrable domain (sajet.us and
//     everything under it) are refused: they are ours, and letting a customer
//     claim one would let them route a platform hostname to their container.
//   - IP literals, ports, wildcards, email addresses, single labels and
//     localhost are refused with their own codes.
//
// Normalisation is idempotent: NormalizeExternal(x) == x for every accepted
// x, and NormalizeExternal(Unicode(x)) == x. The database stores the
// normalised form and its unique index is what stops two customers claiming
// one name, so two spellings of a name must never normalise differently, and
// re-validating a stored name (after an upgrade, on the agent) must never
// change or refuse it. FuzzNormalizeExternal checks both properties.
//
// # Platform subdomains
//
// SubdomainBase derives a label from a normalised name (the registrable name
// without its suffix, preceded by any deeper labels except a leading "www");
// Candidate extends it deterministically (impulse-max, impulse-max-2, …) for
// when it is blocked or taken. Rules.ValidateSubdomain applies the same label
// rules to a subdomain a caller asks for explicitly. The reserved labels are
// data, in blocklist.txt, plus Rules.ExtraBlocked from configuration.
//
// Nothing here is mutable after start-up: Rules is a value, and the parsed
// blocklist and IDNA profile are built once and only read.
package hostname
