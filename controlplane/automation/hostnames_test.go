package automation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// openAlerts returns the kinds of a domain's open alerts.
func (w *world) openAlerts(domainID int64) []string {
	w.t.Helper()
	as, err := w.st.ListAlerts(w.ctx, store.AlertFilter{DomainID: domainID, Status: "open"})
	if err != nil {
		w.t.Fatal(err)
	}
	var kinds []string
	for _, a := range as {
		kinds = append(kinds, a.Kind)
	}
	return kinds
}

func (w *world) evaluate() {
	w.t.Helper()
	if _, err := w.auto.EvaluateAlerts(w.ctx); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) sweepHostnames() {
	w.t.Helper()
	if _, err := w.auto.SweepHostnames(w.ctx); err != nil {
		w.t.Fatal(err)
	}
}

// SaaS mode: the custom hostname sweep reads Cloudflare's view. A certificate ending within 14
// days opens certificate_expiring (event, email); an active certificate dropping back to
// pending_issuance is a failed renewal; a moved hostname whose DNS we find right is revived with a
// PATCH (not re-created); a fresh certificate resolves both alerts.
func TestCustomHostnamesAreSwept(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{saas: true, smtp: true})
	hook := newReceiver(t)
	w.endpoint(hook, "domain.certificate.expiring", "domain.certificate.renewal_failed")
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	d = w.sweep(d.ID, time.Minute)
	testwait.Until(t, 20*time.Second, "the custom hostname", func() bool { return w.domain(d.ID).CustomHostnameID != nil })
	chID := *w.domain(d.ID).CustomHostnameID

	w.cf.SetCustomHostnameStatus(chID, "active", "active")
	expiry := w.clock.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	w.cf.SetCertificateExpiry(chID, expiry)
	w.sweepHostnames()
	if got := w.domain(d.ID); got.CertExpiresAt == nil || !got.CertExpiresAt.Equal(expiry) || got.SSLStatus != "active" {
		t.Fatalf("after the sweep: expiry %v ssl %s", got.CertExpiresAt, got.SSLStatus)
	}
	w.evaluate()
	if kinds := w.openAlerts(d.ID); len(kinds) != 1 || kinds[0] != store.AlertCertificateExpiring {
		t.Fatalf("open alerts %v, want certificate_expiring", kinds)
	}
	if ev := hook.waitEvent(t, "domain.certificate.expiring"); ev.Data["hostname"] != host {
		t.Errorf("expiring event %+v", ev.Data)
	}
	w.evaluate() // once per opening
	if mails := w.subjects(2); len(mails) != 2 || !strings.Contains(mails[1], "ops@impulse-max.com|es|") {
		t.Errorf("mails %q, want the verified and the certificate ones", mails)
	}

	// Cloudflare could not renew it.
	w.cf.SetCustomHostnameStatus(chID, "active", "pending_issuance")
	w.sweepHostnames()
	if kinds := strings.Join(w.openAlerts(d.ID), ","); !strings.Contains(kinds, store.AlertCertificateRenewalFailed) {
		t.Fatalf("open alerts %s, want certificate_renewal_failed", kinds)
	}
	hook.waitEvent(t, "domain.certificate.renewal_failed")

	// Cloudflare's view says moved, ours says the DNS is right: revived with a PATCH, same id.
	w.cf.SetCustomHostnameStatus(chID, "moved", "pending_issuance")
	patches := func() int {
		n := 0
		for _, c := range w.cf.Calls() {
			if c.Method == "PATCH" && strings.Contains(c.Path, chID) {
				n++
			}
		}
		return n
	}
	before := patches()
	w.sweepHostnames()
	if patches() != before+1 {
		t.Errorf("PATCHes of the moved hostname: %d → %d, want one revival", before, patches())
	}
	for _, c := range w.cf.Calls() {
		if c.Method == "DELETE" || (c.Method == "POST" && strings.Contains(c.Path, "custom_hostnames") && len(w.cf.CustomHostnames()) > 1) {
			t.Errorf("the hostname was re-created: %+v", c)
		}
	}
	var revived int
	if err := w.pool.QueryRow(w.ctx, `SELECT count(*) FROM audit_log WHERE action = 'cloudflare.custom_hostname.revived' AND entity_id = $1`,
		d.ID).Scan(&revived); err != nil || revived != 1 {
		t.Errorf("revival audit rows %d (%v)", revived, err)
	}

	// A fresh certificate: both alerts resolved.
	w.cf.SetCustomHostnameStatus(chID, "active", "active")
	w.cf.SetCertificateExpiry(chID, w.clock.Now().Add(89*24*time.Hour))
	w.sweepHostnames()
	w.evaluate()
	if kinds := w.openAlerts(d.ID); len(kinds) != 0 {
		t.Errorf("alerts still open after renewal: %v", kinds)
	}
}

// Checks that are due and do not run open the platform-wide checks_stalled alert; running them
// resolves it.
func TestStalledChecksAlert(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	w.sweep(d.ID, time.Minute)
	// Claimed but never run: the claim's job is lost (its transaction enqueues nothing).
	w.clock.Advance(8 * time.Hour) // past 6h + 20% jitter
	if n, err := w.st.ClaimDueChecks(w.ctx, w.clock.Now(), time.Hour, 10, func(context.Context, pgx.Tx, []int64) error { return nil }); err != nil || n != 1 {
		t.Fatalf("claimed %d (%v)", n, err)
	}
	w.clock.Advance(2 * time.Hour)
	w.evaluate()
	stalled, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{Kind: store.AlertChecksStalled, Status: "open"})
	if len(stalled) != 1 || stalled[0].DomainID != nil || stalled[0].Severity != store.SeverityCritical {
		t.Fatalf("checks_stalled alerts %+v", stalled)
	}
	w.sweep(d.ID, time.Minute)
	w.evaluate()
	if stalled, _ := w.st.ListAlerts(w.ctx, store.AlertFilter{Kind: store.AlertChecksStalled, Status: "open"}); len(stalled) != 0 {
		t.Errorf("checks_stalled still open after the check ran: %+v", stalled)
	}
}
