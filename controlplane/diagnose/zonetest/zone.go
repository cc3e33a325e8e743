package zonetest

import (
	"crypto"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zone is the data of one zone as one or more servers serve it.
type Zone struct {
	tb   testing.TB
	name string

	mu      sync.RWMutex
	rrs     map[string][]dns.RR // owner → records (every type but RRSIG and NSEC, which are made per answer)
	serial  uint32
	ksk     *signingKey // nil: unsigned
	zsk     *signingKey
	broken  bool // signatures do not verify
	expired bool // signatures expired an hour ago
}

type signingKey struct {
	dnskey *dns.DNSKEY
	priv   crypto.Signer
}

func newZone(tb testing.TB, name string, ips []string) *Zone {
	z := &Zone{tb: tb, name: name, rrs: map[string][]dns.RR{}, serial: 2026112901}
	z.put(must(tb, fmt.Sprintf("%s 3600 IN SOA ns1.%s hostmaster.%s %d 7200 3600 1209600 60", name, name, name, z.serial)))
	for i, ip := range ips {
		ns := fmt.Sprintf("ns%d.%s", i+1, name)
		z.put(must(tb, fmt.Sprintf("%s %d IN NS %s", name, 86400, ns)))
		z.put(must(tb, fmt.Sprintf("%s %d IN A %s", ns, 86400, ip)))
	}
	return z
}

// Name is the zone's name, a canonical FQDN.
func (z *Zone) Name() string { return z.name }

func (z *Zone) put(rr dns.RR) {
	owner := rr.Header().Name
	z.rrs[owner] = append(z.rrs[owner], rr)
}

// bump changes the SOA serial, as a zone edit does.
func (z *Zone) bump() {
	z.serial++
	for _, rr := range z.rrs[z.name] {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial = z.serial
		}
	}
}

// Add adds records in zone-file syntax ("www.x.com. 300 IN CNAME x.sajet.us."); a name without
// a TTL gets 300 s.
func (z *Zone) Add(records ...string) {
	z.tb.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, s := range records {
		rr := must(z.tb, s)
		if !dns.IsSubDomain(z.name, rr.Header().Name) {
			z.tb.Fatalf("zonetest: %s is not in zone %s", rr.Header().Name, z.name)
		}
		z.put(rr)
	}
	z.bump()
}

// Remove deletes the records of the given types at owner (every type when none is given).
func (z *Zone) Remove(owner string, types ...uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	owner = fqdn(owner)
	if len(types) == 0 {
		delete(z.rrs, owner)
	} else {
		z.rrs[owner] = slices.DeleteFunc(z.rrs[owner], func(rr dns.RR) bool { return slices.Contains(types, rr.Header().Rrtype) })
	}
	z.bump()
}

// SetSOA sets the SOA's TTL and MINIMUM (the negative-caching TTL is the smaller, RFC 2308 §5).
func (z *Zone) SetSOA(ttl, minimum uint32) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, rr := range z.rrs[z.name] {
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Hdr.Ttl, soa.Minttl = ttl, minimum
		}
	}
}

// Sign signs the zone: a KSK (flags 257) and a ZSK (256), ECDSA P-256 SHA-256 (algorithm 13),
// published as the apex DNSKEY set; every answer carries RRSIGs when the query sets DO.
func (z *Zone) Sign() {
	z.tb.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rrs[z.name] = slices.DeleteFunc(z.rrs[z.name], func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeDNSKEY })
	z.ksk, z.zsk = z.newKey(257), z.newKey(256)
	z.put(z.ksk.dnskey)
	z.put(z.zsk.dnskey)
	z.bump()
}

func (z *Zone) newKey(flags uint16) *signingKey {
	z.tb.Helper()
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := k.Generate(256)
	if err != nil {
		z.tb.Fatalf("zonetest: generate key: %v", err)
	}
	return &signingKey{dnskey: k, priv: priv.(crypto.Signer)}
}

