package diagnose

import (
	"context"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Bounds of the walk to the authoritative servers: a delegation lists a handful of servers; a
// zone that lists more is still judged by the first ones.
const (
	maxNameServers   = 4
	maxAddressesEach = 2
)

// AuthEvidence is what the zone's own servers serve, asked directly (no recursion, no cache).
type AuthEvidence struct {
	Zone   string `json:"zone" doc:"The zone holding the hostname"`
	Parent string `json:"parent" doc:"The zone that delegates it (the registry, for a registered domain)"`
	// Delegated is false when the parent does not delegate the zone (not registered, expired).
	Delegated   bool         `json:"delegated"`
	NameServers []NameServer `json:"nameservers" doc:"The zone's servers as the parent delegates them"`
	Answers     []AuthAnswer `json:"answers" doc:"Each server's answer for the hostname"`
	// CacheSeconds is how long resolvers may keep the answer the servers give now (its TTL, or
	// the SOA's negative TTL for a name that does not exist): after a change, the old value can
	// be seen for up to this long.
	CacheSeconds *uint32 `json:"cache_seconds,omitempty"`
	Error        string  `json:"error,omitempty"`
}

// NameServer is a server of the zone as the parent lists it.
type NameServer struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	Glue      bool     `json:"glue" doc:"The parent gave its addresses (glue)"`
}

// AuthAnswer is one server's answer for the hostname.
type AuthAnswer struct {
	Server        string   `json:"server"`
	Address       string   `json:"address"`
	Rcode         string   `json:"rcode,omitempty"`
	Authoritative bool     `json:"authoritative" doc:"The AA bit: the server says it serves the zone"`
	Serial        *uint32  `json:"serial,omitempty" doc:"The zone's SOA serial on this server"`
	Chain         []string `json:"chain,omitempty" doc:"CNAME targets in the answer"`
	A             []string `json:"a,omitempty"`
	AAAA          []string `json:"aaaa,omitempty"`
	Beside        []string `json:"beside_cname,omitempty" doc:"Records the hostname holds next to its CNAME"`
	TTLSeconds    *uint32  `json:"ttl_seconds,omitempty"`
	Error         string   `json:"error,omitempty"`
}

// authServer is one address of one of the zone's servers and what it answered.
type authServer struct {
	name, addr        string
	a, aaaa, soa, key *dns.Msg // hostname A and AAAA, zone SOA and DNSKEY, all with DO
	err               error
}

// authData is the raw material of the authoritative, DNSSEC and conflicts parts.
type authData struct {
	zone, parent string
	delegated    bool
	problem      i18n.Text // why the walk stopped, when it did
	undelegated  bool      // the walk stopped because the zone does not exist or is not delegated
	nameServers  []NameServer
	ds           *dns.Msg // the parent's answer to "zone DS"
	dsErr        error
	servers      []authServer
}

// resolve asks the configured resolvers in turn (the first that answers wins).
func (s *Service) resolve(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	var last error
	for _, r := range s.verifier.Resolvers() {
		resp, err := s.dns.ask(ctx, r, name, qtype, qflags{recursive: true})
		if err == nil {
			return resp, nil
		}
		last = err
	}
	return nil, last
}

// addresses resolves name's IPv4 addresses (IPv6 only when it has none: a control plane without
// IPv6 must not report every dual-stack server as unreachable).
func (s *Service) addresses(ctx context.Context, name string) []string {
	var out []string
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := s.resolve(ctx, name, t)
		if err != nil {
			continue
		}
		for _, rr := range resp.Answer {
			switch r := rr.(type) {
			case *dns.A:
				out = append(out, r.A.String())
			case *dns.AAAA:
				out = append(out, r.AAAA.String())
			}
		}
		if len(out) > 0 {
			break
		}
	}
	return firstN(out, maxAddressesEach)
}

func firstN[T any](xs []T, n int) []T {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}

