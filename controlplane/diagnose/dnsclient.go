package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the UDP payload size we advertise (DNS Flag Day 2020); larger answers come back
// truncated and are asked again over TCP.
const ednsSize = 1232

// dnsClient sends single questions to single servers, bounded in time and in how many are in
// flight across every report of the process.
type dnsClient struct {
	timeout time.Duration
	slots   chan struct{}
}

func newDNSClient(timeout time.Duration, inFlight int) *dnsClient {
	return &dnsClient{timeout: timeout, slots: make(chan struct{}, inFlight)}
}

// flags of a question.
type qflags struct {
	recursive bool // RD: ask a resolver to resolve; off for authoritative servers
	dnssec    bool // DO: ask for RRSIGs (and a validating resolver's AD)
	noCheck   bool // CD: ask a validating resolver not to validate
}

// ask sends name/qtype to server ("ip:port"): UDP, once more on a timeout, TCP when truncated,
// without EDNS when the server answers FORMERR to it. A new socket per question keeps a random
// source port (with the random ID, the defence against off-path spoofing).
func (c *dnsClient) ask(ctx context.Context, server, name string, qtype uint16, fl qflags) (*dns.Msg, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = fl.recursive
	m.CheckingDisabled = fl.noCheck
	m.SetEdns0(ednsSize, fl.dnssec)
	var resp *dns.Msg
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		resp, err = c.exchange(ctx, "udp", m, server)
		if err == nil || !isTimeout(err) || ctx.Err() != nil {
			break
		}
	}
	if err == nil && resp.Rcode == dns.RcodeFormatError && m.IsEdns0() != nil {
		m.Extra = nil // RFC 6891 §7: a server that does not speak EDNS answers FORMERR
		resp, err = c.exchange(ctx, "udp", m, server)
	}
	if err == nil && resp.Truncated {
		resp, err = c.exchange(ctx, "tcp", m, server)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s: %w", strings.TrimSuffix(name, "."), dns.TypeToString[qtype], server, err)
	}
	if len(resp.Question) == 1 && !strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) {
		return nil, fmt.Errorf("%s %s at %s: the answer is for %q", name, dns.TypeToString[qtype], server, resp.Question[0].Name)
	}
	return resp, nil
}

func (c *dnsClient) exchange(ctx context.Context, network string, m *dns.Msg, server string) (*dns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, _, err := (&dns.Client{Net: network, UDPSize: ednsSize, Timeout: c.timeout}).ExchangeContext(qctx, m, server)
	return resp, err
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// shortError is how a failed question appears in evidence: "timeout" or the error.
func shortError(err error) string {
	if isTimeout(err) {
		return "timeout"
	}
	return err.Error()
}

// rrsOf returns the records of type t owned by name in rrs (any owner when name is "").
func rrsOf(rrs []dns.RR, name string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == t && (name == "" || sameName(rr.Header().Name, name)) {
			out = append(out, rr)
		}
	}
	return out
}

// sigsFor returns the RRSIGs in rrs covering name/t.
func sigsFor(rrs []dns.RR, name string, t uint16) []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, rr := range rrs {
		if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == t && sameName(s.Hdr.Name, name) {
			out = append(out, s)
		}
	}
	return out
}

func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

func norm(s string) string { return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), ".")) }

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rcode)
}

// minTTL is the smallest TTL of rrs (0 when empty).
func minTTL(rrs []dns.RR) uint32 {
	var m uint32
	for i, rr := range rrs {
		if i == 0 || rr.Header().Ttl < m {
			m = rr.Header().Ttl
		}
	}
	return m
}

// negativeTTL is how long a resolver may cache a negative answer: the smaller of the SOA's TTL and
// its MINIMUM field (RFC 2308 §5); ok is false without an SOA.
func negativeTTL(authority []dns.RR) (uint32, bool) {
	for _, rr := range authority {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl), true
		}
	}
	return 0, false
}
