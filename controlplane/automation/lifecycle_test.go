package automation_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

const host = "www.impulse-max.com"

// The whole path: a domain verified and active whose DNS is broken goes misconfigured after a
// run of wrong answers spanning half an hour (alert, signed webhook, email), keeps serving during
// the grace period, is deactivated after it (its rules leave the tunnel, its Cloudflare record is
// removed), and comes back when its DNS is fixed.
func TestBrokenDNSMisconfiguresThenDeactivatesAndRecovers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{provisioning: true, smtp: true})
	hook := newReceiver(t)
	w.endpoint(hook)
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)

	d = w.sweep(d.ID, time.Minute)
	if d.VerificationStatus != "verified" || w.svc.State(d) == domains.StateMisconfigured {
		t.Fatalf("after a good check: %s / %s", d.VerificationStatus, w.svc.State(d))
	}
	hook.waitEvent(t, "domain.verified")
	testwait.Until(t, 20*time.Second, "the Cloudflare record", func() bool { return w.domain(d.ID).CloudflareConfigured })
	w.ackTunnel()
	if _, _, err := w.svc.Activate(w.ctx, "test", w.domain(d.ID)); err != nil {
		t.Fatal(err)
	}
	hook.waitEvent(t, "domain.activated")

	// The customer points the name elsewhere.
	w.dns.AddCNAME(host, "parked.registrar-example.net")
	d = w.sweep(d.ID, 8*time.Hour)
	if d.WrongStreak != 1 || d.MisconfiguredAt != nil || !d.IsActive {
		t.Fatalf("after one wrong answer: streak %d, misconfigured %v, active %v", d.WrongStreak, d.MisconfiguredAt, d.IsActive)
	}
	if next := d.NextCheckAt.Sub(w.clock.Now()); next > 10*time.Minute {
		t.Errorf("a suspicious domain is checked again in %v, want within 10m", next)
	}
	for i := 0; d.MisconfiguredAt == nil; i++ {
		if i == 5 {
			t.Fatalf("still not misconfigured after %d wrong answers", d.WrongStreak)
		}
		d = w.sweep(d.ID, 10*time.Minute)
	}
	if d.WrongStreak < 3 || w.svc.State(d) != domains.StateMisconfigured || !d.IsActive || !w.routed(host) {
		t.Fatalf("misconfigured: streak %d state %s active %v routed %v", d.WrongStreak, w.svc.State(d), d.IsActive, w.routed(host))
	}
	ev := hook.waitEvent(t, "domain.misconfigured")
	if ev.Data["state"] != "misconfigured" || ev.Data["previous_state"] != "active" || ev.Data["hostname"] != host ||
		ev.Data["reason"] != "wrong_target" || !strings.HasPrefix(ev.ID, "msg_") {
		t.Errorf("domain.misconfigured payload %+v (id %s)", ev.Data, ev.ID)
	}
	alerts, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{DomainID: d.ID, Status: "open"})
	if len(alerts) != 1 || alerts[0].Kind != store.AlertDomainMisconfigured || !strings.Contains(alerts[0].Message.EN, "parked.registrar-example.net") {
		t.Fatalf("open alerts %+v", alerts)
	}
	mails := w.subjects(2)
	if !contains(mails, "ops@impulse-max.com|es|Atención: www.impulse-max.com ya no apunta a la plataforma") {
		t.Errorf("no Spanish misconfiguration email in %q", mails)
	}

	// The grace period ends with the DNS still wrong.
	d = w.sweep(d.ID, 7*24*time.Hour)
	if w.svc.State(d) != domains.StateDeactivated || d.IsActive || w.routed(host) || d.TunnelIngressConfigured {
		t.Fatalf("after the grace: state %s active %v routed %v", w.svc.State(d), d.IsActive, w.routed(host))
	}
	testwait.Until(t, 20*time.Second, "the Cloudflare record to be removed", func() bool {
		d := w.domain(d.ID)
		return len(w.cf.Records()) == 0 && !d.CloudflareConfigured && d.CloudflareDNSRecordID == nil
	})
	if ev := hook.waitEvent(t, "domain.deactivated"); ev.Data["state"] != "deactivated" || ev.Data["previous_state"] != "misconfigured" {
		t.Errorf("domain.deactivated payload %+v", ev.Data)
	}
	if mails := w.subjects(3); !contains(mails, "|es|Dominio desactivado: www.impulse-max.com") {
		t.Errorf("no deactivation email in %q", mails)
	}
	if _, _, err := w.svc.Activate(w.ctx, "test", w.domain(d.ID)); err == nil {
		t.Error("a deactivated domain was activated")
	}

	// The customer fixes the DNS: the next check brings it back.
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d = w.sweep(d.ID, time.Hour)
	if w.svc.State(d) != domains.StateActive || !d.IsActive || d.MisconfiguredAt != nil || !w.routed(host) {
		t.Fatalf("after the fix: state %s active %v routed %v", w.svc.State(d), d.IsActive, w.routed(host))
	}
	testwait.Until(t, 20*time.Second, "the Cloudflare record to come back", func() bool { return w.domain(d.ID).CloudflareConfigured })
	if len(w.cf.Records()) != 1 {
		t.Errorf("records %+v, want the platform record again", w.cf.Records())
	}
	if ev := hook.waitEvent(t, "domain.recovered"); ev.Data["previous_state"] != "deactivated" || ev.Data["state"] != "active" {
		t.Errorf("domain.recovered payload %+v", ev.Data)
	}
	if alerts, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{DomainID: d.ID, Status: "open"}); len(alerts) != 0 {
		t.Errorf("alerts still open after recovery: %+v", alerts)
	}
	if mails := w.subjects(4); !contains(mails, "|es|www.impulse-max.com vuelve a apuntar a la plataforma") {
		t.Errorf("no recovery email in %q", mails)
	}

	// Every transition is in the audit log, and the checks that were not plain successes are kept
	// with their evidence.
	var actions []string
	rows, _ := w.pool.Query(w.ctx, `SELECT action FROM audit_log WHERE entity = 'domain' AND entity_id = $1 ORDER BY id`, d.ID)
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	joined := strings.Join(actions, ",")
	for _, want := range []string{"domain.verified", "domain.misconfigured", "domain.deactivated", "domain.recovered"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit log %v lacks %s", actions, want)
		}
	}
	checks, _ := w.st.DomainChecks(w.ctx, d.ID, 50)
	if len(checks) < 5 || checks[0].Result != store.CheckOK || !strings.Contains(string(checks[1].Evidence), "parked.registrar-example.net") {
		t.Errorf("recorded checks %+v", checks)
	}
	// Sequence numbers let receivers order what arrived out of order.
	var seqs []string
	for _, e := range hook.events() {
		seqs = append(seqs, fmt.Sprint(e.Data["seq"]))
	}
	if strings.Join(seqs, ",") != "1,2,3,4,5" {
		t.Errorf("event sequence %v, want 1..5", seqs)
	}
}

