// Package authlimit slows down addresses that keep failing authentication, for the REST API and
// the agent gateway alike, and offers the same token bucket for other per-key budgets.
//
// Memory is fixed and every call is O(1): the buckets live in a set-associative table (a CPU
// cache's layout) of Capacity slots, four per set, each set with its own lock. A key is hashed
// (seeded per process, so nobody can aim keys at one set) to its set; a new key takes an empty slot
// of its set or evicts the slot that matters least — the one with the most tokens after refill, i.e.
// the address closest to being allowed again. A bucket that is full again is as good as no bucket,
// so evicting it loses nothing. Only a caller with more distinct addresses than the table holds can
// push blocked addresses out, and then the least blocked go first.
package authlimit

import (
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultCapacity is the number of addresses New tracks (about 6.5 MiB for 262,144 slots,
// allocated up front and touched only as addresses arrive).
const DefaultCapacity = 1 << 18

// ways is the number of slots per set.
const ways = 4

// Limiter gives each key a bucket of Burst tokens refilled at one per Interval. For bad tokens,
// Fail takes a token and Blocked reports an empty bucket, so guessing is bounded to 1/Interval per
// address; Take is the same bucket as a plain rate limit (check and take in one step).
type Limiter struct {
	// Burst and Interval are set by New; changing them afterwards is not supported.
	Burst    float64
	Interval time.Duration

	seed maphash.Seed
	sets []set
	mask uint64
}

// set is one lock and its slots: 8 + 4×24 bytes, no pointers (the GC never scans the table).
type set struct {
	mu    sync.Mutex
	slots [ways]slot
}

type slot struct {
	key    uint64 // hash of the key; 0 = empty
	at     int64  // when tokens was last brought up to date (UnixNano)
	tokens float64
}

// New returns a Limiter allowing burst failures per address, refilled one per interval, tracking
// up to DefaultCapacity addresses.
func New(burst int, interval time.Duration) *Limiter {
	return NewSized(burst, interval, DefaultCapacity)
}

// NewSized is New with room for capacity keys (rounded up to a power of two, at least 4).
func NewSized(burst int, interval time.Duration, capacity int) *Limiter {
	n := 1
	for n*ways < capacity {
		n <<= 1
	}
	return &Limiter{Burst: float64(burst), Interval: interval, seed: maphash.MakeSeed(),
		sets: make([]set, n), mask: uint64(n - 1)}
}

// Capacity is the number of keys the limiter can track at once.
func (l *Limiter) Capacity() int { return len(l.sets) * ways }

// Key is the limiter key of a remote "host:port" (or a bare host): the IPv4 address, or the /64
// of an IPv6 address — one subscriber usually holds a whole /64, so keying single IPv6 addresses
// would give it 2^64 fresh budgets. IPv4-mapped IPv6 addresses count as IPv4; zones are dropped.
// Anything that is not an IP address is its own key.
func Key(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return KeyAddr(a)
}

// KeyAddr is Key for a parsed address.
func KeyAddr(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// Blocked returns how long key must wait before trying again, or 0. It changes nothing.
func (l *Limiter) Blocked(key string, now time.Time) time.Duration {
	h := l.hash(key)
	s := &l.sets[h&l.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.slots {
		if sl := &s.slots[i]; sl.key == h {
			return l.wait(l.level(sl, now))
		}
	}
	return 0
}

// Fail records a failure from key: it takes a token if there is one.
func (l *Limiter) Fail(key string, now time.Time) {
	h := l.hash(key)
	s := &l.sets[h&l.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := l.slot(s, h, now)
	sl.tokens = max(l.level(sl, now)-1, 0)
	sl.at = now.UnixNano()
}

// Take takes a token for key and returns 0, or, with the bucket empty, takes nothing and returns
// how long until a token is available.
func (l *Limiter) Take(key string, now time.Time) time.Duration {
	h := l.hash(key)
	s := &l.sets[h&l.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := l.slot(s, h, now)
	tokens := l.level(sl, now)
	sl.at = now.UnixNano()
	if tokens < 1 {
		sl.tokens = tokens
		return l.wait(tokens)
	}
	sl.tokens = tokens - 1
	return 0
}

// Len counts the keys tracked (O(capacity): for tests and metrics, not for requests).
func (l *Limiter) Len() int {
	n := 0
	for i := range l.sets {
		s := &l.sets[i]
		s.mu.Lock()
		for _, sl := range s.slots {
			if sl.key != 0 {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

func (l *Limiter) hash(key string) uint64 {
	h := maphash.String(l.seed, key)
	if h == 0 {
		h = 1
	}
	return h
}

// slot returns key h's slot in s, taking one for it if it has none; called with s.mu held.
func (l *Limiter) slot(s *set, h uint64, now time.Time) *slot {
	var victim *slot
	best := -1.0
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.key == h {
			return sl
		}
		if sl.key == 0 {
			if best < l.Burst+1 {
				victim, best = sl, l.Burst+1 // an empty slot beats any bucket
			}
			continue
		}
		if lv := l.level(sl, now); lv > best {
			victim, best = sl, lv
		}
	}
	*victim = slot{key: h, at: now.UnixNano(), tokens: l.Burst}
	return victim
}

// level is sl's token count at now (refilled, capped at Burst).
func (l *Limiter) level(sl *slot, now time.Time) float64 {
	elapsed := float64(now.UnixNano() - sl.at)
	if elapsed < 0 {
		elapsed = 0
	}
	return min(l.Burst, sl.tokens+elapsed/float64(l.Interval))
}

func (l *Limiter) wait(tokens float64) time.Duration {
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(l.Interval))
}
