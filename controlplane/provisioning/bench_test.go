package provisioning_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/provisioning"
)

// BenchmarkProvision1000 provisions 1,000 new domains against the fake Cloudflare answering every
// call after 20 ms, with SAJET_BENCH_CONCURRENCY concurrent Cloudflare calls (default 20). It reports Cloudflare calls
// per domain (target ≤ 1.1) and the wall time against the floor calls × 20 ms ÷ concurrency
// (target ≤ 1.5×).
func BenchmarkProvision1000(b *testing.B) {
	concurrency := 20
	if v, err := strconv.Atoi(os.Getenv("SAJET_BENCH_CONCURRENCY")); err == nil && v > 0 {
		concurrency = v
	}
	n := 1000
	latency := 20 * time.Millisecond
	if v, err := time.ParseDuration(os.Getenv("SAJET_BENCH_LATENCY")); err == nil {
		latency = v
	}
	for range b.N {
		b.StopTimer()
		bb := setup(b)
		if _, err := bb.pool.Exec(context.Background(), `UPDATE customers SET domain_quota = 100000`); err != nil {
			b.Fatal(err)
		}
		// The API budget (1200 calls / 5 min) is lifted: this measures our own overhead.
		p := bb.newProvisioner(func(c *provisioning.Config) {
			c.DNS = bb.provider(-1)
			c.Concurrency = concurrency
			c.FetchCooldown = 2 * time.Millisecond
		})
		var ids []int64
		for i := range n {
			ids = append(ids, bb.register(fmt.Sprintf("shop%d.bench%d.com", i, i)).ID)
		}
		bb.cf.SetLatency(latency)
		before := bb.cf.CallCount()
		b.StartTimer()
		start := time.Now()
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			bb.waitFor(id, "configured", configured)
		}
		wall := time.Since(start)
		b.StopTimer()
		calls := bb.cf.CallCount() - before
		floor := time.Duration(calls) * latency / time.Duration(concurrency)
		b.ReportMetric(float64(calls)/float64(n), "calls/domain")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(floor.Seconds(), "floor-s")
		b.ReportMetric(wall.Seconds()/floor.Seconds(), "wall/floor")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = p.Stop(ctx)
		cancel()
	}
	b.ReportMetric(0, "ns/op")
}
