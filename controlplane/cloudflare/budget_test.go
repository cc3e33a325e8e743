package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The budget never allows more than its limit in any window: after the burst, calls are spread at
// the refill rate. Only lower bounds on elapsed time are asserted (a slow machine only adds time).
func TestBudgetSpreadsCallsAfterTheBurst(t *testing.T) {
	t.Parallel()
	b := newBudget(20, time.Second) // burst 2, then 18 per second
	start := time.Now()
	for range 11 {
		if err := waitBudget(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed, min := time.Since(start), time.Duration(float64(11-2)/18*float64(time.Second)); elapsed < min-10*time.Millisecond {
		t.Errorf("11 calls took %v; a budget of 20/s with burst 2 needs at least %v", elapsed, min)
	}
}

// The same property for the real figures, on the limiter's own clock (no sleeping): callers
// that take every call as soon as the budget allows never get more than the limit into any
// window, and do get close to it (the budget is not needlessly stingy).
func TestBudgetNeverExceedsTheLimitInAnyWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		limit  int
		window time.Duration
	}{{1200, 5 * time.Minute}, {20, time.Second}, {10, time.Hour}, {15, time.Minute}, {2, time.Minute}, {1, time.Minute}} {
		t.Run(fmt.Sprintf("%d per %v", tc.limit, tc.window), func(t *testing.T) {
			b := newBudget(tc.limit, tc.window)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			now := start
			var grants []time.Time
			for now.Sub(start) < 3*tc.window {
				r := b.ReserveN(now, 1)
				if !r.OK() {
					t.Fatalf("the budget refused a single call at %v", now.Sub(start))
				}
				now = now.Add(r.DelayFrom(now))
				grants = append(grants, now)
			}
			j := 0
			for i := range grants { // the calls in [grants[i], grants[i]+window)
				for j < len(grants) && grants[j].Sub(grants[i]) < tc.window {
					j++
				}
				if n := j - i; n > tc.limit {
					t.Fatalf("%d calls in the window starting at %v; the limit is %d", n, grants[i].Sub(start), tc.limit)
				}
			}
			first := 0
			for first < len(grants) && grants[first].Sub(start) <= tc.window {
				first++
			}
			if first < tc.limit {
				t.Errorf("only %d calls in the first window; the budget allows %d", first, tc.limit)
			}
		})
	}
}

func TestBudgetWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	b := newBudget(10, time.Hour) // burst 1, then one every ~6 minutes
	if err := waitBudget(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := waitBudget(ctx, b)
	if err == nil {
		t.Fatal("wait returned a token the budget does not have")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past the deadline: %v, want context.DeadlineExceeded", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := waitBudget(ctx, b); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a canceled context: %v, want context.Canceled", err)
	}
}

func TestNoBudgetWhenUnlimited(t *testing.T) {
	t.Parallel()
	if b := newBudget(-1, time.Minute); b != nil {
		t.Fatalf("negative limit gave a budget (%v per second, burst %d)", b.Limit(), b.Burst())
	}
	if err := waitBudget(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{APIToken: "t", ZoneID: "z", CallsPerWindow: -1})
	if err != nil {
		t.Fatal(err)
	}
	if p.budget != nil {
		t.Errorf("CallsPerWindow -1 gave the provider a budget (%v per second, burst %d)", p.budget.Limit(), p.budget.Burst())
	}
	if p, err = New(Config{APIToken: "t", ZoneID: "z"}); err != nil {
		t.Fatal(err)
	}
	if p.budget == nil || p.budget.Burst() != 120 || float64(p.budget.Limit()) != (1200.0-120)/300 {
		t.Errorf("the default budget is not 1200 per 5 minutes (burst 120, refill 3.6/s)")
	}
}
