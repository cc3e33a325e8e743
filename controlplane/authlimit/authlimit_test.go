package authlimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.7:443":                     "203.0.113.7",
		"203.0.113.7":                         "203.0.113.7",
		"[::ffff:203.0.113.7]:80":             "203.0.113.7", // IPv4-mapped counts as IPv4
		"[2001:db8:1:2:aaaa:bbbb:cccc:1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2::ffff]:1":              "2001:db8:1:2::/64", // same /64, same key
		"[2001:db8:1:3::1]:1":                 "2001:db8:1:3::/64", // next /64, another key
		"[fe80::1%eth0]:22":                   "fe80::/64",         // zone dropped
		"2001:db8::1":                         "2001:db8::/64",
		"@":                                   "@", // not an address: its own key
	} {
		if got := authlimit.Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every address of one IPv6 /64 shares one budget: rotating the interface identifier does not
// buy fresh attempts, while the neighbouring /64 is unaffected.
func TestIPv6AddressesOfOneSlash64ShareABudget(t *testing.T) {
	t.Parallel()
	l := authlimit.New(3, time.Minute)
	for i := range 3 {
		l.Fail(authlimit.Key(fmt.Sprintf("[2001:db8:aa:bb::%x]:5000", i+1)), t0)
	}
	if w := l.Blocked(authlimit.Key("[2001:db8:aa:bb:ffff:ffff:ffff:ffff]:1"), t0); w <= 0 {
		t.Error("a fresh address of the same /64 is not blocked after the /64 used its budget")
	}
	if w := l.Blocked(authlimit.Key("[2001:db8:aa:bc::1]:1"), t0); w != 0 {
		t.Errorf("the next /64 is blocked for %s", w)
	}
}

func TestBurstAndRefill(t *testing.T) {
	t.Parallel()
	l := authlimit.New(3, 2*time.Second)
	for i := range 3 {
		if w := l.Blocked("a", t0); w != 0 {
			t.Fatalf("blocked after %d failures (burst 3): %s", i, w)
		}
		l.Fail("a", t0)
	}
	if w := l.Blocked("a", t0); w != 2*time.Second {
		t.Fatalf("after 3 failures: wait %s, want 2s", w)
	}
	if w := l.Blocked("b", t0); w != 0 {
		t.Errorf("another key is blocked: %s", w)
	}
	if w := l.Blocked("a", t0.Add(time.Second)); w != time.Second {
		t.Errorf("half refilled: wait %s, want 1s", w)
	}
	if w := l.Blocked("a", t0.Add(2*time.Second)); w != 0 {
		t.Errorf("one token back after one interval, still blocked %s", w)
	}
	l.Fail("a", t0.Add(2*time.Second))
	if w := l.Blocked("a", t0.Add(2*time.Second)); w != 2*time.Second {
		t.Errorf("the refilled token was not taken: wait %s", w)
	}
}

func TestTake(t *testing.T) {
	t.Parallel()
	l := authlimit.New(2, 10*time.Second)
	for i := range 2 {
		if w := l.Take("k", t0); w != 0 {
			t.Fatalf("take %d within the burst: wait %s", i, w)
		}
	}
	if w := l.Take("k", t0); w != 10*time.Second {
		t.Fatalf("take beyond the burst: wait %s, want 10s", w)
	}
	if w := l.Take("k", t0.Add(5*time.Second)); w != 5*time.Second {
		t.Errorf("a refused take must not spend the partial token: wait %s, want 5s", w)
	}
	if w := l.Take("k", t0.Add(10*time.Second)); w != 0 {
		t.Errorf("after one interval: wait %s, want 0", w)
	}
}

// The table never holds more than its capacity, however many addresses fail.
func TestMemoryIsBounded(t *testing.T) {
	t.Parallel()
	l := authlimit.NewSized(10, time.Second, 1000)
	if l.Capacity() != 1024 {
		t.Fatalf("capacity %d, want 1000 rounded up to 1024", l.Capacity())
	}
	for i := range 100_000 {
		l.Fail(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), t0)
	}
	if n := l.Len(); n > l.Capacity() || n < l.Capacity()/2 {
		t.Errorf("tracking %d addresses with capacity %d", n, l.Capacity())
	}
}

// A new address evicts the bucket that matters least: a full one before a blocked one.
func TestEvictionKeepsBlockedAddresses(t *testing.T) {
	t.Parallel()
	l := authlimit.NewSized(2, time.Hour, 4) // one set of four slots: every key competes
	for _, k := range []string{"blocked-1", "blocked-2", "blocked-3"} {
		l.Fail(k, t0)
		l.Fail(k, t0)
	}
	l.Fail("one-failure", t0)
	for i := range 50 { // addresses failing once each push out the least blocked, never the blocked
		l.Fail(fmt.Sprintf("passer-by-%d", i), t0)
	}
	for _, k := range []string{"blocked-1", "blocked-2", "blocked-3"} {
		if l.Blocked(k, t0) == 0 {
			t.Errorf("%s was evicted by addresses that failed once", k)
		}
	}
	if n := l.Len(); n != 4 {
		t.Errorf("%d keys tracked in a table of 4", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	l := authlimit.NewSized(5, time.Second, 64)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				k := fmt.Sprintf("%d-%d", g, i%100)
				l.Fail(k, t0)
				l.Blocked(k, t0)
				l.Take(k, t0)
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := l.Len(); n > 64 {
		t.Errorf("%d keys in a table of 64", n)
	}
}
