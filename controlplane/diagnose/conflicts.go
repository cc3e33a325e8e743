package diagnose

import (
	"context"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Conflict is a record that stands in the way of the setup, even when it is not why another
// part fails.
type Conflict struct {
	Kind    string   `json:"kind" doc:"cname_with_data, apex_cname, addresses_instead, stale_addresses, acme_delegated, acme_stale"`
	Verdict Verdict  `json:"verdict" enum:"warn,fail"`
	Records []string `json:"records"`
	Message string   `json:"message"`
}

// Conflict kinds.
const (
	conflictCNAMEWithData  = "cname_with_data"   // A/AAAA beside the hostname's CNAME
	conflictApexCNAME      = "apex_cname"        // a CNAME at the zone's apex
	conflictAddresses      = "addresses_instead" // A/AAAA instead of the CNAME (not an apex)
	conflictStaleAddresses = "stale_addresses"   // an apex's addresses that are not the platform's
	conflictACMEDelegated  = "acme_delegated"    // _acme-challenge delegated to another provider
	conflictACMEStale      = "acme_stale"        // _acme-challenge TXT values Cloudflare did not ask for
	acmeLabel              = "_acme-challenge."
)

// ConflictsEvidence lists the conflicts found.
type ConflictsEvidence struct {
	Conflicts []Conflict `json:"conflicts"`
}

// acmeView is what resolvers answer at _acme-challenge.<host>.
type acmeView struct {
	cname string
	txt   []string
	err   error
}

func (s *Service) lookupACME(ctx context.Context, host string) acmeView {
	var v acmeView
	name := acmeLabel + host
	resp, err := s.resolve(ctx, name, dns.TypeTXT)
	if err != nil {
		v.err = err
		return v
	}
	if c := rrsOf(resp.Answer, name, dns.TypeCNAME); len(c) > 0 {
		v.cname = norm(c[0].(*dns.CNAME).Target)
	}
	for _, rr := range resp.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			v.txt = append(v.txt, strings.Join(t.Txt, ""))
		}
	}
	return v
}

// conflictsPart names the records in the way: what the zone's own servers serve (the truth) and,
// when they could not be asked, what the resolvers see.
func conflictsPart(d domainFacts, ad *authData, rec RecursiveEvidence, expectedAddrs []string, acme acmeView, wantTXT []string) (part, ConflictsEvidence) {
	ev := ConflictsEvidence{Conflicts: []Conflict{}}
	p := part{name: PartConflicts, title: titleConflicts}
	add := func(kind string, v Verdict, records []string, msg, fix i18n.Text) {
		ev.Conflicts = append(ev.Conflicts, Conflict{Kind: kind, Verdict: v, Records: records})
		p.details = append(p.details, msg)
		if p.verdict.rank() < v.rank() || p.verdict == "" {
			p.verdict, p.message, p.fix = v, msg, fix
		}
	}
	// One view of what the hostname holds: the first authoritative answer, else a resolver's.
	var chain, a, aaaa, beside []string
	seen := false
	for _, sv := range ad.servers {
		if ans := answerOf(d.host, sv); ans.Error == "" && ans.Authoritative {
			chain, a, aaaa, beside, seen = ans.Chain, ans.A, ans.AAAA, ans.Beside, true
			break
		}
	}
	if !seen {
		for _, r := range rec.Resolvers {
			if r.Error == "" {
				chain, a, aaaa, seen = r.Chain, r.A, r.AAAA, true
				if len(chain) > 0 {
					a, aaaa = nil, nil // a resolver's addresses at the end of a chain are the target's
				}
				break
			}
		}
	}
	if !seen && acme.err != nil {
		p.verdict, p.message = Unknown, msgConflictsUnknown
		return p, ev
	}
	addrs := append(prefixed("A ", a), prefixed("AAAA ", aaaa)...)
	switch {
	case len(beside) > 0:
		add(conflictCNAMEWithData, Fail, beside, msgCNAMEWithData(d.host, beside), fixDelete(d.host, beside))
	case len(chain) > 0 && d.apex && ad.zone != "" && sameName(ad.zone, d.host):
		add(conflictApexCNAME, Fail, []string{"CNAME " + chain[0]}, msgApexCNAME(d.host), fixApexCNAME(d))
	case len(chain) == 0 && len(addrs) > 0 && !d.apex:
		add(conflictAddresses, Fail, addrs, msgAddressesInstead(d.host, addrs), fixAddressesInstead(d, addrs))
	case len(chain) == 0 && len(addrs) > 0 && d.apex && len(expectedAddrs) > 0:
		var stale []string
		for _, x := range append(append([]string(nil), a...), aaaa...) {
			if !slices.Contains(expectedAddrs, x) {
				stale = append(stale, x)
			}
		}
		if len(stale) > 0 {
			add(conflictStaleAddresses, Fail, stale, msgStaleAddresses(d.host, stale, d.expected), fixStaleAddresses(d, stale))
		}
	}
	if acme.cname != "" && !strings.HasSuffix(acme.cname, ".cloudflare.com") && !strings.HasSuffix(acme.cname, "."+norm(d.expected)) {
		add(conflictACMEDelegated, Warn, []string{"CNAME " + acme.cname}, msgACMEDelegated(d.host, acme.cname), fixACME(d.host))
	} else if len(acme.txt) > 0 && wantTXT != nil {
		var stale []string
		for _, v := range acme.txt {
			if !slices.Contains(wantTXT, v) {
				stale = append(stale, `"`+v+`"`)
			}
		}
		if len(stale) > 0 {
			add(conflictACMEStale, Warn, stale, msgACMEStale(d.host, stale), fixACME(d.host))
		}
	}
	if p.verdict == "" {
		p.verdict, p.message = OK, msgConflictsNone
	}
	return p, ev
}
