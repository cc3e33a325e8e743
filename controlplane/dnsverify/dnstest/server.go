// Package dnstest runs an in-process DNS server on loopback for tests and benchmarks of code that
// speaks real DNS over the wire.
//
// The server listens on 127.0.0.1 with UDP and TCP on the same port number, as a real resolver
// does, so a client that falls back to TCP after a truncated UDP answer reaches the same zone. It
// answers like a recursive resolver: a query whose name has a CNAME gets the whole chain plus the
// records of the requested type at the end of it (an A query for www.x.com returns
// www.x.com CNAME x.sajet.us, x.sajet.us A …); a query of type CNAME gets just the CNAME, as
// Unbound and BIND answer it; unknown names get NXDOMAIN (with the chain that led there,
// RFC 6604); known names without the type get NOERROR with an empty answer (NODATA). A zone given
// an SOA (SetSOA) carries it in the authority section of its negative answers, as resolvers do, so
// clients can read how long the answer may be cached (RFC 2308).
// Tests change the zone while the server runs, inject failures per name (rcode, delay, silence) and
// read query counters. Every method is safe for concurrent use.
package dnstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TTL is the TTL of every record the server returns.
const TTL = 300

// maxChase bounds CNAME chasing, as real resolvers do (Unbound and BIND stop well below 20), so a
// test zone with a long chain cannot make the server loop.
const maxChase = 16

// Server is a DNS server on 127.0.0.1 serving a mutable in-memory zone.
type Server struct {
	tb   testing.TB
	addr string

	udp, tcp *dns.Server
	closing  chan struct{} // closed on cleanup: releases handlers that are sleeping or dropping

	mu          sync.RWMutex
	nodes       map[string]*node // key: canonical FQDN (lower case, trailing dot)
	delay       time.Duration
	drop        bool
	truncateUDP bool
	noChase     bool
	soas        map[string]*dns.SOA // zone apex (canonical) → its SOA, for negative answers

	queries, udpQueries, tcpQueries atomic.Int64
	perName                         sync.Map // canonical FQDN → *atomic.Int64
}

// node is everything stored at one owner name. Holding a CNAME together with other data is
// illegal in DNS but deliberately allowed here, so tests can model broken zones.
type node struct {
	cname string
	a     []netip.Addr
	aaaa  []netip.Addr
	txt   [][]string // one slice of character-strings per TXT record
	caa   []*dns.CAA
	rcode int // -1 = none; otherwise every query for this name gets this rcode
	delay time.Duration
	drop  bool
}

// Start starts a server and registers its shutdown with tb.Cleanup. It fails tb if the server
// cannot listen.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		tb:      tb,
		closing: make(chan struct{}),
		nodes:   make(map[string]*node),
	}
	pc, ln, err := listenPair()
	if err != nil {
		tb.Fatalf("dnstest: listen: %v", err)
	}
	s.addr = pc.LocalAddr().String()

	udpStarted, tcpStarted := make(chan struct{}), make(chan struct{})
	s.udp = &dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.MaxMsgSize,
		NotifyStartedFunc: func() { close(udpStarted) }}
	s.tcp = &dns.Server{Listener: ln, Handler: s,
		NotifyStartedFunc: func() { close(tcpStarted) }}
	errc := make(chan error, 2)
	go func() { errc <- s.udp.ActivateAndServe() }()
	go func() { errc <- s.tcp.ActivateAndServe() }()
	for _, started := range []chan struct{}{udpStarted, tcpStarted} {
		select {
		case <-started:
		case err := <-errc:
			tb.Fatalf("dnstest: serve: %v", err)
		}
	}

	tb.Cleanup(func() {
		close(s.closing)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.udp.ShutdownContext(ctx); err != nil {
			tb.Errorf("dnstest: shut down UDP: %v", err)
		}
		if err := s.tcp.ShutdownContext(ctx); err != nil {
			tb.Errorf("dnstest: shut down TCP: %v", err)
		}
	})
	return s
}

// listenPair binds UDP on a random loopback port, then TCP on the same port number. Another
// process may own that TCP port, so it retries with a fresh UDP port a few times.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		// Benchmarks send thousands of queries at once; a larger socket buffer keeps the kernel
		// from dropping them before the server reads them (capped by net.core.rmem_max).
		if u, ok := pc.(*net.UDPConn); ok {
			_ = u.SetReadBuffer(4 << 20)
		}
		ln, err := net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		lastErr = err
		pc.Close()
	}
	return nil, nil, fmt.Errorf("listen tcp on the udp port: %w", lastErr)
}

// Addr returns "127.0.0.1:port"; UDP and TCP share the port.
func (s *Server) Addr() string { return s.addr }

// AddCNAME sets the CNAME of name to target, replacing any previous CNAME at name.
func (s *Server) AddCNAME(name, target string) {
	s.update(name, func(n *node) { n.cname = canonical(target) })
}

// AddA adds A records to name. It fails the test on anything but IPv4 addresses.
func (s *Server) AddA(name string, ips ...string) {
	s.tb.Helper()
	addrs := s.parseAddrs(ips, true)
	s.update(name, func(n *node) { n.a = append(n.a, addrs...) })
}

