package cloudflare_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
)

// The sweep lists every custom hostname a page of 50 at a time and reads each certificate's
// expiry from ssl.certificates[], which the SDK's types lack.
func TestListCustomHostnamesReadsCertificateExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for i := range 120 {
		if _, err := b.p.EnsureCustomHostname(ctx, int64(i+1), fmt.Sprintf("shop%d.impulse-max.com", i), false); err != nil {
			t.Fatal(err)
		}
	}
	expiry := time.Date(2027, 2, 1, 10, 0, 0, 0, time.UTC)
	b.srv.SetCustomHostnameStatus("shop7.impulse-max.com", "active", "active")
	b.srv.SetCertificateExpiry("shop7.impulse-max.com", expiry)
	b.srv.ResetCalls()
	seen := map[string]cloudflare.CustomHostname{}
	if err := b.p.ListCustomHostnames(ctx, func(ch cloudflare.CustomHostname) error {
		seen[ch.Hostname] = ch
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 120 {
		t.Fatalf("listed %d hostnames, want 120", len(seen))
	}
	if got := len(b.srv.Calls()); got != 3 {
		t.Errorf("%d calls for 120 hostnames, want 3 pages of 50", got)
	}
	if got := seen["shop7.impulse-max.com"].CertificateExpiresAt; !got.Equal(expiry) {
		t.Errorf("certificate expiry %v, want %v", got, expiry)
	}
	if got := seen["shop8.impulse-max.com"].CertificateExpiresAt; !got.IsZero() {
		t.Errorf("a hostname without a certificate has expiry %v", got)
	}
	stop := fmt.Errorf("enough")
	if err := b.p.ListCustomHostnames(ctx, func(cloudflare.CustomHostname) error { return stop }); err != stop {
		t.Errorf("the callback's error was not returned: %v", err)
	}
}

// A moved hostname is revived with a PATCH carrying the same SSL settings: the same id, pending
// again, no new hostname.
func TestReviveCustomHostnameKeepsItsID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ch, err := b.p.EnsureCustomHostname(ctx, 42, external, false)
	if err != nil {
		t.Fatal(err)
	}
	b.srv.SetCustomHostnameStatus(ch.ID, "moved", "validation_timed_out")
	b.srv.ResetCalls()
	got, err := b.p.ReviveCustomHostname(ctx, ch.ID, ch.SSLMethod)
	if err != nil {
		t.Fatal(err)
	}
	calls := b.srv.Calls()
	if len(calls) != 1 || calls[0].Method != "PATCH" || !strings.Contains(string(calls[0].Body), `"method":"txt"`) ||
		!strings.Contains(string(calls[0].Body), `"type":"dv"`) {
		t.Fatalf("calls %+v, want one PATCH with the SSL settings", calls)
	}
	if got.ID != ch.ID || got.Status != "pending" || got.SSLStatus != "pending_validation" || len(b.srv.CustomHostnames()) != 1 {
		t.Errorf("revived %+v, want the same hostname pending", got)
	}
	if _, err := b.p.ReviveCustomHostname(ctx, "", ""); err == nil {
		t.Error("an empty id was sent")
	}
}
