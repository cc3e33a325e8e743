package diagnose

import (
	"context"
	"strings"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare/issuers"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// CAAEvidence is the CAA record set that governs the hostname's certificate and what it allows.
type CAAEvidence struct {
	Owner   string   `json:"owner,omitempty" doc:"The name whose CAA set applies (the hostname or the closest ancestor with one)"`
	Records []string `json:"records,omitempty"`
	// Allowed and Refused are Cloudflare's certificate authorities (by CAA issuer domain) the set
	// allows and refuses; Cloudflare issues from any allowed one.
	Allowed []string `json:"allowed"`
	Refused []string `json:"refused,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// lookupCAA finds the CAA set that governs host as a CA does (RFC 8659 §3): the first non-empty
// set climbing from host towards its registrable domain (above it sit the TLD's records, which
// the customer cannot change); the resolver follows a CNAME on the way.
func (s *Service) lookupCAA(ctx context.Context, host string) (owner string, set []*dns.CAA, err error) {
	top, perr := publicsuffix.EffectiveTLDPlusOne(host)
	if perr != nil {
		top = host
	}
	for name := host; ; {
		resp, err := s.resolve(ctx, name, dns.TypeCAA)
		if err != nil {
			return "", nil, err
		}
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CAA); ok {
				set = append(set, c)
			}
		}
		if len(set) > 0 {
			return name, set, nil
		}
		if name == top {
			return "", nil, nil
		}
		_, parent, ok := strings.Cut(name, ".")
		if !ok || parent == "" {
			return "", nil, nil
		}
		name = parent
	}
}

// caaPart judges whether Cloudflare can issue (and renew) the hostname's certificate.
func caaPart(d domainFacts, owner string, set []*dns.CAA, err error) (part, CAAEvidence) {
	ev := CAAEvidence{Owner: owner}
	p := part{name: PartCAA, title: titleCAA}
	if err != nil {
		ev.Error = shortError(err)
		p.verdict, p.message = Unknown, msgCAAUnknown(ev.Error)
		return p, ev
	}
	props := make([]issuers.Property, 0, len(set))
	for _, c := range set {
		props = append(props, issuers.Property{Flag: c.Flag, Tag: c.Tag, Value: c.Value})
		ev.Records = append(ev.Records, strings.ReplaceAll(c.String(), "\t", " "))
	}
	dec := issuers.Evaluate(props)
	ev.Allowed = []string{}
	for _, ca := range issuers.All() {
		if containsCA(dec.Allowed, ca) && dec.Critical == "" {
			ev.Allowed = append(ev.Allowed, ca.CAA)
		} else {
			ev.Refused = append(ev.Refused, ca.CAA)
		}
	}
	switch {
	case len(set) == 0:
		p.verdict, p.message = OK, msgCAANone(d.host)
	case dec.Critical != "":
		p.verdict, p.message, p.fix = Fail, msgCAACritical(owner, dec.Critical), fixCAACritical(owner, dec.Critical)
	case dec.Blocks():
		p.verdict, p.message, p.fix = Fail, msgCAABlocks(owner, dec.Named), fixCAA(owner)
	default:
		p.verdict, p.message = OK, msgCAAAllows(owner, ev.Allowed)
	}
	for _, r := range ev.Records {
		p.details = append(p.details, i18n.Same(r))
	}
	return p, ev
}

func containsCA(cas []issuers.CA, c issuers.CA) bool {
	for _, x := range cas {
		if x.CAA == c.CAA {
			return true
		}
	}
	return false
}
