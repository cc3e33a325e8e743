// Package clock is the time the control plane's automation decides by: a real clock in production,
// one that tests move by hand (Manual), and one a test binary shifts forward through an explicit
// switch (Offset), so a test can live through a seven-day grace period without sleeping for it.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// System is the real clock.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Manual is a clock that moves only when told to. The zero value starts at the real time of its
// first use.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a Manual clock at t.
func NewManual(t time.Time) *Manual { return &Manual{now: t} }

// Now returns the clock's time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.now.IsZero() {
		m.now = time.Now()
	}
	return m.now
}

// Advance moves the clock forward by d (never backward).
func (m *Manual) Advance(d time.Duration) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.now.IsZero() {
		m.now = time.Now()
	}
	if d > 0 {
		m.now = m.now.Add(d)
	}
	return m.now
}

// Offset is the real clock shifted forward by an amount that only grows: the real binary's test
// switch (--test-clock) moves it, so time keeps flowing for timeouts and River while the
// automation's decisions see days pass.
type Offset struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the real time plus the offset.
func (o *Offset) Now() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Now().Add(o.offset)
}

// Advance adds d (ignored unless positive) to the offset and returns the new time.
func (o *Offset) Advance(d time.Duration) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d > 0 {
		o.offset += d
	}
	return time.Now().Add(o.offset)
}