// Timeouts and SERVFAIL never make a domain misconfigured however long they last; they open the
// DNS propagation alert after an hour, which a good answer resolves.
func TestDNSErrorsNeverMisconfigure(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	d = w.sweep(d.ID, time.Minute)
	if d.VerifiedAt == nil {
		t.Fatal("not verified")
	}
	w.dns.SetDrop(true)
	d = w.sweep(d.ID, 8*time.Hour)
	for range 8 {
		d = w.sweep(d.ID, 10*time.Minute)
	}
	w.dns.SetRcode(host, 2) // SERVFAIL
	w.dns.SetDrop(false)
	d = w.sweep(d.ID, 10*time.Minute)
	if d.MisconfiguredAt != nil || d.WrongStreak != 0 || d.DNSErrorSince == nil || *d.LastCheckStatus != "error" {
		t.Fatalf("after 90 minutes of DNS errors: misconfigured %v streak %d error since %v last %v",
			d.MisconfiguredAt, d.WrongStreak, d.DNSErrorSince, *d.LastCheckStatus)
	}
	if _, err := w.auto.EvaluateAlerts(w.ctx); err != nil {
		t.Fatal(err)
	}
	alerts, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{DomainID: d.ID, Status: "open"})
	if len(alerts) != 1 || alerts[0].Kind != store.AlertDNSPropagation || !strings.Contains(alerts[0].Message.ES, "ningún resolver") {
		t.Fatalf("open alerts %+v, want dns_propagation_error", alerts)
	}
	w.dns.Remove(host)
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d = w.sweep(d.ID, 10*time.Minute)
	if _, err := w.auto.EvaluateAlerts(w.ctx); err != nil {
		t.Fatal(err)
	}
	if alerts, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{DomainID: d.ID, Status: "open"}); len(alerts) != 0 || d.DNSErrorSince != nil {
		t.Errorf("after a good answer: alerts %+v, error since %v", alerts, d.DNSErrorSince)
	}
}

