package zonetest

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Resolver is a recursive resolver of the network: it answers a client's query by iterating over
// the network's authoritative servers from the zones it was given as hints (the network has no
// root), following referrals and CNAMEs, with RA set. A test can make it look like a validating
// resolver (SetValidating: AD on answers from signed zones, SERVFAIL for names made to fail
// validation unless the client sets CD) and pin an answer it "has cached" (Cache).
type Resolver struct {
	n     *Network
	ip    string
	hints map[string][]string // zone name → its servers' IPs

	mu         sync.Mutex
	validating bool
	bogus      map[string]bool
	cache      map[cacheKey]cached

	queries atomic.Int64
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cached struct {
	rrs     []dns.RR
	rcode   int
	expires time.Time
}

// Resolver starts a resolver at ip (on the network's port) that starts its iterations at the
// given zones' servers.
func (n *Network) Resolver(ip string, hints ...*Zone) *Resolver {
	n.tb.Helper()
	r := &Resolver{n: n, ip: ip, hints: map[string][]string{}, bogus: map[string]bool{}, cache: map[cacheKey]cached{}}
	for _, z := range hints {
		z.mu.RLock()
		for _, rr := range z.rrs[z.name] {
			if ns, ok := rr.(*dns.NS); ok {
				for _, g := range z.rrs[ns.Ns] {
					if a, ok := g.(*dns.A); ok {
						r.hints[z.name] = append(r.hints[z.name], a.A.String())
					}
				}
			}
		}
		z.mu.RUnlock()
	}
	n.listen(ip, r)
	return r
}

// Addr is the resolver's "ip:port".
func (r *Resolver) Addr() string { return r.n.Addr(r.ip) }

// Queries is how many queries the resolver received.
func (r *Resolver) Queries() int64 { return r.queries.Load() }

// SetValidating makes the resolver set AD on answers (as a validating resolver does for data it
// validated) when the client sets DO or AD.
func (r *Resolver) SetValidating(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.validating = on
}

// FailValidation makes queries for name answer SERVFAIL unless the client sets CD, as a
// validating resolver answers data whose DNSSEC chain is broken.
func (r *Resolver) FailValidation(name string, fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bogus[fqdn(name)] = fail
}

// Cache makes the resolver answer name/qtype with records (zone-file syntax) it holds in its
// cache for ttl more seconds: an old value the authoritative servers no longer serve. No records
// caches a negative answer (NXDOMAIN).
func (r *Resolver) Cache(name string, qtype uint16, ttl uint32, records ...string) {
	r.n.tb.Helper()
	c := cached{expires: time.Now().Add(time.Duration(ttl) * time.Second), rcode: dns.RcodeSuccess}
	for _, s := range records {
		c.rrs = append(c.rrs, must(r.n.tb, s))
	}
	if len(c.rrs) == 0 {
		c.rcode = dns.RcodeNameError
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache[cacheKey{fqdn(name), qtype}] = c
}

// ServeDNS implements dns.Handler.
func (r *Resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	r.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := fqdn(q.Name)
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
		m.SetEdns0(1232, do)
	}
	r.mu.Lock()
	validating, bogus := r.validating, r.bogus[name]
	c, hit := r.cache[cacheKey{name, q.Qtype}]
	r.mu.Unlock()
	switch {
	case bogus && !req.CheckingDisabled:
		m.Rcode = dns.RcodeServerFailure
	case hit && time.Now().Before(c.expires):
		left := uint32(time.Until(c.expires).Seconds())
		for _, rr := range c.rrs {
			cp := dns.Copy(rr)
			cp.Header().Ttl = left
			m.Answer = append(m.Answer, cp)
		}
		m.Rcode = c.rcode
	default:
		res := r.resolve(name, q.Qtype, do, 0)
		m.Rcode, m.Answer, m.Ns = res.Rcode, res.Answer, res.Ns
		m.AuthenticatedData = validating && (do || req.AuthenticatedData) && res.Rcode != dns.RcodeServerFailure
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// resolve answers name/qtype by iteration, following CNAMEs across zones.
func (r *Resolver) resolve(name string, qtype uint16, do bool, depth int) *dns.Msg {
	out := new(dns.Msg)
	cur := name
	for hop := 0; hop < 8; hop++ {
		resp := r.iterate(cur, qtype, do, depth)
		out.Answer = append(out.Answer, resp.Answer...)
		out.Rcode = resp.Rcode
		if resp.Rcode != dns.RcodeSuccess || qtype == dns.TypeCNAME {
			out.Ns = resp.Ns
			return out
		}
		// Follow the chain inside this answer to its end; ask for the end if it holds no data.
		end := cur
		for {
			next := ""
			for _, rr := range resp.Answer {
				if c, ok := rr.(*dns.CNAME); ok && fqdn(c.Hdr.Name) == end {
					next = fqdn(c.Target)
				}
			}
			if next == "" {
				break
			}
			end = next
		}
		if end == cur {
			if len(resp.Answer) == 0 {
				out.Ns = resp.Ns
			}
			return out
		}
		for _, rr := range resp.Answer {
			if fqdn(rr.Header().Name) == end && rr.Header().Rrtype == qtype {
				return out
			}
		}
		cur = end
	}
	return out
}

// iterate asks the authoritative servers for name, from the closest hint, following referrals.
func (r *Resolver) iterate(name string, qtype uint16, do bool, depth int) *dns.Msg {
	fail := &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}
	zone := ""
	for z := range r.hints {
		if dns.IsSubDomain(z, name) && len(z) > len(zone) {
			zone = z
		}
	}
	if zone == "" || depth > 4 {
		return fail
	}
	servers := r.hints[zone]
	for range 8 {
		resp := r.ask(servers, name, qtype, do)
		if resp == nil {
			return fail
		}
		if resp.Authoritative || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) > 0 {
			return resp
		}
		var next []string
		for _, rr := range resp.Ns {
			ns, ok := rr.(*dns.NS)
			if !ok {
				continue
			}
			glued := false
			for _, g := range resp.Extra {
				if a, ok := g.(*dns.A); ok && fqdn(a.Hdr.Name) == fqdn(ns.Ns) {
					next, glued = append(next, a.A.String()), true
				}
			}
			if !glued {
				for _, rr := range r.resolve(fqdn(ns.Ns), dns.TypeA, false, depth+1).Answer {
					if a, ok := rr.(*dns.A); ok {
						next = append(next, a.A.String())
					}
				}
			}
		}
		if len(next) == 0 {
			return resp // no referral: NODATA from a server that did not set AA
		}
		servers = next
	}
	return fail
}

// ask sends the query to each server in turn until one answers.
func (r *Resolver) ask(servers []string, name string, qtype uint16, do bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = false
	q.SetEdns0(1232, do)
	for _, ip := range servers {
		addr := net.JoinHostPort(ip, strconv.Itoa(r.n.port))
		resp, _, err := (&dns.Client{Net: "udp", Timeout: time.Second}).Exchange(q, addr)
		if err == nil && resp.Truncated {
			resp, _, err = (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(q, addr)
		}
		if err == nil && resp.Rcode != dns.RcodeRefused {
			return resp
		}
	}
	return nil
}
