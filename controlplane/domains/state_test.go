package domains

import (
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

func ptr[T any](v T) *T { return &v }

func TestStateIsDerivedFromTheColumns(t *testing.T) {
	t.Parallel()
	now := time.Now()
	base := store.Domain{ExternalDomain: "www.impulse-max.com", SajetFullDomain: "impulse-max.sajet.us",
		VerificationStatus: "pending", ExpiresAt: ptr(now.Add(time.Hour))}
	withTunnel := func(d store.Domain) store.Domain {
		d.TenantDeploymentID, d.TunnelUUID = ptr(int64(1)), ptr("6ff42ae2-765d-4adf-8112-31c55c1551ef")
		return d
	}
	tests := []struct {
		name     string
		provider bool
		mutate   func(store.Domain) store.Domain
		want     string
	}{
		{"a new registration waits for DNS", false, func(d store.Domain) store.Domain { return d }, StatePendingDNS},
		{"an unverified registration past its expiry is expired", false, func(d store.Domain) store.Domain {
			d.ExpiresAt = ptr(now.Add(-time.Minute))
			return d
		}, StateExpired},
		{"a failed check shows verification_failed", false, func(d store.Domain) store.Domain { d.VerificationStatus = "failed"; return d }, StateVerificationFailed},
		{"verified but without tunnel ack is provisioning", true, func(d store.Domain) store.Domain {
			d = withTunnel(d)
			d.VerificationStatus, d.CloudflareConfigured = "verified", true
			return d
		}, StateProvisioning},
		{"verified, configured and acked is ready", true, func(d store.Domain) store.Domain {
			d = withTunnel(d)
			d.VerificationStatus, d.CloudflareConfigured, d.TunnelIngressConfigured = "verified", true, true
			return d
		}, StateReady},
		{"with the provider disabled the cloudflare step is skipped, not pretended", false, func(d store.Domain) store.Domain {
			d = withTunnel(d)
			d.VerificationStatus, d.TunnelIngressConfigured = "verified", true
			return d
		}, StateReady},
		{"an expired date does not matter once verified", false, func(d store.Domain) store.Domain {
			d.VerificationStatus, d.ExpiresAt = "verified", ptr(now.Add(-time.Hour))
			return d
		}, StateProvisioning},
		{"active wins over everything but deletion", false, func(d store.Domain) store.Domain { d.IsActive = true; return d }, StateActive},
		{"deletion wins over everything", false, func(d store.Domain) store.Domain { d.IsActive, d.DeletingAt = true, &now; return d }, StateDeleting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{cfg: Config{Zone: "sajet.us", ProviderEnabled: tc.provider}}
			if got := s.State(tc.mutate(base)); got != tc.want {
				t.Errorf("State = %s, want %s (steps %+v)", got, tc.want, s.Steps(tc.mutate(base)))
			}
		})
	}
}

func TestStepsExplainEachMissingCondition(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{Zone: "sajet.us", ProviderEnabled: false}}
	d := store.Domain{ExternalDomain: "impulse-max.com", SajetFullDomain: "impulse-max.sajet.us", VerificationStatus: "pending",
		VerificationToken: "jeturing-verify-x", RequireTXT: true}
	steps := s.Steps(d)
	got := map[string]Step{}
	for _, st := range steps {
		got[st.Name] = st
	}
	if got["ownership"].Status != StepPending || !strings.Contains(got["ownership"].Detail.EN, "_jeturing-verify.impulse-max.com") {
		t.Errorf("ownership step %+v should ask for the TXT record by name", got["ownership"])
	}
	if got["cloudflare"].Status != StepSkipped || !strings.Contains(got["cloudflare"].Detail.EN, "disabled") {
		t.Errorf("cloudflare step %+v should say the provider is disabled", got["cloudflare"])
	}
	if got["tunnel_ingress"].Status != StepFailed || !strings.Contains(got["tunnel_ingress"].Detail.EN, "tenant_deployment_id") {
		t.Errorf("tunnel_ingress step %+v should say how to fix it", got["tunnel_ingress"])
	}
	// The apex needs the TXT record for flattening, so the instructions mark it required.
	if in := s.Instructions(d); !in[1].Required || in[1].Record != "_jeturing-verify.impulse-max.com" {
		t.Errorf("apex TXT instruction %+v should be required", in[1])
	}
}
