package dnsverify

import (
	"time"

	"github.com/miekg/dns"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// maxNegativeTTL caps the negative TTL we honour and report: BIND caches negative answers for at
// most 3 hours (max-ncache-ttl), Unbound for 1 hour (cache-max-negative-ttl), so a zone's larger
// SOA MINIMUM does not make a resolver wait longer than this.
const maxNegativeTTL = 3 * time.Hour

// negativeTTL returns how long a resolver may keep answering "no such record" after msg, a
// negative answer (NXDOMAIN, or NOERROR without a record of qtype): RFC 2308 §5, the smaller of
// the SOA's own TTL and its MINIMUM field, capped at maxNegativeTTL. Zero when msg is positive or
// carries no SOA.
func negativeTTL(msg *dns.Msg, qtype uint16) time.Duration {
	if msg == nil || (msg.Rcode != dns.RcodeNameError && msg.Rcode != dns.RcodeSuccess) {
		return 0
	}
	if msg.Rcode == dns.RcodeSuccess {
		for _, rr := range msg.Answer {
			if rr.Header().Rrtype == qtype {
				return 0
			}
		}
	}
	for _, rr := range msg.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := min(soa.Hdr.Ttl, soa.Minttl)
			return min(time.Duration(ttl)*time.Second, maxNegativeTTL)
		}
	}
	return 0
}

// negativeCacheNote tells the customer how long resolvers may keep the old "no such record"
// answer after they publish the record.
func negativeCacheNote(ttl time.Duration) i18n.Text {
	minutes := int((ttl + time.Minute - 1) / time.Minute)
	return i18n.F("Si acaba de publicarlo, los resolvers pueden tardar hasta %d min en verlo (guardan la respuesta negativa según el TTL negativo del SOA de su zona)",
		"If you just published it, resolvers may take up to %d min to see it (they keep the negative answer for the negative TTL of your zone's SOA)", minutes)
}
