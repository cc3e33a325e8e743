package testwait_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/internal/testwait"
)

// recorder is a testing.TB whose Fatalf records the message and ends the goroutine, as the real one does.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on its own goroutine (Fatalf ends it) and returns the failure, if any.
func run(t *testing.T, f func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r.fatal
}

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	start := time.Now()
	if msg := run(t, func(tb testing.TB) {
		testwait.Until(tb, 10*time.Second, "the third call", func() bool { return calls.Add(1) >= 3 })
	}); msg != "" {
		t.Fatalf("Until failed: %s", msg)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("cond called %d times, want 3 (it must stop polling once it holds)", n)
	}
	if d := time.Since(start); d < 2*testwait.Interval {
		t.Errorf("three polls took %v, want at least two intervals between them", d)
	}
}

func TestUntilFailsWithWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	start := time.Now()
	msg := run(t, func(tb testing.TB) {
		testwait.Until(tb, 100*time.Millisecond, "the moon", func() bool { calls.Add(1); return false })
		t.Error("Until returned although the condition never held")
	})
	if want := "after 100ms: timed out waiting for the moon"; msg != want {
		t.Errorf("failure %q, want %q", msg, want)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("gave up after %v, before its 100ms", d)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("cond called %d times in 100ms, want it polled", n)
	}
}

func TestForReportsTheLastReason(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	msg := run(t, func(tb testing.TB) {
		testwait.For(tb, 50*time.Millisecond, func() string { return fmt.Sprintf("not yet (call %d)", calls.Add(1)) })
	})
	if want := fmt.Sprintf("after 50ms: not yet (call %d)", calls.Load()); msg != want {
		t.Errorf("failure %q, want %q", msg, want)
	}
	if msg := run(t, func(tb testing.TB) { testwait.For(tb, time.Minute, func() string { return "" }) }); msg != "" {
		t.Errorf("For failed on a satisfied condition: %s", msg)
	}
}

// A zero timeout still asks once, so a condition that already holds never fails.
func TestZeroTimeoutAsksOnce(t *testing.T) {
	t.Parallel()
	if msg := run(t, func(tb testing.TB) { testwait.Until(tb, 0, "x", func() bool { return true }) }); msg != "" {
		t.Errorf("failed on a condition that holds: %s", msg)
	}
	var calls atomic.Int32
	msg := run(t, func(tb testing.TB) { testwait.For(tb, 0, func() string { calls.Add(1); return "no" }) })
	if calls.Load() != 1 || !strings.HasSuffix(msg, ": no") {
		t.Errorf("calls %d, failure %q; want one call and its reason", calls.Load(), msg)
	}
}
