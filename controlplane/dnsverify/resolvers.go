package dnsverify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// ednsBufferSize is the UDP payload size we advertise: 1232 octets is the DNS Flag Day 2020
// recommendation, small enough to avoid IP fragmentation on any path, large enough for the TXT and
// address sets we read. Anything larger comes back truncated and is retried over TCP.
const ednsBufferSize = 1232

// udpAttempts is how many times a query is sent over UDP before giving up: one retransmission
// covers a lost datagram, the common UDP failure, without stretching a check past CheckTimeout.
const udpAttempts = 2

// resolverAddrs returns the configured resolvers as "host:port", or the nameservers of the
// resolv.conf file when none are configured.
func resolverAddrs(configured []string, resolvConf string) ([]string, error) {
	if len(configured) == 0 {
		cc, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("read resolvers from %s: %w", resolvConf, err)
		}
		if len(cc.Servers) == 0 {
			return nil, fmt.Errorf("read resolvers from %s: no nameserver lines", resolvConf)
		}
		port := cc.Port
		if port == "" {
			port = "53"
		}
		for _, s := range cc.Servers {
			configured = append(configured, net.JoinHostPort(s, port))
		}
	}
	out := make([]string, 0, len(configured))
	seen := make(map[string]bool, len(configured))
	for _, r := range configured {
		addr, err := normalizeResolver(r)
		if err != nil {
			return nil, err
		}
		// The same resolver twice would count its view twice and double the load.
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out, nil
}

// normalizeResolver accepts "host:port", "[v6]:port", or a bare IP (port 53).
func normalizeResolver(r string) (string, error) {
	r = strings.TrimSpace(r)
	if r == "" {
		return "", errors.New("resolver address is empty")
	}
	if host, port, err := net.SplitHostPort(r); err == nil {
		if host == "" || port == "" {
			return "", fmt.Errorf("resolver %q: want host:port", r)
		}
		return net.JoinHostPort(host, port), nil
	}
	// No port: a bare IPv4 or IPv6 address ("::1" does not split) gets the DNS port.
	if ip := net.ParseIP(strings.Trim(r, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), "53"), nil
	}
	return "", fmt.Errorf("resolver %q: want host:port or an IP address", r)
}

// newQuery builds a recursive query with EDNS0. The DO bit stays off: we read records, we do not
// validate DNSSEC ourselves, and a validating resolver answers SERVFAIL for broken signatures
// anyway, which we report.
func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsBufferSize, false)
	return m
}

// queryError is a query that got no usable DNS answer (as opposed to an answer with a failing
// rcode, which is data). Timeout decides how it is shown: "timeout" is what users can act on
// (wait, retry); other transport errors are shown as text.
type queryError struct {
	resolver string
	name     string
	qtype    uint16
	err      error
}

func (e *queryError) Error() string {
	return fmt.Sprintf("query %s %s via %s: %v", e.name, dns.TypeToString[e.qtype], e.resolver, e.err)
}

func (e *queryError) Unwrap() error { return e.err }

// Timeout reports whether the resolver simply did not answer in time.
func (e *queryError) Timeout() bool {
	if errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

// short is the text stored in ResolverResult.Error.
func (e *queryError) short() string {
	if e.Timeout() {
		return "timeout"
	}
	if errors.Is(e.err, context.Canceled) {
		return "canceled"
	}
	return e.err.Error()
}

// query sends one question to one resolver: UDP first (retransmitted once on timeout), TCP when
// the UDP answer is truncated, plain DNS when the resolver rejects EDNS with FORMERR. Each attempt
// gets at most QueryTimeout and never outlives ctx (the whole check's deadline).
//
// A new UDP socket per query is deliberate: a fresh random source port plus a random ID is the
// standard defence against off-path spoofing, and on loopback or a LAN the socket costs microseconds.
func (v *Verifier) query(ctx context.Context, resolver, name string, qtype uint16) (*dns.Msg, error) {
	if err := v.acquire(ctx); err != nil {
		return nil, &queryError{resolver, name, qtype, err}
	}
	defer v.release()

	m := newQuery(name, qtype)
	resp, err := v.exchangeUDP(ctx, m, resolver)
	if err == nil && resp.Rcode == dns.RcodeFormatError && m.IsEdns0() != nil {
		// RFC 6891 §7: a server that does not understand EDNS answers FORMERR; ask again without it.
		m.Extra = nil
		resp, err = v.exchangeUDP(ctx, m, resolver)
	}
	if err == nil && resp.Truncated {
		resp, err = v.exchange(ctx, v.tcp, m, resolver)
	}
	if err != nil {
		return nil, &queryError{resolver, name, qtype, err}
	}
	if len(resp.Question) == 1 && !strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) {
		return nil, &queryError{resolver, name, qtype,
			fmt.Errorf("answer is for %q, not the name asked", resp.Question[0].Name)}
	}
	return resp, nil
}

func (v *Verifier) exchangeUDP(ctx context.Context, m *dns.Msg, resolver string) (*dns.Msg, error) {
	var err error
	for range udpAttempts {
		var resp *dns.Msg
		resp, err = v.exchange(ctx, v.udp, m, resolver)
		if err == nil {
			return resp, nil
		}
		qe := &queryError{err: err}
		if !qe.Timeout() || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func (v *Verifier) exchange(ctx context.Context, c *dns.Client, m *dns.Msg, resolver string) (*dns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, v.queryTimeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(qctx, m, resolver)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// acquire takes one of the Verifier's query slots. The bound keeps a burst of checks (a reverify
// job over every domain) from opening thousands of sockets at once and overflowing the resolver's
// or our own socket buffers, which would turn into timeouts.
func (v *Verifier) acquire(ctx context.Context) error {
	select {
	case v.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (v *Verifier) release() { <-v.slots }
