package diagnose_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkDiagnose measures one report for a domain whose tunnel has two agents connected (real
// sajet-agent processes, each probing a loopback backend), against loopback DNS (a resolver
// iterating from the parent, a signed child zone on two servers) and the fake Cloudflare API:
// every part, the DNSSEC validation and both probes included. Reports are spaced 500 ms apart so
// the agents' own probe budget (10, then 2 per second) is never what is measured.
// Target: p50 ≤ 300 ms.
func BenchmarkDiagnose(b *testing.B) {
	for b.Loop() {
		w := newWorld(b)
		w.cfg.ProbeTimeout = 2 * time.Second
		startFleet(b, w, startBackend(b), "pct-105", "pct-106")
		w.report(b) // warm up: connections, the template database's caches
		const n = 100
		lat := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			r := w.report(b)
			lat = append(lat, time.Since(start))
			if !r.Works {
				data, _ := json.MarshalIndent(r, "", "  ")
				b.Fatalf("the domain should work:\n%s", data)
			}
			time.Sleep(max(0, 500*time.Millisecond-time.Since(start)))
		}
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
		out, _ := json.Marshal(map[string]any{"bench": "diagnose", "agents": 2, "reports": n, "p50_ms": pct(0.5),
			"p90_ms": pct(0.9), "p99_ms": pct(0.99), "max_ms": pct(1)})
		fmt.Println(string(out))
		b.Log(string(out))
		b.ReportMetric(pct(0.5), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	}
}
