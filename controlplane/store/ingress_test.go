package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

type fixture struct {
	st       *store.Store
	customer store.Customer
	tunnel   store.Tunnel
	tenant   store.TenantDeployment
}

func newFixture(t *testing.T, requireTXT bool) (*fixture, string) {
	t.Helper()
	pool, url := storetest.NewDBURL(t)
	st := store.New(pool)
	r := storetest.NewRouting(t, st, store.Customer{RequireTXT: requireTXT})
	return &fixture{st: st, customer: r.Customer, tunnel: r.Tunnel, tenant: r.Tenant}, url
}

func (f *fixture) insert(t *testing.T, host, sub string) store.Domain {
	t.Helper()
	d, err := f.st.InsertDomain(context.Background(), store.NewDomain{
		CustomerID: f.customer.ID, TenantDeploymentID: &f.tenant.ID, ExternalDomain: host, Zone: "sajet.us",
		Subdomains: []string{sub}, Token: "jeturing-verify-x", CreatedBy: "test", PlanQuota: map[string]int{"basic": 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) desired(t *testing.T) store.DesiredIngress {
	t.Helper()
	d, err := f.st.GetDesiredIngress(context.Background(), f.tunnel.ID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A new domain on a tunnel's tenant puts both its hostnames in the tunnel's desired ingress, in a
// new version announced with NOTIFY at commit; deleting it takes them out in another version.
func TestDomainChangesBumpTheTunnelAndNotify(t *testing.T) {
	t.Parallel()
	f, url := newFixture(t, false)
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+store.TunnelChannel); err != nil {
		t.Fatal(err)
	}

	d := f.insert(t, "www.impulse-max.com", "impulse-max")
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(waitCtx)
	if err != nil || n.Payload != strconv.FormatInt(f.tunnel.ID, 10) {
		t.Fatalf("no notification after the insert committed: %v", err)
	}
	got := f.desired(t)
	want := []store.IngressRule{
		{DomainID: d.ID, Hostname: "impulse-max.sajet.us", Service: "http://10.10.10.105:8069"},
		{DomainID: d.ID, Hostname: "www.impulse-max.com", Service: "http://10.10.10.105:8069"},
	}
	if got.Version != 1 || !cmp.Equal(want, got.Rules) {
		t.Fatalf("desired after insert: version %d rules %+v, want version 1 and %+v", got.Version, got.Rules, want)
	}
	d, _ = f.st.GetDomain(ctx, d.ID)
	if d.IngressVersion == nil || *d.IngressVersion != 1 {
		t.Errorf("ingress_version %v, want 1", d.IngressVersion)
	}

	// No agent ever applied a config with it: the row goes at once, in version 2 without it.
	if err := f.st.DeleteDomain(ctx, "test", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetDomain(ctx, d.ID); err != store.ErrNotFound {
		t.Errorf("domain still there after delete with no agent: %v", err)
	}
	if got := f.desired(t); got.Version != 2 || len(got.Rules) != 0 {
		t.Errorf("desired after delete: version %d rules %+v, want version 2 and none", got.Version, got.Rules)
	}
}

// With an agent that applied a config containing the domain, deletion keeps the row (deleting)
// until the agents move past the removal version.
func TestDeletionWaitsForAgentsThatRouteTheDomain(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t, false)
	ctx := context.Background()
	d := f.insert(t, "www.impulse-max.com", "impulse-max")
	if _, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "pct-105", []byte("hash")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Pool().Exec(ctx, `UPDATE agents SET applied_version = 1`); err != nil {
		t.Fatal(err)
	}
	if err := f.st.DeleteDomain(ctx, "test", d.ID); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.GetDomain(ctx, d.ID)
	if err != nil || got.DeletingAt == nil {
		t.Fatalf("domain routed by an agent: err=%v deleting_at=%v, want kept as deleting", err, got.DeletingAt)
	}
	if rules := f.desired(t).Rules; len(rules) != 0 {
		t.Errorf("a deleting domain is still desired: %+v", rules)
	}
}

// When the plan requires TXT proof, the rules appear only once the TXT record is found.
func TestTXTRequiredDomainsJoinTheTunnelAfterProof(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t, true)
	ctx := context.Background()
	d := f.insert(t, "www.impulse-max.com", "impulse-max")
	if got := f.desired(t); got.Version != 0 || len(got.Rules) != 0 {
		t.Fatalf("unproven domain routed: %+v", got)
	}
	if _, err := f.st.RecordVerification(ctx, "test", d.ID, store.Verification{Verified: false, TXTFound: true, CheckedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := f.desired(t); got.Version != 1 || len(got.Rules) != 2 {
		t.Errorf("after TXT proof: %+v, want version 1 with both hostnames", got)
	}
}

// An ACK of the version that added a domain marks it routed; a NACK is shown on it; the ACK of the
// version that removed a deleted domain lets its row go.
func TestAgentAcksDriveRoutingAndRemoval(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t, false)
	ctx := context.Background()
	agent, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "pct-105", []byte("hash"))
	if err != nil {
		t.Fatal(err)
	}
	d := f.insert(t, "www.impulse-max.com", "impulse-max") // tunnel version 1

	if _, err := f.st.RecordAgentAck(ctx, agent.ID, store.AgentAck{Version: 1, OK: false, Stage: "validate", Error: "rule #1: bad service"}); err != nil {
		t.Fatal(err)
	}
	got, _ := f.st.GetDomain(ctx, d.ID)
	if got.TunnelIngressConfigured || got.LastError == nil || !strings.Contains(got.LastError.EN, "could not apply configuration version 1 (stage validate)") {
		t.Fatalf("after a NACK: configured=%v last_error=%v", got.TunnelIngressConfigured, got.LastError)
	}
	if strings.Contains(got.LastError.EN, "bad service") {
		t.Errorf("a NACK that names no rule put the agent's raw error on a customer's domain: %q", *got.LastError)
	}

	if _, err := f.st.RecordAgentAck(ctx, agent.ID, store.AgentAck{Version: 1, OK: true, SHA256: "abc"}); err != nil {
		t.Fatal(err)
	}
	got, _ = f.st.GetDomain(ctx, d.ID)
	if !got.TunnelIngressConfigured || got.LastError != nil {
		t.Fatalf("after the ACK: configured=%v last_error=%v", got.TunnelIngressConfigured, got.LastError)
	}

	if err := f.st.DeleteDomain(ctx, "test", d.ID); err != nil { // version 2 drops it
		t.Fatal(err)
	}
	if got, err := f.st.GetDomain(ctx, d.ID); err != nil || got.DeletingAt == nil {
		t.Fatalf("deleted domain still routed by the agent must stay as deleting: %v", err)
	}
	removed, err := f.st.RecordAgentAck(ctx, agent.ID, store.AgentAck{Version: 2, OK: true, SHA256: "def"})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != d.ID {
		t.Errorf("removed %v after the agent applied the version without it, want [%d]", removed, d.ID)
	}
	if _, err := f.st.GetDomain(ctx, d.ID); err != store.ErrNotFound {
		t.Errorf("row still present: %v", err)
	}
}
