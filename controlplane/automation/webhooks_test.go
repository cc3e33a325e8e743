package automation_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// testEvent sends a webhook.test to ep and returns its delivery once it settled.
func (w *world) testEvent(ep store.WebhookEndpoint) store.Delivery {
	w.t.Helper()
	eventID, err := w.auto.TestEndpoint(w.ctx, ep)
	if err != nil {
		w.t.Fatal(err)
	}
	var d store.Delivery
	testwait.For(w.t, 20*time.Second, func() string {
		ds, err := w.st.ListDeliveries(w.ctx, store.DeliveryFilter{EndpointID: ep.ID})
		if err != nil {
			w.t.Fatal(err)
		}
		for _, x := range ds {
			if x.EventID == eventID && x.Status != store.DeliveryPending {
				d = x
				return ""
			}
		}
		return "the test event's delivery did not settle"
	})
	return d
}

// Failures are retried with the same webhook-id until the receiver answers 2xx; a redirect is a
// failure and is not followed; every attempt is in the delivery log with its status and excerpt.
func TestDeliveriesRetryUntilDelivered(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	hook := newReceiver(t)
	ep := w.endpoint(hook)
	hook.answer(http.StatusNoContent, nil, http.StatusInternalServerError, http.StatusFound)
	d := w.testEvent(ep)
	if d.Status != store.DeliverySucceeded || d.Attempts != 3 {
		t.Fatalf("delivery %+v, want succeeded at the third attempt", d)
	}
	got := hook.events()
	if len(got) != 3 || got[0].ID != got[2].ID || got[0].Type != "webhook.test" {
		t.Fatalf("received %+v, want three attempts of one message", got)
	}
	attempts, _ := w.st.DeliveryAttempts(w.ctx, d.ID)
	if len(attempts) != 3 || *attempts[0].StatusCode != 500 || *attempts[1].StatusCode != 302 || attempts[1].Error == nil ||
		!strings.Contains(*attempts[1].Error, "not followed") || *attempts[2].StatusCode != 204 {
		t.Errorf("delivery log %+v", attempts)
	}
}

// A 429 with Retry-After is waited out (not counted as an attempt); a receiver that never
// answers 2xx makes the delivery fail when the attempts run out.
func TestRetryAfterIsHonouredAndAttemptsRunOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	hook := newReceiver(t)
	ep := w.endpoint(hook)
	hook.answer(http.StatusOK, http.Header{"Retry-After": {"1"}}, http.StatusTooManyRequests)
	start := time.Now()
	d := w.testEvent(ep)
	if d.Status != store.DeliverySucceeded || time.Since(start) < time.Second {
		t.Errorf("delivery %+v after %v, want delivered after the 1 s the receiver asked for", d, time.Since(start))
	}

	hook.answer(http.StatusBadGateway, http.Header{})
	d = w.testEvent(ep)
	if d.Status != store.DeliveryFailed || d.Attempts != 4 || *d.LastStatus != 502 {
		t.Errorf("delivery %+v, want failed after 1 + 3 retries", d)
	}
	if ep, _ := w.st.GetWebhookEndpoint(w.ctx, ep.ID); !ep.Enabled || ep.FailingSince == nil {
		t.Errorf("endpoint %+v: a day of failures is not yet a reason to disable it", ep)
	}
}

// 410 Gone disables the endpoint at once and tells its owner; days of failure do too.
func TestEndpointsAreDisabledAndTheirOwnersTold(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{smtp: true})
	gone := newReceiver(t)
	ep := w.endpoint(gone)
	gone.answer(http.StatusGone, nil)
	w.testEvent(ep)
	ep, _ = w.st.GetWebhookEndpoint(w.ctx, ep.ID)
	if ep.Enabled || ep.DisabledReason == nil || *ep.DisabledReason != store.DisabledGone {
		t.Fatalf("after 410: %+v", ep)
	}
	if mails := w.subjects(1); !contains(mails, "ops@impulse-max.com|es|Desactivamos su webhook "+gone.srv.URL+"/hooks") {
		t.Errorf("mails %q", mails)
	}

	failing := newReceiver(t)
	ep2 := w.endpoint(failing)
	failing.answer(http.StatusInternalServerError, nil)
	w.testEvent(ep2)
	w.clock.Advance(5*24*time.Hour + time.Minute)
	w.testEvent(ep2)
	ep2, _ = w.st.GetWebhookEndpoint(w.ctx, ep2.ID)
	if ep2.Enabled || *ep2.DisabledReason != store.DisabledFailing {
		t.Fatalf("after five days of failures: %+v", ep2)
	}
	w.subjects(2)

	// A disabled endpoint gets no events; enabling it again forgets the failures.
	n := failing.requests()
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	w.sweep(d.ID, time.Minute)
	w.settled("fanout_event")
	if failing.requests() != n {
		t.Error("a disabled endpoint was sent an event")
	}
	on := true
	ep2, err := w.auto.UpdateEndpoint(w.ctx, "test", ep2.ID, store.EndpointPatch{Enabled: store.Change[bool]{Set: true, Value: on}})
	if err != nil || !ep2.Enabled || ep2.FailingSince != nil || ep2.DisabledReason != nil {
		t.Errorf("enabled again: %+v, %v", ep2, err)
	}
}

