package diagnose_test

import (
	"context"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

func TestCloudflareVerdicts(t *testing.T) {
	t.Parallel()
	replaceRecord := func(w *world, r cftest.Record) {
		for _, old := range w.cf.Records() {
			w.cf.DeleteRecordBehindBack(old.ID)
		}
		if r.Name != "" {
			w.cf.AddRecord(r)
		}
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, w *world)
		verdict diagnose.Verdict
		want    []string
	}{
		{"our record and an active custom hostname", func(*testing.T, *world) {}, diagnose.OK,
			[]string{"impulse-max.sajet.us CNAME → " + tunnelHost + " (proxied: true)"}},
		{"the record is missing", func(_ *testing.T, w *world) { replaceRecord(w, cftest.Record{}) }, diagnose.Fail,
			[]string{"The record impulse-max.sajet.us does not exist in Cloudflare yet", "retries by itself"}},
		{"the record is missing after a provisioning error", func(t *testing.T, w *world) {
			replaceRecord(w, cftest.Record{})
			if err := w.st.RecordProvisionError(context.Background(), w.domain.ID, "cloudflare", i18n.Same("Cloudflare API: 403 Authentication error (10000)")); err != nil {
				t.Fatal(err)
			}
		}, diagnose.Fail, []string{"the last attempt failed: Cloudflare API: 403 Authentication error (10000)"}},
		{"a record that is not ours holds the name", func(_ *testing.T, w *world) {
			replaceRecord(w, cftest.Record{Type: "A", Name: platform, Content: "192.0.2.99", TTL: 1})
		}, diagnose.Fail, []string{"not managed by Sajet", "delete that record"}},
		{"our record points at another tunnel", func(_ *testing.T, w *world) {
			replaceRecord(w, cftest.Record{Type: "CNAME", Name: platform, Content: "00000000-0000-4000-8000-000000000000.cfargotunnel.com",
				Proxied: true, TTL: 1, Comment: cloudflare.Comment(w.domain.ID)})
		}, diagnose.Fail, []string{"it should be CNAME → " + tunnelHost}},
		{"our record is not proxied", func(_ *testing.T, w *world) {
			replaceRecord(w, cftest.Record{Type: "CNAME", Name: platform, Content: tunnelHost, TTL: 1, Comment: cloudflare.Comment(w.domain.ID)})
		}, diagnose.Fail, []string{"is not proxied"}},
		{"the custom hostname waits for its validation records", func(t *testing.T, w *world) {
			ch := w.cf.AddCustomHostname(cftest.CustomHostname{Hostname: "other-" + host})
			w.cf.SetCustomHostnameStatus(ch.ID, "pending", "pending_validation")
			if err := w.st.RecordCustomHostname(context.Background(), w.domain.ID, store.CustomHostnameState{ID: ch.ID, Status: "pending", SSLStatus: "pending_validation"}); err != nil {
				t.Fatal(err)
			}
		}, diagnose.Fail, []string{"is «pending» and its certificate «pending_validation»", "Publish the validation records in your DNS: TXT _cf-custom-hostname."}},
		{"the custom hostname moved", func(t *testing.T, w *world) {
			w.cf.SetCustomHostnameStatus(host, "moved", "active")
		}, diagnose.Fail, []string{"«moved»"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, withoutDS)
			tc.setup(t, w)
			p := expect(t, w.report(t), diagnose.PartCloudflare, tc.verdict, tc.want...)
			if tc.verdict == diagnose.Fail && p.Fix == "" {
				t.Error("a failing part without a fix")
			}
		})
	}
}

// Without provisioning, or without SaaS mode, the part says so instead of guessing.
func TestCloudflareWhenTheControlPlaneDoesNotProvision(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withoutDS)
	w.provider = nil
	expect(t, w.report(t), diagnose.PartCloudflare, diagnose.Unknown, "Cloudflare provisioning is off")
	w = newWorld(t, withoutDS)
	w.cfg.SaaS = false
	expect(t, w.report(t), diagnose.PartCloudflare, diagnose.Warn, "SaaS mode is off", "1014/1001", "--cloudflare-saas")
}

func TestTunnelVerdictsWithoutAgents(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withoutDS)
	r := w.report(t)
	expect(t, r, diagnose.PartTunnel, diagnose.Fail, "no enrolled agent", "POST /api/agents")
	expect(t, r, diagnose.PartBackend, diagnose.Unknown, "agent gateway is off")
	if r.Works || r.Verdict != diagnose.Fail {
		t.Errorf("a domain no agent routes: works=%v verdict=%s", r.Works, r.Verdict)
	}

	// An enrolled agent that never connected.
	if _, err := w.st.CreateAgent(context.Background(), "t", w.tunnelID(t), "pct-105", make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	expect(t, w.report(t), diagnose.PartTunnel, diagnose.Fail, "No agent of the tunnel is connected (pct-105)")

	// A domain without a deployment.
	if _, err := w.st.Pool().Exec(context.Background(), `UPDATE custom_domains SET tenant_deployment_id = NULL WHERE id = $1`, w.domain.ID); err != nil {
		t.Fatal(err)
	}
	expect(t, w.report(t), diagnose.PartTunnel, diagnose.Fail, "is not assigned to a tenant deployment", "tenant_deployment_id")
}

func (w *world) tunnelID(t *testing.T) int64 {
	t.Helper()
	td, err := w.st.GetTenantDeployment(context.Background(), *w.domain.TenantDeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	return *td.TunnelID
}
