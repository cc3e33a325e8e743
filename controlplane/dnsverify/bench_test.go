package dnsverify_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
)

// BenchmarkVerify1000Concurrent verifies 1,000 different domains at once (a reverify job after
// an outage, say) against one loopback resolver, each with a two-hop chain, a required TXT token
// and the CAA lookups, and reports the wall time of the whole batch.
func BenchmarkVerify1000Concurrent(b *testing.B) {
	const domains = 1000
	srv := dnstest.Start(b)
	platform(srv, tunnel)
	reqs := make([]dnsverify.Request, domains)
	for i := range reqs {
		apex := fmt.Sprintf("domain%04d.com", i)
		sub := fmt.Sprintf("domain%04d.sajet.us", i)
		srv.AddCNAME("www."+apex, sub)
		srv.AddCNAME(sub, tunnel)
		srv.AddTXT("_jeturing-verify."+apex, token)
		reqs[i] = dnsverify.Request{
			Hostname:   "www." + apex,
			Expected:   sub,
			TXTName:    "_jeturing-verify." + apex,
			TXTToken:   token,
			RequireTXT: true,
		}
	}
	v := newVerifier(b, dnsverify.Config{}, srv)

	var total time.Duration
	batches := 0
	startQueries := srv.Queries()
	for b.Loop() {
		var wg sync.WaitGroup
		var failed atomic.Int64
		start := time.Now()
		for _, req := range reqs {
			wg.Go(func() {
				if res := v.Verify(b.Context(), req); !res.Verified {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
		batches++
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of %d domains not verified", n, domains)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(batches), "ms/1000domains")
	b.ReportMetric(float64(srv.Queries()-startQueries)/float64(batches*domains), "queries/domain")
}
