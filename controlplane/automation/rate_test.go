package automation_test

import (
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// Delivery attempts never exceed DeliveryRate: a burst of 12 at 10 per second (burst 2, the
// worker count) cannot all arrive before a second has passed. Only the lower bound is asserted,
// which a slow machine cannot break.
func TestDeliveriesKeepToTheirRate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{mutate: func(c *automation.Config) { c.DeliveryRate, c.DeliveryWorkers = 10, 2 }})
	hook := newReceiver(t)
	ep := w.endpoint(hook)
	const n = 12
	start := time.Now()
	for range n {
		if _, err := w.auto.TestEndpoint(w.ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 30*time.Second, func() string {
		if hook.requests() < n {
			return "not every test event arrived"
		}
		return ""
	})
	if took, least := time.Since(start), time.Duration(n-2)*time.Second/10; took < least {
		t.Errorf("%d deliveries at 10/s (burst 2) arrived in %s; the limit allows no less than %s", n, took, least)
	}
}
