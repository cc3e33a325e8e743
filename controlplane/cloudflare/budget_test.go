package cloudflare

import (
	"context"
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
		if err := b.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed, min := time.Since(start), time.Duration(float64(11-2)/18*float64(time.Second)); elapsed < min-10*time.Millisecond {
		t.Errorf("11 calls took %v; a budget of 20/s with burst 2 needs at least %v", elapsed, min)
	}
}

func TestBudgetWaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	b := newBudget(10, time.Hour) // burst 1, then one every ~6 minutes
	if err := b.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.wait(ctx); err == nil {
		t.Fatal("wait returned a token the budget does not have")
	}
}

func TestNoBudgetWhenUnlimited(t *testing.T) {
	t.Parallel()
	if b := newBudget(-1, time.Minute); b != nil {
		t.Fatalf("negative limit gave a budget %+v", b)
	}
	var b *budget
	if err := b.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}
