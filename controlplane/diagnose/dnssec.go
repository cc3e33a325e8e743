package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// DNSSECEvidence is the chain of trust from the parent's DS to the hostname's answer.
type DNSSECEvidence struct {
	DS        []string         `json:"ds" doc:"The DS records the parent publishes for the zone (empty: DNSSEC is off)"`
	Keys      []string         `json:"keys,omitempty" doc:"The zone's DNSKEY set as its first server serves it: key tag, flags, algorithm"`
	Servers   []DNSSECServer   `json:"servers,omitempty" doc:"The chain as each server serves it"`
	Resolvers []DNSSECResolver `json:"resolvers,omitempty"`
}

// DNSSECServer is the chain as one of the zone's servers serves it.
type DNSSECServer struct {
	Server  string `json:"server"`
	Address string `json:"address"`
	Valid   bool   `json:"valid"`
	Problem string `json:"problem,omitempty" doc:"Stable code: no_keys, ds_mismatch, keys_unsigned, bad_signature, expired, unsigned_answer"`
}

// DNSSECResolver is whether a resolver validated the answer (AD) or rejects it.
type DNSSECResolver struct {
	Resolver string `json:"resolver"`
	AD       bool   `json:"ad"`
	Rejects  bool   `json:"rejects" doc:"The resolver answers SERVFAIL, and answers with checking disabled (CD): its validation fails"`
}

// Chain problems, DNSSECServer.Problem.
const (
	dnssecNoKeys         = "no_keys"         // DS at the parent, no DNSKEY in the zone
	dnssecDSMismatch     = "ds_mismatch"     // no DNSKEY matches any DS
	dnssecKeysUnsigned   = "keys_unsigned"   // the DNSKEY set has no signature by the key the DS names
	dnssecBadSignature   = "bad_signature"   // a signature does not verify
	dnssecExpired        = "expired"         // a signature is outside its validity period
	dnssecUnsignedAnswer = "unsigned_answer" // the hostname's records carry no signature
)

// chainProblem is why one server's chain does not validate.
type chainProblem struct {
	code   string
	detail i18n.Text
	fix    i18n.Text
}

// validateChain checks, as a validating resolver does, that one server's answer for host is
// authenticated from the parent's DS: a DNSKEY of the zone matches a DS (its digest), the DNSKEY
// set is signed by that key, and the hostname's answer (the CNAME or addresses, or for a name that
// does not exist the SOA and NSEC/NSEC3 records that say so) is signed by a key of that set, every
// signature verifying and within its validity period at now. It does not prove the denial of
// existence itself (which NSEC covers what); the signatures over it are checked.
func validateChain(zone, host string, ds []*dns.DS, keys, answer *dns.Msg, now time.Time) *chainProblem {
	var keySet []dns.RR
	for _, rr := range keys.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok && sameName(k.Hdr.Name, zone) {
			keySet = append(keySet, k)
		}
	}
	if len(keySet) == 0 {
		return &chainProblem{dnssecNoKeys, msgDNSSECNoKeys(zone), fixDNSSECNoKeys(zone)}
	}
	var anchor *dns.DNSKEY
	for _, d := range ds {
		for _, rr := range keySet {
			k := rr.(*dns.DNSKEY)
			if k.KeyTag() != d.KeyTag || k.Algorithm != d.Algorithm {
				continue
			}
			if got := k.ToDS(d.DigestType); got != nil && strings.EqualFold(got.Digest, d.Digest) {
				anchor = k
			}
		}
	}
	if anchor == nil {
		return &chainProblem{dnssecDSMismatch, msgDNSSECMismatch(zone, dsTags(ds), keyTags(keySet)), fixDNSSECMismatch(zone, currentDS(keySet))}
	}
	if p := verifySet(zone, keySet, sigsFor(keys.Answer, zone, dns.TypeDNSKEY), []*dns.DNSKEY{anchor}, now); p != nil {
		if p.code == dnssecUnsignedAnswer {
			return &chainProblem{dnssecKeysUnsigned, msgDNSSECKeysUnsigned(zone, anchor.KeyTag()), fixResign(zone)}
		}
		return p
	}
	zoneKeys := make([]*dns.DNSKEY, 0, len(keySet))
	for _, rr := range keySet {
		zoneKeys = append(zoneKeys, rr.(*dns.DNSKEY))
	}
	// The hostname's own RRset: its CNAME, else its addresses; for a negative answer, the
	// records of the authority section that prove it.
	var sets [][]dns.RR
	if c := rrsOf(answer.Answer, host, dns.TypeCNAME); len(c) > 0 {
		sets = append(sets, c)
	} else if a := rrsOf(answer.Answer, host, dns.TypeA); len(a) > 0 {
		sets = append(sets, a)
	} else {
		for _, t := range []uint16{dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3} {
			byOwner := map[string][]dns.RR{}
			for _, rr := range rrsOf(answer.Ns, "", t) {
				byOwner[norm(rr.Header().Name)] = append(byOwner[norm(rr.Header().Name)], rr)
			}
			for _, set := range byOwner {
				sets = append(sets, set)
			}
		}
	}
	for _, set := range sets {
		name, t := set[0].Header().Name, set[0].Header().Rrtype
		sigs := sigsFor(append(append([]dns.RR(nil), answer.Answer...), answer.Ns...), name, t)
		if p := verifySet(zone, set, sigs, zoneKeys, now); p != nil {
			return p
		}
	}
	return nil
}