// AddAAAA adds AAAA records to name. It fails the test on anything but IPv6 addresses.
func (s *Server) AddAAAA(name string, ips ...string) {
	s.tb.Helper()
	addrs := s.parseAddrs(ips, false)
	s.update(name, func(n *node) { n.aaaa = append(n.aaaa, addrs...) })
}

// AddTXT adds one TXT record per value. A value longer than 255 octets is split into 255-octet
// character-strings, as DNS providers do, so readers must join the chunks. Values are in zone-file
// form: a backslash starts an escape (\" or \DDD), as in miekg/dns.
func (s *Server) AddTXT(name string, values ...string) {
	s.update(name, func(n *node) {
		for _, v := range values {
			n.txt = append(n.txt, splitTXT(v))
		}
	})
}

// AddTXTChunks adds a single TXT record made of the given character-strings, for testing readers
// that must join chunks split at arbitrary places.
func (s *Server) AddTXTChunks(name string, chunks ...string) {
	s.update(name, func(n *node) { n.txt = append(n.txt, append([]string(nil), chunks...)) })
}

// AddCAA adds a CAA record, e.g. AddCAA("x.com", 0, "issue", "letsencrypt.org").
func (s *Server) AddCAA(name string, flag uint8, tag, value string) {
	s.update(name, func(n *node) {
		n.caa = append(n.caa, &dns.CAA{Flag: flag, Tag: tag, Value: value})
	})
}

// Remove deletes everything at name, including injected rcodes and delays; the name then answers
// NXDOMAIN.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, canonical(name))
}

// SetRcode makes every query for name (or that reaches name through a CNAME) answer rcode, e.g.
// dns.RcodeServerFailure. dns.RcodeSuccess clears the override.
func (s *Server) SetRcode(name string, rcode int) {
	s.update(name, func(n *node) {
		if rcode == dns.RcodeSuccess {
			n.rcode = -1
			return
		}
		n.rcode = rcode
	})
}

// SetDelay delays every answer by d (0 clears it). A delayed handler is released at cleanup, so a
// long delay models a resolver that answers too late without stalling shutdown.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetNameDelay delays answers to queries for name by d, on top of any server-wide delay.
func (s *Server) SetNameDelay(name string, d time.Duration) {
	s.update(name, func(n *node) { n.delay = d })
}

// SetDrop makes the server read queries and never answer them: a resolver that is down or
// firewalled.
func (s *Server) SetDrop(drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = drop
}

// SetNameDrop makes queries for name go unanswered.
func (s *Server) SetNameDrop(name string, drop bool) {
	s.update(name, func(n *node) { n.drop = drop })
}

// SetTruncateUDP makes every UDP answer an empty truncated one (TC bit set), as a server does when
// the answer does not fit, so clients must retry over TCP. Answers larger than the client's
// advertised UDP size are truncated regardless of this setting.
func (s *Server) SetTruncateUDP(truncate bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncateUDP = truncate
}

// SetRecursive chooses between resolver behaviour (true, the default: CNAMEs are chased and the
// chain is returned) and authoritative behaviour (false: only the records at the queried name are
// returned, so clients must follow each hop themselves).
func (s *Server) SetRecursive(recursive bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noChase = !recursive
}

// SetSOA gives zone an SOA whose TTL is ttl and whose MINIMUM is minimum (seconds): negative
// answers for names in the zone carry it, so they may be cached for min(ttl, minimum) seconds.
// A zero ttl removes it.
func (s *Server) SetSOA(zone string, ttl, minimum uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := canonical(zone)
	if ttl == 0 {
		delete(s.soas, z)
		return
	}
	if s.soas == nil {
		s.soas = map[string]*dns.SOA{}
	}
	s.soas[z] = &dns.SOA{Hdr: dns.RR_Header{Name: z, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns: "ns1." + z, Mbox: "hostmaster." + z, Serial: 1, Refresh: 3600, Retry: 600, Expire: 604800, Minttl: minimum}
}

// soaFor returns the SOA of the closest enclosing zone of name, or nil. Caller holds s.mu.
func (s *Server) soaFor(name string) *dns.SOA {
	for n := name; n != ""; {
		if soa, ok := s.soas[n]; ok {
			return soa
		}
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = rest
	}
	return nil
}

// Queries returns how many queries the server has received over both transports.
func (s *Server) Queries() int64 { return s.queries.Load() }

// UDPQueries returns how many queries arrived over UDP.
func (s *Server) UDPQueries() int64 { return s.udpQueries.Load() }

// TCPQueries returns how many queries arrived over TCP.
func (s *Server) TCPQueries() int64 { return s.tcpQueries.Load() }

// QueriesFor returns how many queries asked about name (any type, any transport).
func (s *Server) QueriesFor(name string) int64 {
	if c, ok := s.perName.Load(canonical(name)); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

func (s *Server) update(name string, f func(*node)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := canonical(name)
	n, ok := s.nodes[key]
	if !ok {
		n = &node{rcode: -1}
		s.nodes[key] = n
	}
	f(n)
}

func (s *Server) parseAddrs(ips []string, v4 bool) []netip.Addr {
	s.tb.Helper()
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Is4() != v4 {
			family := "IPv6"
			if v4 {
				family = "IPv4"
			}
			s.tb.Fatalf("dnstest: %q is not an %s address", ip, family)
		}
		out = append(out, a)
	}
	return out
}

// ServeDNS answers one query. It implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, isUDP := w.RemoteAddr().(*net.UDPAddr)
	s.queries.Add(1)
	if isUDP {
		s.udpQueries.Add(1)
	} else {
		s.tcpQueries.Add(1)
	}
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	qname := canonical(q.Name)
	c, _ := s.perName.LoadOrStore(qname, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)

	resp, delay, drop, truncate := s.answer(req, qname, q.Qtype)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.closing:
			t.Stop()
			return
		}
	}
	if drop {
		return
	}

	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(1232, false)
	}
	if isUDP {
		if truncate {
			resp.Answer, resp.Ns, resp.Extra = nil, nil, nil
			resp.Truncated = true
		} else {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			resp.Truncate(size)
		}
	}
	// The client may have given up already (that is the point of delays); a failed write is not
	// the test's concern.
	_ = w.WriteMsg(resp)
}

