package automation_test

import (
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// Without an SMTP server notifications are recorded (with their subject), not sent, and each
// transition is told once however many checks confirm it.
func TestNotificationsWithoutSMTPAreRecordedOncePerTransition(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	w.dns.AddCNAME(host, "impulse-max.sajet.us")
	d := w.register(host)
	w.sweep(d.ID, time.Minute)
	w.sweep(d.ID, 8*time.Hour) // (past 6h + 20% jitter) verified again: nothing new to tell
	w.dns.AddCNAME(host, "parked.registrar-example.net")
	d = w.sweep(d.ID, 8*time.Hour)
	for i := 0; d.MisconfiguredAt == nil && i < 6; i++ {
		d = w.sweep(d.ID, 11*time.Minute)
	}
	for range 3 { // still misconfigured
		d = w.sweep(d.ID, 16*time.Minute)
	}
	if d.MisconfiguredAt == nil {
		t.Fatal("not misconfigured")
	}
	w.settled("send_email")
	var ns []store.Notification
	testwait.For(t, 20*time.Second, func() string {
		var err error
		if ns, err = w.st.ListNotifications(w.ctx, store.NotificationFilter{DomainID: d.ID}); err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Status != store.NotificationRecorded {
				return "notification " + n.Kind + " is " + n.Status
			}
		}
		return ""
	})
	kinds := map[string]int{}
	for _, n := range ns {
		kinds[n.Kind]++
		if n.Subject == nil || *n.Subject == "" || n.SentAt != nil {
			t.Errorf("recorded notification %+v: no subject, or marked sent", n)
		}
	}
	if len(kinds) != 2 || kinds[store.NotifyDomainVerified] != 1 || kinds[store.NotifyDomainMisconfigured] != 1 {
		t.Errorf("notifications by kind %v, want one verified and one misconfigured", kinds)
	}
	if n := len(w.mail.Messages()); n != 0 {
		t.Errorf("%d messages sent without SMTP configured", n)
	}
}
