// Package zonetest runs a small DNS world on loopback for tests of code that follows delegations
// and checks DNSSEC: authoritative servers for parent and child zones on 127.0.0.x addresses the
// test picks, all on one port (as production servers all listen on 53), DNSSEC-signed zones with
// faults to inject (a broken signature, expired signatures, a DS naming a key the zone no longer
// has, a DS for an unsigned zone), and an iterative resolver that answers clients the way a
// recursive resolver does by querying those servers over the network.
//
// The servers answer as authoritative servers do: AA set, no recursion, a referral (NS in the
// authority section, glue in the additional section) for names below a delegation, the DS of a
// delegated child from the parent, NXDOMAIN and NODATA with the zone's SOA (and, in a signed zone,
// an NSEC and the RRSIGs) in the authority section, RRSIGs when the query sets the DO bit.
//
// Everything is safe for concurrent use. Every server and the resolver stop at the test's end.
package zonetest

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Network is a set of authoritative servers sharing one port, plus resolvers.
type Network struct {
	tb   testing.TB
	port int

	mu      sync.RWMutex
	servers map[string]*server // by IP
}

// New returns an empty network on a port free on the loopback addresses tests use.
func New(tb testing.TB) *Network {
	tb.Helper()
	return &Network{tb: tb, port: freePort(tb), servers: map[string]*server{}}
}

// Port is the port every server of the network listens on (UDP and TCP).
func (n *Network) Port() int { return n.port }

// freePort picks a port that is free for UDP and TCP on 127.0.0.1 (Linux routes all of
// 127.0.0.0/8 to lo, and a port bound on one address does not take it on the others, so the
// check is indicative; Serve retries on failure).
func freePort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		p := 20000 + rand.IntN(30000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ln.Close()
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		pc.Close()
		return p
	}
	tb.Fatal("zonetest: no free port")
	return 0
}

// server is one address of the network: the zones it is authoritative for, or a resolver.
type server struct {
	ip       string
	udp, tcp *dns.Server
	zones    []*Zone // authoritative data, longest name first when looked up
	down     bool    // queries are read and never answered
	refuse   bool    // every query gets REFUSED (a lame server)
}

// listen starts a server on ip:port, UDP and TCP.
func (n *Network) listen(ip string, h dns.Handler) *server {
	n.tb.Helper()
	addr := net.JoinHostPort(ip, strconv.Itoa(n.port))
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		n.tb.Fatalf("zonetest: listen udp %s: %v", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		n.tb.Fatalf("zonetest: listen tcp %s: %v", addr, err)
	}
	s := &server{ip: ip}
	started := make(chan struct{}, 2)
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { started <- struct{}{} }}
	s.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: func() { started <- struct{}{} }}
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	<-started
	<-started
	n.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.udp.ShutdownContext(ctx)
		_ = s.tcp.ShutdownContext(ctx)
	})
	return s
}

// serverAt returns the authoritative server at ip, starting it on first use.
func (n *Network) serverAt(ip string) *server {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[ip]; s != nil {
		return s
	}
	s := n.listen(ip, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { n.serveAuthoritative(ip, w, r) }))
	n.servers[ip] = s
	return s
}

// Addr returns "ip:port" for an address of the network.
func (n *Network) Addr(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(n.port)) }

// SetDown makes the server at ip read queries and never answer them.
func (n *Network) SetDown(ip string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[ip]; s != nil {
		s.down = down
	}
}

// SetLame makes the server at ip answer REFUSED to everything: a name server that is listed in
// the delegation but does not serve the zone.
func (n *Network) SetLame(ip string, lame bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.servers[ip]; s != nil {
		s.refuse = lame
	}
}

// Zone creates a zone named name (with its SOA and, as NS, ns1.<name>. … one per address) served
// authoritatively at each of ips. Passing a name again creates another copy of the zone, served
// by its own addresses: two servers of one zone that disagree (one has not transferred the last
// change yet).
func (n *Network) Zone(name string, ips ...string) *Zone {
	n.tb.Helper()
	z := newZone(n.tb, dns.CanonicalName(name), ips)
	for _, ip := range ips {
		s := n.serverAt(ip)
		n.mu.Lock()
		s.zones = append(s.zones, z)
		n.mu.Unlock()
	}
	return z
}

func (n *Network) serveAuthoritative(ip string, w dns.ResponseWriter, r *dns.Msg) {
	n.mu.RLock()
	s := n.servers[ip]
	down, refuse := s.down, s.refuse
	zones := append([]*Zone(nil), s.zones...)
	n.mu.RUnlock()
	if down {
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	var zone *Zone
	for _, z := range zones {
		// The deepest zone; of two copies of one zone at this address, the one added last.
		if dns.IsSubDomain(z.name, dns.CanonicalName(q.Name)) && (zone == nil || len(z.name) >= len(zone.name)) {
			zone = z
		}
	}
	if refuse || zone == nil {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
		m.SetEdns0(1232, do)
	}
	zone.answer(m, dns.CanonicalName(q.Name), q.Qtype, do)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// must parses a record in zone-file syntax or fails the test.
func must(tb testing.TB, s string) dns.RR {
	tb.Helper()
	rr, err := dns.NewRR(s)
	if err != nil || rr == nil {
		tb.Fatalf("zonetest: record %q: %v", s, err)
	}
	rr.Header().Name = dns.CanonicalName(rr.Header().Name)
	return rr
}

func fqdn(s string) string { return dns.CanonicalName(s) }
