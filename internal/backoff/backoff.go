// Package backoff is the one retry schedule of everything that reconnects: the agent's link to
// the control plane and the control plane's LISTEN connections. Delays double from Min up to Max,
// each with ±20% jitter so that a fleet (or a set of replicas) that lost its peer at the same
// moment does not come back at the same moment.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff hands out successive delays. The zero value is not usable; use New.
type Backoff struct {
	min, max, next time.Duration
}

// New returns a schedule starting at min and capped at max.
func New(min, max time.Duration) *Backoff {
	return &Backoff{min: min, max: max, next: min}
}

// Next returns the delay to wait now (the current step with jitter) and doubles the step for the
// next call, up to the cap.
func (b *Backoff) Next() time.Duration {
	d := time.Duration(float64(b.next) * (0.8 + 0.4*rand.Float64()))
	b.next = min(b.next*2, b.max)
	return d
}

// Peek returns the current step without jitter, for logs ("retrying in about …").
func (b *Backoff) Peek() time.Duration { return b.next }

// Reset starts again from the first step: the connection lived long enough that the next
// failure is a new incident.
func (b *Backoff) Reset() { b.next = b.min }

// Max jumps to the cap: a failure that waiting will not fix soon (an operator must act).
func (b *Backoff) Max() { b.next = b.max }

// Sleep waits d or until ctx ends, and reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
