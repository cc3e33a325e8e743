package diagnose

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// RecursiveEvidence is what every configured resolver answers: the same check as
// POST /api/domains/{d}/verify, plus how long each resolver may keep its answer and whether it
// validated it (DNSSEC).
type RecursiveEvidence struct {
	Verified  bool               `json:"verified"`
	Reason    string             `json:"reason" doc:"The verification's stable reason code (verified, no_cname, wrong_target, resolvers_disagree, timeout, …)"`
	Method    string             `json:"method,omitempty"`
	Resolvers []ResolverEvidence `json:"resolvers"`
}

// ResolverEvidence is one resolver's view.
type ResolverEvidence struct {
	Resolver string   `json:"resolver"`
	Rcode    string   `json:"rcode"`
	Chain    []string `json:"chain"`
	A        []string `json:"a"`
	AAAA     []string `json:"aaaa"`
	TXT      []string `json:"txt"`
	Verified bool     `json:"verified"`
	Reason   string   `json:"reason"`
	Found    string   `json:"found,omitempty"`
	Error    string   `json:"error,omitempty"`
	// TTLSeconds is how much longer the resolver may serve this answer from its cache (the
	// remaining TTL it reports; for a negative answer, the SOA's negative TTL).
	TTLSeconds *uint32 `json:"ttl_seconds,omitempty"`
	// AD: the resolver validated the answer with DNSSEC. DNSSECBogus: it answers SERVFAIL, and
	// answers when asked not to validate (CD): it rejects the domain's signatures.
	AD          bool `json:"ad"`
	DNSSECBogus bool `json:"dnssec_bogus"`
}

// resolverView is one resolver's answer to "hostname A" with DO set, for TTLs and the AD bit.
type resolverView struct {
	resolver string
	rcode    int
	ttl      *uint32
	ad       bool
	bogus    bool
	err      error
}

// viewResolvers asks every resolver for the hostname's A records with DO, and again with CD when
// it answers SERVFAIL: a validating resolver that rejects the DNSSEC chain answers SERVFAIL
// unless told not to validate, which tells a broken chain apart from a broken server.
func (s *Service) viewResolvers(ctx context.Context, host string) []resolverView {
	rs := s.verifier.Resolvers()
	out := make([]resolverView, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			v := resolverView{resolver: r}
			resp, err := s.dns.ask(ctx, r, host, dns.TypeA, qflags{recursive: true, dnssec: true})
			if err != nil {
				v.err = err
				out[i] = v
				return
			}
			v.rcode, v.ad = resp.Rcode, resp.AuthenticatedData
			switch {
			case resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0:
				ttl := minTTL(resp.Answer)
				v.ttl = &ttl
			case resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError:
				if ttl, ok := negativeTTL(resp.Ns); ok {
					v.ttl = &ttl
				}
			case resp.Rcode == dns.RcodeServerFailure:
				cd, err := s.dns.ask(ctx, r, host, dns.TypeA, qflags{recursive: true, dnssec: true, noCheck: true})
				v.bogus = err == nil && (cd.Rcode == dns.RcodeSuccess || cd.Rcode == dns.RcodeNameError)
			}
			out[i] = v
		})
	}
	wg.Wait()
	return out
}

// recursivePart turns the verification and the resolvers' views into the part.
func recursivePart(d domainFacts, res dnsverify.Result, views []resolverView) (part, RecursiveEvidence) {
	ev := RecursiveEvidence{Verified: res.Verified, Reason: res.Reason, Method: res.Method}
	byResolver := map[string]resolverView{}
	for _, v := range views {
		byResolver[v.resolver] = v
	}
	var details []i18n.Text
	for _, r := range res.Resolvers {
		e := ResolverEvidence{Resolver: r.Resolver, Rcode: r.Rcode, Chain: r.Chain, A: r.A, AAAA: r.AAAA, TXT: r.TXT,
			Verified: r.Verified, Reason: r.Reason, Found: r.Found, Error: r.Error}
		if v, ok := byResolver[r.Resolver]; ok {
			e.TTLSeconds, e.AD, e.DNSSECBogus = v.ttl, v.ad, v.bogus
		}
		ev.Resolvers = append(ev.Resolvers, e)
		details = append(details, resolverDetail(d, e))
	}
	p := part{name: PartRecursive, title: titleRecursive, details: details}
	switch {
	case res.Verified:
		p.verdict, p.message = OK, msgRecursiveOK(d, res.Method)
	case res.Reason == dnsverify.ReasonTimeout || res.Reason == dnsverify.ReasonResolverError || res.Reason == dnsverify.ReasonInvalidRequest:
		p.verdict, p.message = Unknown, msgRecursiveNoAnswer
	case res.Reason == dnsverify.ReasonDisagree:
		p.verdict, p.message, p.fix = Warn, msgRecursiveDisagree(d, staleFor(ev)), fixWaitTTL
	default:
		p.verdict, p.message, p.fix = Fail, msgRecursiveWrong(d, res.Reason, deref(res.Found)), fixRecord(d, res.Reason)
	}
	return p, ev
}

// staleFor is the longest time a resolver that does not verify may keep its answer.
func staleFor(ev RecursiveEvidence) uint32 {
	var m uint32
	for _, r := range ev.Resolvers {
		if !r.Verified && r.TTLSeconds != nil && *r.TTLSeconds > m {
			m = *r.TTLSeconds
		}
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// resolverDetail is one resolver's line: what it answers, for how long, and whether it validated.
func resolverDetail(d domainFacts, e ResolverEvidence) i18n.Text {
	var what string
	switch {
	case e.Error != "":
		what = e.Error
	case len(e.Chain) > 0:
		what = "CNAME " + strings.Join(e.Chain, " → ")
	case len(e.A)+len(e.AAAA) > 0:
		what = strings.Join(append(prefixed("A ", e.A), prefixed("AAAA ", e.AAAA)...), ", ")
	default:
		what = e.Rcode
	}
	line := i18n.F("%s: %s", "%s: %s", e.Resolver, what)
	if e.TTLSeconds != nil {
		line = i18n.F("%s (en caché %s más)", "%s (cached %s more)", line, seconds(*e.TTLSeconds))
	}
	if e.AD {
		line = i18n.F("%s; validado con DNSSEC", "%s; DNSSEC-validated", line)
	}
	if e.DNSSECBogus {
		line = i18n.F("%s; rechaza las firmas DNSSEC de %s", "%s; rejects the DNSSEC signatures of %s", line, d.host)
	}
	return line
}

func prefixed(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

// seconds renders a TTL as people read it: "45 s", "5 min", "2 h".
func seconds(s uint32) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%d s", s)
	case s < 2*3600:
		return fmt.Sprintf("%d min", (s+59)/60)
	case s < 2*86400:
		return fmt.Sprintf("%d h", (s+3599)/3600)
	}
	return fmt.Sprintf("%d d", (s+86399)/86400)
}