// During a rotation's grace period both secrets sign (a receiver holding either accepts); after it
// only the new one does.
func TestRotationSignsWithBothSecretsDuringTheGrace(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	oldOnly := newReceiver(t)
	ep := w.endpoint(oldOnly)
	grace := time.Hour
	ep, secret, err := w.auto.RotateSecret(w.ctx, "test", ep.ID, &grace)
	if err != nil || ep.Secrets != 2 {
		t.Fatalf("rotate: %+v %v", ep, err)
	}
	d := w.testEvent(ep)
	got := oldOnly.events()
	if d.Status != store.DeliverySucceeded || len(got) != 1 || len(strings.Fields(got[0].Header.Get("webhook-signature"))) != 2 {
		t.Fatalf("during the grace: %+v, received %+v", d, got)
	}
	key, _ := webhooks.ParseSecret(secret)
	newOnly := newReceiver(t)
	newOnly.trust(secret)
	if _, err := w.auto.UpdateEndpoint(w.ctx, "test", ep.ID, store.EndpointPatch{URL: store.Change[string]{Set: true, Value: newOnly.srv.URL}}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(grace + time.Second)
	w.testEvent(ep)
	got = newOnly.events()
	if len(got) != 1 || len(strings.Fields(got[0].Header.Get("webhook-signature"))) != 1 {
		t.Fatalf("after the grace: received %+v, want one request signed once", got)
	}
	if _, _, err := w.auto.RotateSecret(w.ctx, "test", ep.ID, ptr(8*24*time.Hour)); err == nil {
		t.Error("a grace longer than 7 days was accepted")
	}
	_ = key
}

func ptr[T any](v T) *T { return &v }

// Secrets are shown once and stored sealed: neither the secrets table nor the audit log holds one.
func TestSecretsAreNeverStoredInClear(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	hook := newReceiver(t)
	cust := w.routing.Customer.ID
	_, secret, err := w.auto.CreateEndpoint(w.ctx, "test", automation.EndpointInput{CustomerID: &cust, URL: hook.srv.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(strings.TrimPrefix(secret, webhooks.SecretPrefix))
	var sealed []byte
	if err := w.pool.QueryRow(w.ctx, `SELECT sealed FROM webhook_secrets`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	var audit string
	if err := w.pool.QueryRow(w.ctx, `SELECT string_agg(detail::text, ' ') FROM audit_log`).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, raw) || strings.Contains(audit, string(raw)) || strings.Contains(string(sealed), secret) {
		t.Error("a signing secret is stored in clear")
	}
}

// URLs are judged when saved (nothing is stored for a refused one) and again at dial time: an
// endpoint whose name now resolves to a private address (DNS rebinding) is never reached.
func TestSSRFIsRefusedWhenSavedAndAtDialTime(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{mutate: func(c *automation.Config) { c.Guard = webhooks.Guard{} }})
	hook := newReceiver(t)
	cust := w.routing.Customer.ID
	for _, url := range []string{hook.srv.URL, "https://127.0.0.1/x", "https://[::ffff:10.0.0.1]/x", "https://169.254.169.254/latest",
		"https://user:pw@hooks.example.com/x", "ftp://hooks.example.com/"} {
		_, _, err := w.auto.CreateEndpoint(w.ctx, "test", automation.EndpointInput{CustomerID: &cust, URL: url, Enabled: true})
		var ae *automation.Error
		if !errors.As(err, &ae) || ae.Code != "invalid_url" {
			t.Errorf("CreateEndpoint(%s) = %v, want invalid_url", url, err)
		}
	}
	if eps, _ := w.st.ListWebhookEndpoints(w.ctx, store.EndpointFilter{}); len(eps) != 0 {
		t.Fatalf("refused URLs were stored: %+v", eps)
	}
	// Stored as it would be after its name changed address behind our back.
	ep, err := w.st.CreateWebhookEndpoint(w.ctx, "test", store.WebhookEndpoint{CustomerID: &cust, URL: hook.srv.URL, Enabled: true},
		func(id int64) []byte { return w.sealer.Seal(id, webhooks.NewSecret()) })
	if err != nil {
		t.Fatal(err)
	}
	d := w.testEvent(ep)
	attempts, _ := w.st.DeliveryAttempts(w.ctx, d.ID)
	if d.Status != store.DeliveryFailed || hook.requests() != 0 || len(attempts) == 0 || !strings.Contains(*attempts[0].Error, "refused") {
		t.Errorf("delivery %+v, attempts %+v, receiver reached %d times", d, attempts, hook.requests())
	}
}

// Bad input changes nothing.
func TestEndpointInputIsValidated(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	hook := newReceiver(t)
	cust := w.routing.Customer.ID
	for _, in := range []automation.EndpointInput{
		{CustomerID: &cust, URL: hook.srv.URL, EventTypes: []string{"domain.exploded"}},
		{CustomerID: &cust, URL: hook.srv.URL, Description: strings.Repeat("x", 501)},
		{CustomerID: &cust, URL: hook.srv.URL + "/" + strings.Repeat("a", 2048)},
		{CustomerID: ptr(int64(999)), URL: hook.srv.URL},
	} {
		if _, _, err := w.auto.CreateEndpoint(w.ctx, "test", in); err == nil {
			t.Errorf("CreateEndpoint(%+v) was accepted", in)
		}
	}
	for range store.MaxEndpointsPerOwner {
		w.endpoint(hook)
	}
	if _, _, err := w.auto.CreateEndpoint(w.ctx, "test", automation.EndpointInput{CustomerID: &cust, URL: hook.srv.URL}); err == nil {
		t.Error("an endpoint over the limit was accepted")
	}
	if eps, _ := w.st.ListWebhookEndpoints(w.ctx, store.EndpointFilter{}); len(eps) != store.MaxEndpointsPerOwner {
		t.Errorf("%d endpoints, want %d", len(eps), store.MaxEndpointsPerOwner)
	}
	off := automation.New(automation.Config{Store: w.st})
	if _, _, err := off.CreateEndpoint(w.ctx, "test", automation.EndpointInput{CustomerID: &cust, URL: hook.srv.URL}); !errors.Is(err, automation.ErrWebhooksOff) {
		t.Errorf("without a secret key: %v", err)
	}
}

// Failed deliveries are sent again on request, with their webhook-id: all those since a time, or
// one.
func TestFailedDeliveriesAreRecovered(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	hook := newReceiver(t)
	ep := w.endpoint(hook)
	since := w.clock.Now()
	hook.answer(http.StatusServiceUnavailable, nil)
	first := w.testEvent(ep)
	second := w.testEvent(ep)
	if first.Status != store.DeliveryFailed || second.Status != store.DeliveryFailed {
		t.Fatalf("deliveries %+v %+v, want failed", first, second)
	}
	hook.answer(http.StatusOK, nil)
	n, err := w.auto.Recover(w.ctx, ep.ID, since.Add(-time.Second), nil)
	if err != nil || n != 2 {
		t.Fatalf("recovered %d, %v; want 2", n, err)
	}
	testwait.Until(t, 20*time.Second, "both recovered deliveries", func() bool {
		a, _ := w.st.GetDelivery(w.ctx, first.ID)
		b, _ := w.st.GetDelivery(w.ctx, second.ID)
		return a.Status == store.DeliverySucceeded && b.Status == store.DeliverySucceeded
	})
	ids := map[string]int{}
	for _, e := range hook.events() {
		ids[e.ID]++
	}
	if len(ids) != 2 {
		t.Errorf("message ids %v: a recovered delivery must keep its webhook-id", ids)
	}
	if err := w.auto.RetryDelivery(w.ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 20*time.Second, "the retried delivery", func() bool {
		return len(hook.events()) == 4+4+2+1
	})
	if _, err := w.auto.Recover(w.ctx, ep.ID, w.clock.Now(), ptr(w.clock.Now().Add(-time.Hour))); err == nil {
		t.Error("a range ending before it starts was accepted")
	}
}

// Events reach the endpoints that want them: the domain's customer's (filtered by event type)
// and the admin-wide ones, never another customer's.
func TestEventsReachTheEndpointsThatWantThem(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	all, onlyActivated, admin, stranger := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	w.endpoint(all)
	w.endpoint(onlyActivated, "domain.activated")
	_, secret, err := w.auto.CreateEndpoint(w.ctx, "test", automation.EndpointInput{URL: admin.srv.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	admin.trust(secret)
	other, err := w.st.CreateCustomer(w.ctx, "test", store.Customer{Email: "ops@other-shop.com", CompanyName: "Other", Plan: "basic"})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err = w.auto.CreateEndpoint(w.ctx, "test", automation.EndpointInput{CustomerID: &other.ID, URL: stranger.srv.URL, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	stranger.trust(secret)

	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	w.sweep(d.ID, time.Minute)
	ev := all.waitEvent(t, "domain.verified")
	if got := admin.waitEvent(t, "domain.verified"); got.ID != ev.ID {
		t.Errorf("the admin-wide endpoint got %s, the customer's %s: one event has one webhook-id", got.ID, ev.ID)
	}
	w.settled("fanout_event")
	w.settled("deliver_webhook")
	if n := onlyActivated.requests(); n != 0 {
		t.Errorf("an endpoint for domain.activated only was sent %d requests", n)
	}
	if n := stranger.requests(); n != 0 {
		t.Errorf("another customer's endpoint was sent %d requests", n)
	}
}