// A registration that never verifies is checked every minute, then less often, never before its
// negative answer may have left the resolvers' caches; its owner is reminded; at expiry its checks
// stop with domain.verification_expired; after seven days it is an alert.
func TestAnUnverifiedRegistrationBacksOffAndExpires(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{smtp: true})
	hook := newReceiver(t)
	w.endpoint(hook, "domain.verification_expired")
	w.dns.SetSOA("impulse-max.com", 3600, 600)
	d := w.register(host)
	d = w.sweep(d.ID, time.Minute)
	if next := d.NextCheckAt.Sub(*d.LastCheckedAt); next != 10*time.Minute || d.NegativeTTL == nil || *d.NegativeTTL != 600 {
		t.Fatalf("after a negative answer with a 600 s SOA TTL: next check in %v, negative TTL %v", next, d.NegativeTTL)
	}
	if step := w.svc.Steps(d)[0]; !strings.Contains(step.Detail.ES, "hasta 10 min") {
		t.Errorf("the dns step does not say how long resolvers may take: %q", step.Detail.ES)
	}
	w.dns.SetSOA("impulse-max.com", 0, 0)
	for range 12 {
		d = w.sweep(d.ID, time.Hour)
	}
	if next := d.NextCheckAt.Sub(*d.LastCheckedAt); next <= time.Minute || next > time.Hour {
		t.Errorf("after a dozen checks the next one is in %v, want between 1m and 1h", next)
	}

	// Reminders at one and five days, each once.
	for _, wait := range []time.Duration{13 * time.Hour, time.Hour, 4 * 24 * time.Hour} {
		w.clock.Advance(wait)
		if _, err := w.auto.EvaluateAlerts(w.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if mails := w.subjects(2); !contains(mails, "ops@impulse-max.com|es|www.impulse-max.com sigue sin verificar") {
		t.Errorf("reminders %q", mails)
	}
	if n := len(w.mail.Messages()); n != 2 {
		t.Errorf("%d reminders, want 2", n)
	}

	w.settled("check_domain")
	w.clock.Advance(3 * 24 * time.Hour)
	if _, err := w.auto.SweepChecks(w.ctx); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 20*time.Second, "the expiry", func() bool { return w.domain(d.ID).NextCheckAt == nil })
	if got := w.svc.State(w.domain(d.ID)); got != domains.StateExpired {
		t.Errorf("state %s, want expired", got)
	}
	if ev := hook.waitEvent(t, "domain.verification_expired"); ev.Data["state"] != "expired" {
		t.Errorf("payload %+v", ev.Data)
	}
	if _, err := w.auto.EvaluateAlerts(w.ctx); err != nil {
		t.Fatal(err)
	}
	alerts, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{Kind: store.AlertDomainUnverified, Status: "open"})
	if len(alerts) != 1 || *alerts[0].DomainID != d.ID {
		t.Errorf("open unverified alerts %+v", alerts)
	}
}

// Resolvers that disagree about a verified domain (one still has the old record cached, say)
// never misconfigure it; after 24 hours of disagreement the DNS propagation alert opens, and
// agreement resolves it.
func TestDisagreeingResolversOpenThePropagationAlert(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{twoResolvers: true})
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	w.dns2.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	d = w.sweep(d.ID, time.Minute)
	if d.VerificationStatus != "verified" {
		t.Fatalf("not verified: %s", d.VerificationStatus)
	}
	w.dns2.AddCNAME(host, "parked.registrar-example.net")
	d = w.sweep(d.ID, 8*time.Hour)
	if d.DisagreeSince == nil || d.WrongStreak != 0 {
		t.Fatalf("after a split answer: disagree since %v, wrong streak %d", d.DisagreeSince, d.WrongStreak)
	}
	for range 4 {
		d = w.sweep(d.ID, 11*time.Minute)
	}
	w.evaluate()
	if d.MisconfiguredAt != nil || len(w.openAlerts(d.ID)) != 0 {
		t.Fatalf("within the first hours: misconfigured %v, alerts %v", d.MisconfiguredAt, w.openAlerts(d.ID))
	}
	d = w.sweep(d.ID, 25*time.Hour)
	w.evaluate()
	alerts, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{DomainID: d.ID, Status: "open"})
	if d.MisconfiguredAt != nil || len(alerts) != 1 || alerts[0].Kind != store.AlertDNSPropagation || !strings.Contains(alerts[0].Message.EN, "disagree") {
		t.Fatalf("after a day of disagreement: misconfigured %v, alerts %+v", d.MisconfiguredAt, alerts)
	}
	w.dns2.AddCNAME(host, "impulse-max.sajet.us")
	d = w.sweep(d.ID, time.Hour)
	w.evaluate()
	if d.DisagreeSince != nil || len(w.openAlerts(d.ID)) != 0 {
		t.Errorf("after agreement: disagree since %v, alerts %v", d.DisagreeSince, w.openAlerts(d.ID))
	}
}
