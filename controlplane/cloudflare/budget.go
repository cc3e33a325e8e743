package cloudflare

import (
	"context"
	"sync"
	"time"
)

// budget keeps a Provider inside Cloudflare's API limit: 1200 requests per 5 minutes per token,
// and a token over it is blocked for 5 minutes (facts §2). Answering a 429 is too late, so calls
// wait here first. It is a token bucket whose burst plus refill over any window never exceeds the
// limit: burst = limit/10, refill = (limit − burst) / window.
type budget struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

// newBudget returns nil (no limit) when limit ≤ 0.
func newBudget(limit int, window time.Duration) *budget {
	if limit <= 0 || window <= 0 {
		return nil
	}
	burst := max(1, float64(limit)/10)
	return &budget{
		rate:   (float64(limit) - burst) / window.Seconds(),
		burst:  burst,
		tokens: burst,
		last:   time.Now(),
	}
}

// wait takes one token, sleeping until one is available or ctx ends.
func (b *budget) wait(ctx context.Context) error {
	if b == nil {
		return nil
	}
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		delay := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
