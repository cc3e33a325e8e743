package cloudflare

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// newBudget returns the limiter that keeps a Provider inside Cloudflare's API limit: 1200
// requests per 5 minutes per token, and a token over it is blocked for 5 minutes (docs/CLOUDFLARE.md §2).
// Answering a 429 is too late, so calls wait for it first. It is a token bucket whose burst plus
// refill over any window never exceeds the limit: burst = limit/10 (at least 1), refill =
// (limit − burst) / window; it starts full. nil (no limit) when limit ≤ 0.
func newBudget(limit int, window time.Duration) *rate.Limiter {
	if limit <= 0 || window <= 0 {
		return nil
	}
	burst := max(1, limit/10)
	if burst >= limit { // a limit of 1: one call, then one per window
		return rate.NewLimiter(rate.Every(window), 1)
	}
	return rate.NewLimiter(rate.Limit(float64(limit-burst)/window.Seconds()), burst)
}

// waitBudget takes one call from the budget, sleeping until one is available or ctx ends. A
// nil budget never waits. When the next call is free only after ctx's deadline it returns at
// once (the limiter knows it would be too late) with an error that is still
// context.DeadlineExceeded, like a wait that ran into the deadline.
func waitBudget(ctx context.Context, b *rate.Limiter) error {
	if b == nil {
		return nil
	}
	err := b.Wait(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w (the budget frees the next call only after the deadline: %v)", context.DeadlineExceeded, err)
	}
	return err
}
