package dnsverify

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// matchKind says which accepted target a CNAME chain reached.
type matchKind int

const (
	noMatch matchKind = iota
	matchExpected
	matchTunnel
)

// chainWalk is what following the hostname's CNAME chain through one resolver found.
type chainWalk struct {
	hops    []string  // CNAME targets in order, lower case, no trailing dot
	matched matchKind // which accepted target ended the walk, if any
	target  string    // the matching hop
	loop    bool      // a target repeated an earlier name
	tooLong bool      // more than maxHops CNAMEs
	// final is the last name reached and finalRcode the rcode the resolver gave for it: after
	// RFC 6604 the rcode of a chased answer describes the end of the chain, so NXDOMAIN beside a
	// CNAME means "the target does not exist", not "the hostname does not exist".
	final      string
	finalRcode int
	// addrs are the A records of the last answer: the addresses the chain ends at.
	addrs []netip.Addr
	// besideCNAME are records the hostname has next to its own CNAME (a broken zone).
	besideCNAME []dns.RR
	// err is set when a query for a later hop got no answer, so the walk is incomplete.
	err *queryError
}

// nextHop asks the resolver about one name of the chain; walkChain calls it only when the answer
// it holds does not already contain that part of the chain.
type nextHop func(name string) (*dns.Msg, error)

// walkChain follows host's CNAME chain starting from first, the resolver's answer to "host A".
// Recursive resolvers put the whole chain in that one answer, so usually no further query is
// needed; a name whose data the answer lacks (an authoritative-only server, a resolver that stopped
// chasing) is asked for directly, at most once per name. The walk stops at the first accepted
// target, at a repeated name (loop), after maxHops CNAMEs, or where the chain ends.
func walkChain(host string, first *dns.Msg, maxHops int, match func(string) matchKind, next nextHop) chainWalk {
	w := chainWalk{final: host, finalRcode: first.Rcode}
	msg := first
	cur := host
	seen := map[string]bool{host: true}
	asked := map[string]bool{host: true}

	for {
		target, ok := cnameOf(msg, cur)
		if !ok {
			if len(w.hops) == 0 || asked[cur] || msg.Rcode != dns.RcodeSuccess || len(addrsOf(msg, dns.TypeA, "")) > 0 {
				break
			}
			// The answer ends at a CNAME target without saying anything about it: ask.
			asked[cur] = true
			resp, err := next(cur)
			if err != nil {
				w.err = asQueryError(err)
				break
			}
			msg = resp
			w.finalRcode = resp.Rcode
			continue
		}
		if len(w.hops) >= maxHops {
			w.tooLong = true
			break
		}
		w.hops = append(w.hops, target)
		w.final = target
		if k := match(target); k != noMatch {
			w.matched, w.target = k, target
			break
		}
		if seen[target] {
			w.loop = true
			break
		}
		seen[target] = true
		cur = target
	}

	w.addrs = addrsOf(msg, dns.TypeA, "")
	if len(w.hops) > 0 {
		w.besideCNAME = recordsAt(first, host, dns.TypeA, dns.TypeAAAA)
		// Addresses owned by the hostname itself belong to the broken zone, not to the chain.
		w.addrs = addrsOf(msg, dns.TypeA, host)
	}
	return w
}

// cnameOf returns the CNAME target of owner in msg's answer section.
func cnameOf(msg *dns.Msg, owner string) (string, bool) {
	for _, rr := range msg.Answer {
		if c, ok := rr.(*dns.CNAME); ok && sameName(c.Hdr.Name, owner) {
			return normName(c.Target), true
		}
	}
	return "", false
}

// addrsOf returns the addresses of type rrtype (A or AAAA) in msg's answer section, skipping those
// owned by exclude. Any other owner is fine: a resolver's answer to "name A" holds only the chain
// and the addresses at its end.
func addrsOf(msg *dns.Msg, rrtype uint16, exclude string) []netip.Addr {
	var out []netip.Addr
	for _, rr := range msg.Answer {
		if exclude != "" && sameName(rr.Header().Name, exclude) {
			continue
		}
		var a netip.Addr
		var ok bool
		switch r := rr.(type) {
		case *dns.A:
			if rrtype != dns.TypeA {
				continue
			}
			a, ok = netip.AddrFromSlice(r.A.To4())
		case *dns.AAAA:
			if rrtype != dns.TypeAAAA {
				continue
			}
			a, ok = netip.AddrFromSlice(r.AAAA.To16())
		default:
			continue
		}
		if ok {
			out = append(out, a.Unmap())
		}
	}
	return sortAddrs(out)
}

// recordsAt returns the records of the given types owned by owner.
func recordsAt(msg *dns.Msg, owner string, types ...uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range msg.Answer {
		if sameName(rr.Header().Name, owner) && slices.Contains(types, rr.Header().Rrtype) {
			out = append(out, rr)
		}
	}
	return out
}

// txtValues returns each TXT record of msg as one string. A record's character-strings are joined
// without separators (RFC 7208 §3.3 does the same for SPF): providers split long values into
// 255-octet chunks, and some split short ones too.
func txtValues(msg *dns.Msg) []string {
	var out []string
	for _, rr := range msg.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, unescapeTXT(strings.Join(t.Txt, "")))
		}
	}
	return out
}

// unescapeTXT undoes miekg/dns's presentation escaping of character-strings (\" \\ and \DDD for
// unprintable octets), so values are compared and shown as the customer typed them.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// tokenMatches compares a TXT value with the expected token. Surrounding blanks and quotes are
// forgiven because DNS panels differ on whether the user types the quotes; case is forgiven
// because the token is hex and some panels upper-case input.
func tokenMatches(value, token string) bool {
	value = strings.Trim(strings.TrimSpace(value), `"`)
	return token != "" && strings.EqualFold(strings.TrimSpace(value), token)
}

func sortAddrs(a []netip.Addr) []netip.Addr {
	slices.SortFunc(a, func(x, y netip.Addr) int { return x.Compare(y) })
	return slices.Compact(a)
}

// sameName compares DNS names the way DNS does: case-insensitively, with or without the root dot.
func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// normName is the form names are stored and shown in: lower case, no trailing dot.
func normName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// resolveChain asks resolver for host's A records and walks the CNAME chain from the answer.
func (v *Verifier) resolveChain(ctx context.Context, resolver string, req Request) (first *dns.Msg, w chainWalk, err *queryError) {
	resp, qerr := v.query(ctx, resolver, req.Hostname, dns.TypeA)
	if qerr != nil {
		return nil, chainWalk{}, asQueryError(qerr)
	}
	match := func(name string) matchKind {
		switch {
		case sameName(name, req.Expected):
			return matchExpected
		case req.TunnelTarget != "" && sameName(name, req.TunnelTarget):
			return matchTunnel
		}
		return noMatch
	}
	next := func(name string) (*dns.Msg, error) {
		return v.query(ctx, resolver, name, dns.TypeA)
	}
	return resp, walkChain(req.Hostname, resp, v.maxHops, match, next), nil
}

// lookupAddrs returns the addresses of type rrtype that name resolves to through resolver.
func (v *Verifier) lookupAddrs(ctx context.Context, resolver, name string, rrtype uint16) ([]netip.Addr, *dns.Msg, *queryError) {
	resp, err := v.query(ctx, resolver, name, rrtype)
	if err != nil {
		return nil, nil, asQueryError(err)
	}
	return addrsOf(resp, rrtype, ""), resp, nil
}

func asQueryError(err error) *queryError {
	if qe, ok := err.(*queryError); ok {
		return qe
	}
	return &queryError{err: err}
}