// verifySet checks that one of sigs by one of keys verifies rrset and is valid at now.
func verifySet(zone string, rrset []dns.RR, sigs []*dns.RRSIG, keys []*dns.DNSKEY, now time.Time) *chainProblem {
	what := fmt.Sprintf("%s %s", norm(rrset[0].Header().Name), dns.TypeToString[rrset[0].Header().Rrtype])
	if len(sigs) == 0 {
		return &chainProblem{dnssecUnsignedAnswer, msgDNSSECUnsigned(zone, what), fixResign(zone)}
	}
	var last *chainProblem
	for _, sig := range sigs {
		for _, k := range keys {
			if sig.KeyTag != k.KeyTag() || sig.Algorithm != k.Algorithm {
				continue
			}
			if err := sig.Verify(k, rrset); err != nil {
				last = &chainProblem{dnssecBadSignature, msgDNSSECBadSig(zone, what, k.KeyTag()), fixResign(zone)}
				continue
			}
			if !sig.ValidityPeriod(now) {
				last = &chainProblem{dnssecExpired, msgDNSSECExpired(zone, what,
					time.Unix(int64(sig.Inception), 0).UTC(), time.Unix(int64(sig.Expiration), 0).UTC()), fixResign(zone)}
				continue
			}
			return nil
		}
	}
	if last == nil {
		last = &chainProblem{dnssecBadSignature, msgDNSSECNoKeyForSig(zone, what), fixResign(zone)}
	}
	return last
}

func dsTags(ds []*dns.DS) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%d (%s)", d.KeyTag, dns.AlgorithmToString[d.Algorithm]))
	}
	return out
}

func keyTags(keys []dns.RR) []string {
	var out []string
	for _, rr := range keys {
		k := rr.(*dns.DNSKEY)
		out = append(out, fmt.Sprintf("%d (%s, %d)", k.KeyTag(), dns.AlgorithmToString[k.Algorithm], k.Flags))
	}
	return out
}

// currentDS is the DS records (SHA-256) of the zone's key-signing keys, in zone-file form: what
// the registrar should publish.
func currentDS(keys []dns.RR) []string {
	var out []string
	for _, rr := range keys {
		if k := rr.(*dns.DNSKEY); k.Flags&dns.SEP != 0 {
			if d := k.ToDS(dns.SHA256); d != nil {
				out = append(out, fmt.Sprintf("%s DS %d %d %d %s", k.Hdr.Name, d.KeyTag, d.Algorithm, d.DigestType, d.Digest))
			}
		}
	}
	return out
}

// dnssecPart judges the chain of trust on every server that answered, and what the resolvers say.
func dnssecPart(d domainFacts, ad *authData, views []resolverView, now time.Time) (part, DNSSECEvidence) {
	ev := DNSSECEvidence{}
	p := part{name: PartDNSSEC, title: titleDNSSEC}
	for _, v := range views {
		if v.err == nil {
			ev.Resolvers = append(ev.Resolvers, DNSSECResolver{Resolver: v.resolver, AD: v.ad, Rejects: v.bogus})
		}
	}
	if !ad.problem.IsZero() || ad.ds == nil {
		p.verdict, p.message = Unknown, msgDNSSECUnknown
		if ad.dsErr != nil {
			p.details = []i18n.Text{i18n.Same(shortError(ad.dsErr))}
		}
		return p, ev
	}
	var ds []*dns.DS
	for _, rr := range rrsOf(ad.ds.Answer, ad.zone, dns.TypeDS) {
		ds = append(ds, rr.(*dns.DS))
		ev.DS = append(ev.DS, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	for _, sv := range ad.servers {
		if sv.key != nil {
			for _, rr := range rrsOf(sv.key.Answer, ad.zone, dns.TypeDNSKEY) {
				k := rr.(*dns.DNSKEY)
				ev.Keys = append(ev.Keys, fmt.Sprintf("%d %d %s", k.KeyTag(), k.Flags, dns.AlgorithmToString[k.Algorithm]))
			}
			break
		}
	}
	var rejecting []string
	for _, r := range ev.Resolvers {
		if r.Rejects {
			rejecting = append(rejecting, r.Resolver)
		}
	}
	if len(ds) == 0 {
		p.verdict, p.message = OK, msgDNSSECOff(ad.zone, len(ev.Keys) > 0)
		if len(rejecting) > 0 { // a resolver rejects what it cannot have validated: not DNSSEC's fault here
			p.details = append(p.details, msgDNSSECRejectsAnyway(rejecting))
		}
		return p, ev
	}
	var first *chainProblem
	checked := 0
	for _, sv := range ad.servers {
		if sv.key == nil || sv.a == nil {
			continue
		}
		checked++
		s := DNSSECServer{Server: sv.name, Address: sv.addr, Valid: true}
		if prob := validateChain(ad.zone, d.host, ds, sv.key, sv.a, now); prob != nil {
			s.Valid, s.Problem = false, prob.code
			if first == nil {
				first = prob
			}
			p.details = append(p.details, i18n.F("%s: %s", "%s: %s", sv.name+" ("+sv.addr+")", prob.detail))
		} else {
			p.details = append(p.details, i18n.F("%s: cadena válida desde el DS", "%s: chain valid from the DS", sv.name+" ("+sv.addr+")"))
		}
		ev.Servers = append(ev.Servers, s)
	}
	var validated []string
	for _, r := range ev.Resolvers {
		if r.AD {
			validated = append(validated, r.Resolver)
		}
	}
	switch {
	case first != nil:
		p.verdict, p.message, p.fix = Fail, first.detail, first.fix
	case len(rejecting) > 0:
		p.verdict, p.message, p.fix = Fail, msgDNSSECResolverRejects(d.host, rejecting), fixResign(ad.zone)
	case checked == 0:
		p.verdict, p.message = Unknown, msgDNSSECUnknown
	default:
		p.verdict, p.message = OK, msgDNSSECValid(ad.zone, validated)
	}
	return p, ev
}
