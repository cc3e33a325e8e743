package authlimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
)

// The cost of the limiter per request with one million addresses tracked, each of them having
// failed once (the state an attack from many addresses leaves behind). A request is what the REST
// API does for an unknown token: Blocked, then Fail.
//
//	go test -run '^$' -bench . -benchmem ./controlplane/authlimit/
//
// Measured on the 2-CPU CI VM (shared, so ±30 %):
//
//	                      before (map + prune scan)   after (set-associative table)
//	known address         ~380 ns/op, 0 allocs        ~220–260 ns/op, 0 allocs
//	new address           ~135–140 ms/op, 1 alloc     ~270–320 ns/op, 0 allocs
//
// Before, every failure from an address not yet tracked scanned all buckets under the one mutex
// once more than 100k were tracked (nothing is pruned while the attack's buckets are not full
// again), so at 1M addresses each such request held every other request up for ~0.14 s. The
// "before" figure was taken on the previous authlimit.go with the same two loops, its map filled
// directly with 2^20 buckets (filling it through Fail would itself take hours).
const tracked = 1 << 20

func filled(b *testing.B) (*authlimit.Limiter, []string) {
	b.Helper()
	l := authlimit.NewSized(10, 2*time.Second, tracked)
	keys := make([]string, tracked)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		l.Fail(keys[i], t0)
	}
	return l, keys
}

// BenchmarkRequestKnownAddress: the failing address is already tracked.
func BenchmarkRequestKnownAddress(b *testing.B) {
	l, keys := filled(b)
	now := t0.Add(time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := keys[i&(tracked-1)] // in order: the keys are near in memory, their sets are not (hashed)
		if l.Blocked(k, now) == 0 {
			l.Fail(k, now)
		}
		i++
	}
}

// BenchmarkRequestNewAddress: every request comes from an address never seen (so the table is full
// and each one evicts; the 2^20 fresh addresses repeat only after they were mostly pushed out).
func BenchmarkRequestNewAddress(b *testing.B) {
	l, _ := filled(b)
	now := t0.Add(time.Millisecond)
	fresh := make([]string, tracked)
	for i := range fresh {
		fresh[i] = fmt.Sprintf("2001:db8:%x:%x::/64", i>>8, i&255)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		k := fresh[i&(len(fresh)-1)]
		if l.Blocked(k, now) == 0 {
			l.Fail(k, now)
		}
		i++
	}
}

// BenchmarkRequestParallel: the known-address case from every CPU at once (one lock per set).
func BenchmarkRequestParallel(b *testing.B) {
	l, keys := filled(b)
	now := t0.Add(time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i&(tracked-1)]
			if l.Blocked(k, now) == 0 {
				l.Fail(k, now)
			}
			i++
		}
	})
}
