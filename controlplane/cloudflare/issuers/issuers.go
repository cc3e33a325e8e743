// Package issuers is the one list of the certificate authorities Cloudflare issues edge
// certificates from for Cloudflare for SaaS custom hostnames, and the CAA rule that says whether
// a domain's CAA records let them issue. DNS verification (controlplane/dnsverify) and the
// diagnostics report (controlplane/diagnose) both read it, so a change of Cloudflare's CAs is
// one edit here.
//
// Source: developers.cloudflare.com/ssl/reference/certificate-authorities/ (the "SSL for SaaS"
// row: Let's Encrypt, Google Trust Services, SSL.com; DigiCert is no longer used for new
// certificates) and developers.cloudflare.com/ssl/edge-certificates/caa-records/ (the CAA
// issuer domain of each: letsencrypt.org, pki.goog, ssl.com). With the default CA, Cloudflare
// checks the customer's CAA records before requesting a certificate and uses a CA they allow
// (developers.cloudflare.com/cloudflare-for-platforms/cloudflare-for-saas/security/
// certificate-management/issue-and-validate/issue-certificates/), so one allowed CA is enough.
package issuers

import (
	"slices"
	"strings"
)

// CA is a certificate authority Cloudflare issues custom hostname certificates from.
type CA struct {
	Name string // as Cloudflare's documentation names it
	CAA  string // the issuer domain a CAA "issue" property names to allow it
}

// cas is the list; see the package comment for where it comes from.
var cas = []CA{
	{Name: "Let's Encrypt", CAA: "letsencrypt.org"},
	{Name: "Google Trust Services", CAA: "pki.goog"},
	{Name: "SSL.com", CAA: "ssl.com"},
}

// All returns Cloudflare's certificate authorities, in the order of Cloudflare's documentation.
func All() []CA { return slices.Clone(cas) }

// CAADomains returns the CAA issuer domains of All, in order.
func CAADomains() []string {
	out := make([]string, len(cas))
	for i, c := range cas {
		out[i] = c.CAA
	}
	return out
}

// Property is one CAA record: flags, tag and value as published (RFC 8659 §4.1).
type Property struct {
	Flag  uint8
	Tag   string
	Value string
}

// Decision is what a CAA record set means for Cloudflare's certificate authorities.
type Decision struct {
	// Restricted: the set has at least one "issue" property, so only the CAs it names may issue.
	Restricted bool
	// Named are the issuer domains the set's "issue" properties name (lower case, parameters
	// dropped; "" for an "issue ;" that forbids every CA), in order.
	Named []string
	// Allowed are Cloudflare's CAs the set allows (all of them when it is not restricted).
	Allowed []CA
	// Critical is the tag of an unknown property with the critical flag: no CA may issue at all
	// (RFC 8659 §4.1). Empty otherwise.
	Critical string
}

// Blocks reports whether no Cloudflare CA may issue: the custom hostname's certificate cannot be
// issued or renewed.
func (d Decision) Blocks() bool { return d.Critical != "" || len(d.Allowed) == 0 }

// Evaluate applies RFC 8659 to the CAA record set that governs a hostname (the first non-empty
// set climbing from the hostname to its registrable domain): only "issue" properties restrict
// certificates that are not wildcards (§4.2, §4.3), a set without one allows every CA, and an
// unknown property with the critical flag (128) forbids every CA.
func Evaluate(set []Property) Decision {
	var d Decision
	for _, p := range set {
		switch tag := strings.ToLower(p.Tag); tag {
		case "issue":
			d.Restricted = true
			issuer, _, _ := strings.Cut(p.Value, ";")
			d.Named = append(d.Named, strings.ToLower(strings.TrimSpace(issuer)))
		case "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone":
		default:
			if p.Flag&128 != 0 && d.Critical == "" {
				d.Critical = p.Tag
			}
		}
	}
	for _, c := range cas {
		if !d.Restricted || slices.Contains(d.Named, c.CAA) {
			d.Allowed = append(d.Allowed, c)
		}
	}
	return d
}