// answer builds the response under the read lock, so a test mutating the zone concurrently sees
// each query answered from one consistent snapshot.
func (s *Server) answer(req *dns.Msg, qname string, qtype uint16) (resp *dns.Msg, delay time.Duration, drop, truncate bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	resp = new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	delay, drop, truncate = s.delay, s.drop, s.truncateUDP

	cur := qname
	seen := map[string]bool{cur: true}
	// A negative answer (NXDOMAIN, or no record of the type at the end of the chain) carries the
	// SOA of the zone it is about.
	defer func() {
		if resp.Rcode == dns.RcodeNameError || (resp.Rcode == dns.RcodeSuccess && !hasType(resp.Answer, qtype)) {
			if soa := s.soaFor(cur); soa != nil {
				resp.Ns = append(resp.Ns, dns.Copy(soa))
			}
		}
	}()
	for hop := 0; ; hop++ {
		n, ok := s.nodes[cur]
		if !ok {
			resp.Rcode = dns.RcodeNameError
			return
		}
		if hop == 0 {
			delay += n.delay
			drop = drop || n.drop
		}
		if n.rcode >= 0 {
			// Like a resolver that fails part-way through a chain: keep what was learnt so far.
			resp.Rcode = n.rcode
			return
		}
		if qtype == dns.TypeCNAME {
			// Resolvers answer a CNAME question with the CNAME itself and do not chase it.
			resp.Answer = append(resp.Answer, n.records(cur, qtype)...)
			return
		}
		if n.cname != "" {
			resp.Answer = append(resp.Answer, &dns.CNAME{Hdr: hdr(cur, dns.TypeCNAME), Target: n.cname})
		}
		// Other data beside a CNAME is served as stored (a broken zone), so clients can detect it.
		resp.Answer = append(resp.Answer, n.records(cur, qtype)...)
		if n.cname == "" {
			return
		}
		// A resolver stops at a loop or after too many hops; it returns what it has (NOERROR),
		// which leaves loop detection to the client under test.
		if s.noChase || seen[n.cname] || hop+1 >= maxChase {
			return
		}
		seen[n.cname] = true
		cur = n.cname
	}
}

func hasType(rrs []dns.RR, qtype uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype {
			return true
		}
	}
	return false
}

// records returns the records of qtype stored at owner (not the CNAME, which the caller handles).
func (n *node) records(owner string, qtype uint16) []dns.RR {
	var out []dns.RR
	switch qtype {
	case dns.TypeA:
		for _, a := range n.a {
			out = append(out, &dns.A{Hdr: hdr(owner, dns.TypeA), A: net.IP(a.AsSlice())})
		}
	case dns.TypeAAAA:
		for _, a := range n.aaaa {
			out = append(out, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
		}
	case dns.TypeTXT:
		for _, t := range n.txt {
			out = append(out, &dns.TXT{Hdr: hdr(owner, dns.TypeTXT), Txt: t})
		}
	case dns.TypeCAA:
		for _, c := range n.caa {
			rr := *c
			rr.Hdr = hdr(owner, dns.TypeCAA)
			out = append(out, &rr)
		}
	case dns.TypeCNAME:
		if n.cname != "" {
			out = append(out, &dns.CNAME{Hdr: hdr(owner, dns.TypeCNAME), Target: n.cname})
		}
	}
	return out
}

func hdr(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: TTL}
}

func canonical(name string) string {
	return dns.CanonicalName(strings.TrimSpace(name))
}

func splitTXT(v string) []string {
	if v == "" {
		return []string{""}
	}
	var chunks []string
	for len(v) > 255 {
		chunks = append(chunks, v[:255])
		v = v[255:]
	}
	return append(chunks, v)
}