// DS returns the DS record (SHA-256) of the zone's KSK, as a registrar publishes it in the parent.
func (z *Zone) DS() *dns.DS {
	z.mu.RLock()
	defer z.mu.RUnlock()
	if z.ksk == nil {
		return nil
	}
	return z.ksk.dnskey.ToDS(dns.SHA256)
}

// Unsign stops signing and removes the DNSKEY set: the parent's DS (if any) then points at keys
// the zone no longer has.
func (z *Zone) Unsign() {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.ksk, z.zsk = nil, nil
	z.rrs[z.name] = slices.DeleteFunc(z.rrs[z.name], func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeDNSKEY })
	z.bump()
}

// BreakSignatures makes every signature fail to verify (a zone edited without re-signing, a key
// replaced on one server).
func (z *Zone) BreakSignatures(broken bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.broken = broken
}

// ExpireSignatures makes every signature one that expired an hour ago (a signer that stopped).
func (z *Zone) ExpireSignatures(expired bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.expired = expired
}

// Delegate delegates child from z: NS records at the child's name, glue for name servers inside
// the child, and the child's DS when it is signed now (a DS stays as published when the child
// changes its keys later, as at a registrar).
func (z *Zone) Delegate(child *Zone) {
	z.tb.Helper()
	if !dns.IsSubDomain(z.name, child.name) || z.name == child.name {
		z.tb.Fatalf("zonetest: %s is not below %s", child.name, z.name)
	}
	child.mu.RLock()
	var add []dns.RR
	for _, rr := range child.rrs[child.name] {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		add = append(add, dns.Copy(ns))
		for _, g := range child.rrs[ns.Ns] {
			if t := g.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
				add = append(add, dns.Copy(g))
			}
		}
	}
	child.mu.RUnlock()
	if ds := child.DS(); ds != nil {
		add = append(add, ds)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, rr := range add {
		z.put(rr)
	}
	z.bump()
}

// cutFor returns the delegation point at or above name inside z (a name below the apex holding
// NS records), or "".
func (z *Zone) cutFor(name string) string {
	for n := name; n != z.name && dns.IsSubDomain(z.name, n); {
		for _, rr := range z.rrs[n] {
			if rr.Header().Rrtype == dns.TypeNS {
				return n
			}
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[i:]
	}
	return ""
}

// exists reports whether name owns records or has descendants that do (an empty non-terminal).
func (z *Zone) exists(name string) bool {
	if len(z.rrs[name]) > 0 {
		return true
	}
	for owner, rrs := range z.rrs {
		if len(rrs) > 0 && owner != name && dns.IsSubDomain(name, owner) {
			return true
		}
	}
	return false
}

func (z *Zone) records(owner string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range z.rrs[owner] {
		if rr.Header().Rrtype == t {
			out = append(out, dns.Copy(rr))
		}
	}
	return out
}

// answer fills m for a query of name/qtype as an authoritative server of z.
func (z *Zone) answer(m *dns.Msg, name string, qtype uint16, do bool) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	signed := do && z.ksk != nil
	withSigs := func(rrs []dns.RR) []dns.RR {
		if signed && len(rrs) > 0 {
			rrs = append(rrs, z.sign(rrs))
		}
		return rrs
	}
	if cut := z.cutFor(name); cut != "" {
		if cut == name && qtype == dns.TypeDS {
			m.Authoritative = true
			if ds := z.records(cut, dns.TypeDS); len(ds) > 0 {
				m.Answer = withSigs(ds)
			} else {
				z.negative(m, cut, false, signed, withSigs)
			}
			return
		}
		// A referral: the child's servers, their glue, and the DS (or its absence) when DO.
		m.Ns = z.records(cut, dns.TypeNS)
		if ds := z.records(cut, dns.TypeDS); signed && len(ds) > 0 {
			m.Ns = append(m.Ns, withSigs(ds)...)
		}
		for _, rr := range m.Ns {
			if ns, ok := rr.(*dns.NS); ok && dns.IsSubDomain(cut, ns.Ns) {
				m.Extra = append(m.Extra, z.records(ns.Ns, dns.TypeA)...)
				m.Extra = append(m.Extra, z.records(ns.Ns, dns.TypeAAAA)...)
			}
		}
		return
	}
	m.Authoritative = true
	cur := name
	for hop := 0; hop < 8; hop++ {
		if !z.exists(cur) {
			if hop == 0 {
				m.Rcode = dns.RcodeNameError
			}
			z.negative(m, cur, true, signed, withSigs)
			return
		}
		if cname := z.records(cur, dns.TypeCNAME); len(cname) > 0 && qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, withSigs(cname)...)
			// Data beside the CNAME (a broken zone) is served as stored, so it can be detected.
			if other := z.records(cur, qtype); len(other) > 0 {
				m.Answer = append(m.Answer, withSigs(other)...)
			}
			target := cname[0].(*dns.CNAME).Target
			if !dns.IsSubDomain(z.name, target) || z.cutFor(target) != "" {
				return // out of zone: the resolver follows it
			}
			cur = target
			continue
		}
		if rrs := z.records(cur, qtype); len(rrs) > 0 {
			m.Answer = append(m.Answer, withSigs(rrs)...)
			return
		}
		z.negative(m, cur, false, signed, withSigs)
		return
	}
}

