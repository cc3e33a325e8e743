package cloudflare_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
)

// BenchmarkEnsureCNAME provisions one record per iteration against a fake answering in 20 ms,
// roughly Cloudflare's latency: the time per op is dominated by calls × 20 ms.
func BenchmarkEnsureCNAME(b *testing.B) {
	for _, tc := range []struct {
		name      string
		uncertain bool
		existing  bool
	}{
		{name: "new record"},
		{name: "record already ours (adopt)", existing: true},
		{name: "retry after uncertain failure, record there", uncertain: true, existing: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			bd := setup(b)
			bd.srv.SetLatency(20 * time.Millisecond)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				name := fmt.Sprintf("t%d.sajet.us", i)
				if tc.existing {
					bd.srv.AddRecord(cftest.Record{Type: "CNAME", Name: name, Content: tunnelTarget, Proxied: true, Comment: cloudflare.Comment(int64(i))})
				}
				if _, err := bd.p.EnsureCNAME(ctx, int64(i), name, tunnelTarget, tc.uncertain); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bd.srv.CallCount())/float64(i), "calls/op")
		})
	}
}

// BenchmarkListOurRecords lists a zone of 10,000 records of ours (what the reconciler does
// every interval).
func BenchmarkListOurRecords(b *testing.B) {
	bd := setup(b)
	for i := range 10000 {
		bd.srv.AddRecord(cftest.Record{Type: "CNAME", Name: fmt.Sprintf("t%d", i), Content: tunnelTarget, Proxied: true, Comment: cloudflare.Comment(int64(i + 1))})
	}
	bd.srv.SetLatency(20 * time.Millisecond)
	ctx := context.Background()
	n := 0
	for b.Loop() {
		n++
		recs, err := bd.p.ListOurRecords(ctx)
		if err != nil || len(recs) != 10000 {
			b.Fatalf("%d records, err %v", len(recs), err)
		}
	}
	b.ReportMetric(float64(bd.srv.CallCount())/float64(n), "calls/op")
}
