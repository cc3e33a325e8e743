// Package testwait is the one polling helper of the tests: wait until a condition holds, and fail
// the test with what was awaited (or the condition's last reason) when it does not within the
// bound. The bounds callers pass are for a loaded machine, not measured latencies.
package testwait

import (
	"testing"
	"time"
)

// Interval is how often a condition is polled.
const Interval = 20 * time.Millisecond

// Until polls cond every Interval until it returns true, and fails the test if it still does not
// after timeout: "timed out after <timeout> waiting for <what>". cond is called at least once.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	For(t, timeout, func() string {
		if cond() {
			return ""
		}
		return "timed out waiting for " + what
	})
}

// For polls cond every Interval until it returns "", and fails the test with cond's last answer if
// it still returns a reason after timeout: "after <timeout>: <reason>". cond is called at least once.
func For(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("after %s: %s", timeout, why)
		}
		time.Sleep(Interval)
	}
}