// negative puts the SOA (and, signed, the NSEC that proves the absence and the RRSIGs) in the
// authority section.
func (z *Zone) negative(m *dns.Msg, name string, nxdomain, signed bool, withSigs func([]dns.RR) []dns.RR) {
	m.Ns = append(m.Ns, withSigs(z.records(z.name, dns.TypeSOA))...)
	if !signed {
		return
	}
	owners := make([]string, 0, len(z.rrs))
	for o, rrs := range z.rrs {
		if len(rrs) > 0 {
			owners = append(owners, o)
		}
	}
	slices.SortFunc(owners, canonicalCompare)
	owner := name
	if nxdomain {
		owner = owners[0]
		for _, o := range owners {
			if canonicalCompare(o, name) < 0 {
				owner = o
			}
		}
	}
	next := owners[0]
	for i, o := range owners {
		if o == owner && i+1 < len(owners) {
			next = owners[i+1]
		}
	}
	types := []uint16{dns.TypeRRSIG, dns.TypeNSEC}
	for _, rr := range z.rrs[owner] {
		if t := rr.Header().Rrtype; !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	slices.Sort(types)
	nsec := &dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 60}, NextDomain: next, TypeBitMap: types}
	m.Ns = append(m.Ns, withSigs([]dns.RR{nsec})...)
}

// sign returns the RRSIG over rrset: by the KSK for the DNSKEY set, by the ZSK otherwise.
func (z *Zone) sign(rrset []dns.RR) dns.RR {
	k := z.zsk
	if rrset[0].Header().Rrtype == dns.TypeDNSKEY {
		k = z.ksk
	}
	now := time.Now()
	inception, expiration := now.Add(-time.Hour), now.Add(time.Hour)
	if z.expired {
		inception, expiration = now.Add(-3*time.Hour), now.Add(-time.Hour)
	}
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: rrset[0].Header().Ttl}, Algorithm: k.dnskey.Algorithm, KeyTag: k.dnskey.KeyTag(),
		SignerName: z.name, Inception: uint32(inception.Unix()), Expiration: uint32(expiration.Unix())}
	if err := sig.Sign(k.priv, rrset); err != nil {
		z.tb.Errorf("zonetest: sign %s: %v", rrset[0].Header().Name, err)
		return sig
	}
	if z.broken {
		// Flip one character of the base64 signature (keeping it valid base64).
		b := []byte(sig.Signature)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		sig.Signature = string(b)
	}
	return sig
}

// canonicalCompare orders names as RFC 4034 §6.1 does: label by label from the right.
func canonicalCompare(a, b string) int {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}
