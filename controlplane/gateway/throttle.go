package gateway

import (
	"log/slog"
	"sync"
	"time"
)

// logEvery is how often one kind of warning may be logged, per session (or, before
// authentication, per gateway): a peer that repeats a mistake thousands of times gets one line
// every logEvery with the number of repeats, not a line each.
const logEvery = 10 * time.Second

// logThrottle lets through at most one line per key and logEvery; the next line that passes carries
// how many were suppressed in between. Keys are a small fixed set (error codes, warning kinds).
type logThrottle struct {
	mu   sync.Mutex
	last map[string]*throttled
}

type throttled struct {
	at         time.Time
	suppressed int
}

// warn logs msg at Warn unless a line of the same key was logged less than logEvery ago.
func (t *logThrottle) warn(logger *slog.Logger, key, msg string, args ...any) {
	now := time.Now()
	t.mu.Lock()
	if t.last == nil {
		t.last = map[string]*throttled{}
	}
	e := t.last[key]
	if e != nil && now.Sub(e.at) < logEvery {
		e.suppressed++
		t.mu.Unlock()
		return
	}
	suppressed := 0
	if e != nil {
		suppressed = e.suppressed
	}
	t.last[key] = &throttled{at: now}
	t.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed_since_last_line", suppressed)
	}
	logger.Warn(msg, args...)
}

// bucket is a token bucket: burst tokens, one more every interval.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	at     time.Time
}

// take takes a token if there is one.
func (b *bucket) take(now time.Time, burst int, every time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.at.IsZero() {
		b.tokens, b.at = float64(burst), now
	}
	b.tokens = min(float64(burst), b.tokens+float64(now.Sub(b.at))/float64(every))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
