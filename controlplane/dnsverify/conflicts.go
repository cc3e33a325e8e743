package dnsverify

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Conflicts are records that stand in the way of the setup even when they are not why a check
// failed. Only what costs at most a query or two is detected; each is one sentence naming the
// record so the customer can find it in their DNS panel.

// caaFinding is the result of the CAA lookup for a hostname.
type caaFinding struct {
	conflicts []i18n.Text
}

// checkCAA finds the CAA record set that governs host, as a CA does (RFC 8659 §3: the first
// non-empty set climbing from host towards the root; the resolver follows CNAMEs on the way), and
// reports it when it allows none of the CAs our edge certificates come from. The climb stops at
// the registrable domain: above it sit the TLD's records, which the customer cannot change. A
// failed lookup reports nothing: CAA is advice here, and the main queries already report a broken
// resolver.
func (v *Verifier) checkCAA(ctx context.Context, resolver, host string) caaFinding {
	top, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		top = host
	}
	for name := host; ; {
		resp, err := v.query(ctx, resolver, name, dns.TypeCAA)
		if err != nil {
			return caaFinding{}
		}
		var set []*dns.CAA
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CAA); ok {
				set = append(set, c)
			}
		}
		if len(set) > 0 {
			if msg := v.caaBlocks(name, set); !msg.IsZero() {
				return caaFinding{conflicts: []i18n.Text{msg}}
			}
			return caaFinding{}
		}
		if name == top {
			return caaFinding{}
		}
		_, parent, ok := strings.Cut(name, ".")
		if !ok || parent == "" {
			return caaFinding{}
		}
		name = parent
	}
}

// caaBlocks returns a sentence when the CAA set at owner forbids every issuer we rely on.
// Per RFC 8659 §4.2 and §4.3, only "issue" properties restrict non-wildcard certificates, a set
// without any of them allows everyone, and an unknown property with the critical flag forbids
// everyone.
func (v *Verifier) caaBlocks(owner string, set []*dns.CAA) i18n.Text {
	var allowed []string
	restricted := false
	for _, c := range set {
		tag := strings.ToLower(c.Tag)
		switch tag {
		case "issue":
			restricted = true
			issuer, _, _ := strings.Cut(c.Value, ";")
			if issuer = strings.ToLower(strings.TrimSpace(issuer)); issuer != "" {
				allowed = append(allowed, issuer)
			}
		case "issuewild", "iodef", "issuemail", "issuevmc", "contactemail", "contactphone":
		default:
			if c.Flag&128 != 0 {
				return i18n.F("El registro CAA de %s tiene la propiedad crítica desconocida %q, que impide emitir cualquier certificado: elimínela",
					"The CAA record of %s has the unknown critical property %q, which forbids every certificate: remove it", owner, c.Tag)
			}
		}
	}
	if !restricted {
		return i18n.Text{}
	}
	for _, want := range v.caaIssuers {
		if slices.Contains(allowed, want) {
			return i18n.Text{}
		}
	}
	shown := i18n.T("ninguna autoridad", "no authority")
	if len(allowed) > 0 {
		shown = i18n.Same(strings.Join(allowed, ", "))
	}
	return i18n.F("El registro CAA de %s solo autoriza a %s, lo que impide emitir el certificado; autorice a alguna de: %s (p. ej. %s CAA 0 issue %q)",
		"The CAA record of %s allows only %s, which forbids the certificate; allow one of: %s (e.g. %s CAA 0 issue %q)",
		owner, shown, strings.Join(v.caaIssuers, ", "), owner, v.caaIssuers[0])
}

func conflictBesideCNAME(host string, rrs []dns.RR) i18n.Text {
	return i18n.F("%s tiene a la vez un CNAME y registros %s; elimine esos registros (un CNAME no admite otros datos)",
		"%s has both a CNAME and %s records; remove those records (a CNAME allows no other data)",
		host, formatRRs(rrs))
}

func conflictAddressesInstead(host string, a, aaaa []netip.Addr) i18n.Text {
	return i18n.F("%s tiene registros %s en lugar de un CNAME; elimínelos antes de crear el CNAME",
		"%s has %s records instead of a CNAME; remove them before creating the CNAME",
		host, formatAddrs(a, aaaa))
}

func conflictTargetMissing(target string) i18n.Text {
	return i18n.F("El destino del CNAME, %s, no existe (NXDOMAIN)", "The CNAME's target, %s, does not exist (NXDOMAIN)", target)
}

func conflictTXTOther(name string, values []string) i18n.Text {
	return i18n.F("El registro TXT %s contiene %s, que no es el token de verificación de este dominio",
		"The TXT record %s holds %s, which is not this domain's verification token", name, quoteAll(values))
}

// conflictsStale names each apex address that is not one of Expected's: typically an A or AAAA
// left over from the previous hosting that the flattening provider serves next to (or instead of)
// the flattened ones.
func conflictsStale(host, expected string, a, aaaa, expA, expAAAA []netip.Addr) []i18n.Text {
	var out []i18n.Text
	for _, x := range a {
		if !slices.Contains(expA, x) {
			out = append(out, i18n.F("Registro A obsoleto %s en el dominio raíz %s (no es una dirección de %s)",
				"Stale A record %s at the root domain %s (not an address of %s)", x, host, expected))
		}
	}
	for _, x := range aaaa {
		if !slices.Contains(expAAAA, x) {
			out = append(out, i18n.F("Registro AAAA obsoleto %s en el dominio raíz %s (no es una dirección de %s)",
				"Stale AAAA record %s at the root domain %s (not an address of %s)", x, host, expected))
		}
	}
	return out
}

// formatAddrs renders addresses as "A 192.0.2.1, A 192.0.2.2, AAAA 2001:db8::1".
func formatAddrs(a, aaaa []netip.Addr) string {
	parts := make([]string, 0, len(a)+len(aaaa))
	for _, x := range a {
		parts = append(parts, "A "+x.String())
	}
	for _, x := range aaaa {
		parts = append(parts, "AAAA "+x.String())
	}
	return strings.Join(parts, ", ")
}

func formatRRs(rrs []dns.RR) string {
	var a, aaaa []netip.Addr
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.A:
			if x, ok := netip.AddrFromSlice(r.A.To4()); ok {
				a = append(a, x)
			}
		case *dns.AAAA:
			if x, ok := netip.AddrFromSlice(r.AAAA.To16()); ok {
				aaaa = append(aaaa, x)
			}
		}
	}
	return formatAddrs(sortAddrs(a), sortAddrs(aaaa))
}

func quoteAll(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
