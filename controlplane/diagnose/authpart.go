package diagnose

import (
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// serverState classifies one server's answer against what the domain needs.
type serverState int

const (
	stateRight       serverState = iota // serves a CNAME (chain) reaching the platform, or the flattened addresses
	stateWrong                          // serves something else
	stateMissing                        // NXDOMAIN
	stateLame                           // REFUSED, SERVFAIL or no AA: does not serve the zone
	stateUnreachable                    // no answer
)

// judgeServer decides one server's state. passThrough are names resolvers' chains pass through on
// their way to the platform (a customer's CNAME to their own CDN that points at us is right);
// expectedAddrs are the platform name's addresses (for a flattened apex).
func judgeServer(d domainFacts, a AuthAnswer, passThrough map[string]bool, expectedAddrs []string) serverState {
	switch {
	case a.Error != "":
		return stateUnreachable
	case a.Rcode == "REFUSED" || a.Rcode == "SERVFAIL" || !a.Authoritative:
		return stateLame
	case a.Rcode == "NXDOMAIN":
		return stateMissing
	}
	for _, c := range a.Chain {
		if d.accepted(c) {
			return stateRight
		}
	}
	if n := len(a.Chain); n > 0 && passThrough[a.Chain[n-1]] {
		return stateRight
	}
	if n := len(a.Chain); n == 0 && d.apex && len(expectedAddrs) > 0 {
		got := append(append([]string(nil), a.A...), a.AAAA...)
		slices.Sort(got)
		if slices.Equal(got, expectedAddrs) {
			return stateRight
		}
	}
	return stateWrong
}

// authoritativePart judges what the zone's own servers serve.
func authoritativePart(d domainFacts, ad *authData, rec RecursiveEvidence, expectedAddrs []string) (part, AuthEvidence) {
	ev := AuthEvidence{Zone: ad.zone, Parent: ad.parent, Delegated: ad.delegated, NameServers: ad.nameServers}
	p := part{name: PartAuthoritative, title: titleAuthoritative}
	if !ad.problem.IsZero() {
		ev.Error = ad.problem.EN
		p.message = ad.problem
		p.verdict = Unknown
		if ad.undelegated {
			p.verdict, p.fix = Fail, fixRegister(ad.zone)
		}
		return p, ev
	}
	passThrough := map[string]bool{}
	for _, r := range rec.Resolvers {
		if r.Verified {
			for _, c := range r.Chain {
				passThrough[c] = true
			}
		}
	}
	var right, wrong, broken []AuthAnswer
	var sample AuthAnswer
	var sampleState serverState
	for _, sv := range ad.servers {
		a := answerOf(d.host, sv)
		ev.Answers = append(ev.Answers, a)
		st := judgeServer(d, a, passThrough, expectedAddrs)
		switch st {
		case stateRight:
			right = append(right, a)
		case stateWrong, stateMissing:
			if len(wrong) == 0 {
				sample, sampleState = a, st
			}
			wrong = append(wrong, a)
		default:
			broken = append(broken, a)
		}
		if (st == stateRight || st == stateWrong || st == stateMissing) && a.TTLSeconds != nil &&
			(ev.CacheSeconds == nil || *a.TTLSeconds > *ev.CacheSeconds) {
			ttl := *a.TTLSeconds
			ev.CacheSeconds = &ttl
		}
		p.details = append(p.details, authDetail(a, st))
	}
	cache := uint32(0)
	if ev.CacheSeconds != nil {
		cache = *ev.CacheSeconds
	}
	servers := nsNames(ad.nameServers)
	switch {
	case len(right) == 0 && len(wrong) == 0:
		p.verdict, p.message = Fail, msgAuthNoneAnswer(ad.zone, servers)
		p.fix = fixNameServers(ad.zone, servers)
		if rec.Verified {
			p.verdict, p.fix = Unknown, i18n.Text{}
		}
	case len(right) == 0:
		p.verdict = Fail
		p.message = msgAuthWrong(d, sample, sampleState == stateMissing, servers)
		p.fix = fixAuthRecord(d, servers, cache)
	case len(wrong) > 0:
		p.verdict = Warn
		p.message = msgAuthDisagree(d, serversOf(wrong), serialsOf(right), serialsOf(wrong))
		p.fix = fixSecondaries(ad.zone)
	case len(broken) > 0:
		p.verdict, p.message, p.fix = Warn, msgAuthSomeBroken(d, serversOf(broken)), fixNameServers(ad.zone, servers)
	case !rec.Verified:
		p.verdict, p.message, p.fix = Warn, msgAuthAheadOfResolvers(d, staleFor(rec)), fixWaitTTL
	default:
		p.verdict, p.message = OK, msgAuthOK(d, servers, cache)
	}
	return p, ev
}

func nsNames(ns []NameServer) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

func serversOf(as []AuthAnswer) []string {
	var out []string
	for _, a := range as {
		if !slices.Contains(out, a.Server) {
			out = append(out, a.Server)
		}
	}
	return out
}

func serialsOf(as []AuthAnswer) []uint32 {
	var out []uint32
	for _, a := range as {
		if a.Serial != nil && !slices.Contains(out, *a.Serial) {
			out = append(out, *a.Serial)
		}
	}
	return out
}

// authDetail is one server's line.
func authDetail(a AuthAnswer, st serverState) i18n.Text {
	who := a.Server
	if a.Address != "" {
		who += " (" + a.Address + ")"
	}
	var what string
	switch {
	case a.Error != "":
		return i18n.F("%s: sin respuesta (%s)", "%s: no answer (%s)", who, a.Error)
	case st == stateLame:
		return i18n.F("%s: no sirve la zona (%s%s)", "%s: does not serve the zone (%s%s)", who, a.Rcode, noAA(a))
	case len(a.Chain) > 0:
		what = "CNAME " + strings.Join(a.Chain, " → ")
	case len(a.A)+len(a.AAAA) > 0:
		what = strings.Join(append(prefixed("A ", a.A), prefixed("AAAA ", a.AAAA)...), ", ")
	case a.Rcode == "NXDOMAIN":
		what = "NXDOMAIN"
	default:
		what = "NODATA"
	}
	line := i18n.Same(who + ": " + what)
	if len(a.Beside) > 0 {
		line = i18n.F("%s, y junto al CNAME %s", "%s, and beside the CNAME %s", line, strings.Join(a.Beside, ", "))
	}
	if a.TTLSeconds != nil {
		line = i18n.F("%s (TTL %s)", "%s (TTL %s)", line, seconds(*a.TTLSeconds))
	}
	if a.Serial != nil {
		line = i18n.F("%s, serie %d", "%s, serial %d", line, *a.Serial)
	}
	return line
}

func noAA(a AuthAnswer) string {
	if !a.Authoritative && a.Rcode == rcodeName(dns.RcodeSuccess) {
		return ", AA=0"
	}
	return ""
}