// findZone finds the zone holding host: the deepest name from the registrable domain down to
// host that has its own SOA. ok is false when the registrable domain does not exist.
func (s *Service) findZone(ctx context.Context, host string) (zone string, nx bool, err error) {
	top, perr := publicsuffix.EffectiveTLDPlusOne(host)
	if perr != nil {
		top = host
	}
	// The candidates between the registrable domain and host, asked at once.
	cands := []string{top}
	for n := host; n != top && strings.HasSuffix(n, "."+top); {
		cands = append(cands, n)
		_, n, _ = strings.Cut(n, ".")
	}
	owns := make([]bool, len(cands))
	errs := make([]error, len(cands))
	var rcodeTop int
	var wg sync.WaitGroup
	for i, c := range cands {
		wg.Go(func() {
			resp, err := s.resolve(ctx, c, dns.TypeSOA)
			if err != nil {
				errs[i] = err
				return
			}
			if i == 0 {
				rcodeTop = resp.Rcode
			}
			owns[i] = len(rrsOf(resp.Answer, c, dns.TypeSOA)) > 0
		})
	}
	wg.Wait()
	if errs[0] != nil {
		return "", false, errs[0]
	}
	if rcodeTop == dns.RcodeNameError {
		return top, true, nil
	}
	zone = top
	for i := 1; i < len(cands); i++ {
		if owns[i] && len(cands[i]) > len(zone) {
			zone = cands[i]
		}
	}
	return zone, false, nil
}

// walkAuthoritative finds the zone of host, its servers from the parent, and asks each of them.
func (s *Service) walkAuthoritative(ctx context.Context, host string) *authData {
	ad := &authData{}
	zone, nx, err := s.findZone(ctx, host)
	if err != nil {
		ad.problem = msgAuthNoResolver(shortError(err))
		return ad
	}
	ad.zone = zone
	if nx {
		ad.problem, ad.undelegated = msgZoneMissing(zone), true
		return ad
	}
	_, parent, _ := strings.Cut(zone, ".")
	ad.parent = parent
	if parent == "" {
		ad.problem = msgAuthNoParent(zone)
		return ad
	}
	// The parent's servers, through the resolvers.
	resp, err := s.resolve(ctx, parent, dns.TypeNS)
	if err != nil {
		ad.problem = msgAuthNoResolver(shortError(err))
		return ad
	}
	var parentNS []string
	for _, rr := range rrsOf(resp.Answer, parent, dns.TypeNS) {
		parentNS = append(parentNS, norm(rr.(*dns.NS).Ns))
	}
	sort.Strings(parentNS)
	var parentAddrs []string
	for _, ns := range firstN(parentNS, maxNameServers) {
		parentAddrs = append(parentAddrs, s.addresses(ctx, ns)...)
	}
	if len(parentAddrs) == 0 {
		ad.problem = msgAuthParentUnreachable(parent)
		return ad
	}
	// The delegation and the DS, from the first parent server that answers.
	var deleg *dns.Msg
	for _, a := range parentAddrs {
		addr := net.JoinHostPort(a, s.cfg.AuthPort)
		deleg, err = s.dns.ask(ctx, addr, zone, dns.TypeNS, qflags{dnssec: true})
		if err != nil || deleg.Rcode == dns.RcodeRefused || deleg.Rcode == dns.RcodeServerFailure {
			deleg = nil
			continue
		}
		ad.ds, ad.dsErr = s.dns.ask(ctx, addr, zone, dns.TypeDS, qflags{dnssec: true})
		break
	}
	if deleg == nil {
		ad.problem = msgAuthParentUnreachable(parent)
		return ad
	}
	nsRRs := rrsOf(deleg.Ns, zone, dns.TypeNS)
	if len(nsRRs) == 0 {
		nsRRs = rrsOf(deleg.Answer, zone, dns.TypeNS) // the parent's servers serve the zone too
	}
	if len(nsRRs) == 0 {
		ad.problem, ad.undelegated = msgNotDelegated(zone, parent), true
		return ad
	}
	ad.delegated = true
	names := make([]string, 0, len(nsRRs))
	for _, rr := range nsRRs {
		names = append(names, norm(rr.(*dns.NS).Ns))
	}
	sort.Strings(names)
	names = slices.Compact(names)
	for _, name := range firstN(names, maxNameServers) {
		ns := NameServer{Name: name}
		for _, rr := range deleg.Extra {
			if !sameName(rr.Header().Name, name) {
				continue
			}
			switch g := rr.(type) {
			case *dns.A:
				ns.Addresses = append(ns.Addresses, g.A.String())
			case *dns.AAAA:
				ns.Addresses = append(ns.Addresses, g.AAAA.String())
			}
		}
		ns.Glue = len(ns.Addresses) > 0
		ns.Addresses = firstN(ns.Addresses, maxAddressesEach)
		ad.nameServers = append(ad.nameServers, ns)
	}
	var wg sync.WaitGroup
	for i := range ad.nameServers {
		if !ad.nameServers[i].Glue {
			wg.Go(func() { ad.nameServers[i].Addresses = s.addresses(ctx, ad.nameServers[i].Name) })
		}
	}
	wg.Wait()
	// Each address of each server, every question at once.
	for _, ns := range ad.nameServers {
		if len(ns.Addresses) == 0 {
			ad.servers = append(ad.servers, authServer{name: ns.Name, err: errNoAddress})
		}
		for _, a := range ns.Addresses {
			ad.servers = append(ad.servers, authServer{name: ns.Name, addr: net.JoinHostPort(a, s.cfg.AuthPort)})
		}
	}
	for i := range ad.servers {
		sv := &ad.servers[i]
		if sv.err != nil {
			continue
		}
		var mu sync.Mutex
		setErr := func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if sv.err == nil {
				sv.err = err
			}
		}
		ask := func(dst **dns.Msg, name string, t uint16) {
			resp, err := s.dns.ask(ctx, sv.addr, name, t, qflags{dnssec: true})
			if err != nil {
				setErr(err)
				return
			}
			*dst = resp
		}
		wg.Go(func() { ask(&sv.a, host, dns.TypeA) })
		wg.Go(func() { ask(&sv.aaaa, host, dns.TypeAAAA) })
		wg.Go(func() { ask(&sv.soa, zone, dns.TypeSOA) })
		wg.Go(func() { ask(&sv.key, zone, dns.TypeDNSKEY) })
	}
	wg.Wait()
	return ad
}

