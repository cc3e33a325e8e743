package dnsverify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
)

// A negative answer's SOA says how long resolvers may keep answering "no such record"; the result
// reports it (the smaller of the SOA's TTL and MINIMUM, capped at 3 hours) and tells the customer.
func TestNegativeAnswersReportTheSOANegativeTTL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		ttl, minimum uint32
		require      bool
		publishCNAME bool
		want         int
	}{
		{"NXDOMAIN: min(TTL, MINIMUM)", 3600, 900, false, false, 900},
		{"the SOA's own TTL is smaller", 300, 86400, false, false, 300},
		{"capped at three hours", 86400, 86400, false, false, 3 * 3600},
		{"a missing TXT record", 3600, 600, true, true, 600},
		{"no SOA, nothing to report", 0, 0, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t)
			platform(s, "impulse-max.sajet.us")
			s.SetSOA("impulse-max.com", tc.ttl, tc.minimum)
			if tc.publishCNAME {
				s.AddCNAME("www.impulse-max.com", "impulse-max.sajet.us")
			}
			req := wwwRequest()
			req.RequireTXT = tc.require
			res := newVerifier(t, dnsverify.Config{DisableCAA: true}, s).Verify(context.Background(), req)
			if res.Verified || res.NegativeTTL != tc.want || res.Resolvers[0].NegativeTTL != tc.want {
				t.Fatalf("verified %v, negative TTL %d (resolver %d), want %d", res.Verified, res.NegativeTTL, res.Resolvers[0].NegativeTTL, tc.want)
			}
			if said := strings.Contains(res.Instructions.EN, "min to see it"); said != (tc.want > 0) {
				t.Errorf("instructions %q: mention the wait = %v, want %v", res.Instructions.EN, said, tc.want > 0)
			}
		})
	}
}
