// Package authlimit slows down addresses that keep failing authentication, for the REST API and
// the agent gateway alike.
package authlimit

import (
	"math"
	"net"
	"sync"
	"time"
)

// Limiter slows down addresses that keep presenting bad tokens: each address has a bucket
// of Burst failures refilled at one per Interval; with the bucket empty, requests get 429 before
// any token is checked, so guessing is bounded to 1/Interval per address.
type Limiter struct {
	Burst    float64
	Interval time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New returns a Limiter allowing burst failures per address, refilled one per interval.
func New(burst int, interval time.Duration) *Limiter {
	return &Limiter{Burst: float64(burst), Interval: interval, buckets: make(map[string]*bucket)}
}

// Key is the address part of a remote "host:port".
func Key(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return host
}

// Blocked returns how long addr must wait before trying again, or 0.
func (l *Limiter) Blocked(addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addr]
	if b == nil {
		return 0
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.Interval))
}

// Fail records a failure from addr.
func (l *Limiter) Fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) > 100000 {
			l.prune(now)
		}
		b = &bucket{tokens: l.Burst, at: now}
		l.buckets[addr] = b
	}
	l.refill(b, now)
	b.tokens = math.Max(b.tokens-1, 0)
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	b.tokens = math.Min(l.Burst, b.tokens+float64(now.Sub(b.at))/float64(l.Interval))
	b.at = now
}

// prune forgets addresses whose bucket is full again; called with mu held.
func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.Burst {
			delete(l.buckets, k)
		}
	}
}