type constError string

func (e constError) Error() string { return string(e) }

const errNoAddress = constError("no address found for the server")

// answerOf summarises one server's answer for the hostname.
func answerOf(host string, sv authServer) AuthAnswer {
	a := AuthAnswer{Server: sv.name, Address: sv.addr}
	if sv.err != nil && sv.a == nil {
		a.Error = shortError(sv.err)
		return a
	}
	m := sv.a
	a.Rcode, a.Authoritative = rcodeName(m.Rcode), m.Authoritative
	if sv.soa != nil {
		for _, rr := range rrsOf(sv.soa.Answer, "", dns.TypeSOA) {
			serial := rr.(*dns.SOA).Serial
			a.Serial = &serial
		}
	}
	cur := host
	for range 8 {
		c := rrsOf(m.Answer, cur, dns.TypeCNAME)
		if len(c) == 0 {
			break
		}
		cur = norm(c[0].(*dns.CNAME).Target)
		a.Chain = append(a.Chain, cur)
	}
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			if len(a.Chain) == 0 || !sameName(r.Hdr.Name, host) {
				a.A = append(a.A, r.A.String())
			} else {
				a.Beside = append(a.Beside, "A "+r.A.String())
			}
		}
	}
	if sv.aaaa != nil {
		for _, rr := range sv.aaaa.Answer {
			if r, ok := rr.(*dns.AAAA); ok {
				if len(a.Chain) == 0 || !sameName(r.Hdr.Name, host) {
					a.AAAA = append(a.AAAA, r.AAAA.String())
				} else {
					a.Beside = append(a.Beside, "AAAA "+r.AAAA.String())
				}
			}
		}
	}
	var ttl uint32
	var ok bool
	if len(m.Answer) > 0 {
		var data []dns.RR
		for _, rr := range m.Answer {
			if rr.Header().Rrtype != dns.TypeRRSIG {
				data = append(data, rr)
			}
		}
		ttl, ok = minTTL(data), len(data) > 0
	} else {
		ttl, ok = negativeTTL(m.Ns)
	}
	if ok {
		a.TTLSeconds = &ttl
	}
	return a
}
