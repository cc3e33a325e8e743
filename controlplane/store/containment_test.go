package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

// secondTenant adds another customer with a tenant deployment on the fixture's tunnel.
func (f *fixture) secondTenant(t *testing.T, backend string) (store.Customer, store.TenantDeployment) {
	t.Helper()
	ctx := context.Background()
	c, err := f.st.CreateCustomer(ctx, "test", store.Customer{Email: "it@techeels.io", CompanyName: "Techeels", Plan: "basic"})
	if err != nil {
		t.Fatal(err)
	}
	td, err := f.st.CreateTenantDeployment(ctx, "test", store.TenantDeployment{CustomerID: c.ID, Name: "odoo", TunnelID: &f.tunnel.ID, BackendURL: &backend})
	if err != nil {
		t.Fatal(err)
	}
	return c, td
}

func (f *fixture) insertFor(t *testing.T, customer, tenant int64, host, sub string) store.Domain {
	t.Helper()
	d, err := f.st.InsertDomain(context.Background(), store.NewDomain{
		CustomerID: customer, TenantDeploymentID: &tenant, ExternalDomain: host, Zone: "sajet.us",
		Subdomains: []string{sub}, Token: "jeturing-verify-x", CreatedBy: "test", PlanQuota: map[string]int{"basic": 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hostnames(d store.DesiredIngress) []string {
	var out []string
	for _, r := range d.Rules {
		out = append(out, r.Hostname)
	}
	return out
}

func excluded(d store.DesiredIngress, id int64) *store.Exclusion {
	for _, e := range d.Excluded {
		if e.DomainID == id {
			return &e
		}
	}
	return nil
}

// A rule that fails the agent's validator, here a backend URL written straight into the
// database, is left out of the tunnel's desired set on its own: the other customer's domain on
// the same tunnel is routed and marked configured when the agent ACKs, and the poisoned domain
// says why on its own step, in words about its own rule only.
func TestAPoisonedRowIsLeftOutAlone(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t, false)
	ctx := context.Background()
	agent, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "pct-105", []byte("hash"))
	if err != nil {
		t.Fatal(err)
	}
	bad := f.insert(t, "www.impulse-max.com", "impulse-max")
	if _, err := f.st.Pool().Exec(ctx, `UPDATE tenant_deployments SET backend_url = 'http://admin@h:8069' WHERE id = $1`, f.tenant.ID); err != nil {
		t.Fatal(err)
	}
	c2, td2 := f.secondTenant(t, "http://10.10.10.106:8069")
	good := f.insertFor(t, c2.ID, td2.ID, "www.techeels.io", "techeels")

	got := f.desired(t)
	if want := []string{"techeels.sajet.us", "www.techeels.io"}; !slices.Equal(hostnames(got), want) {
		t.Fatalf("desired hostnames %v, want only the healthy domain's %v", hostnames(got), want)
	}
	e := excluded(got, bad.ID)
	if e == nil || e.Kind != store.IngressInvalid || !strings.Contains(e.Reason.EN, `service "http://admin@h:8069": only scheme://host[:port] is allowed`) {
		t.Fatalf("exclusion of the poisoned domain: %+v", e)
	}

	if _, err := f.st.RecordAgentAck(ctx, agent.ID, store.AgentAck{Version: got.Version, OK: true, SHA256: strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	g, _ := f.st.GetDomain(ctx, good.ID)
	b, _ := f.st.GetDomain(ctx, bad.ID)
	if !g.TunnelIngressConfigured || b.TunnelIngressConfigured {
		t.Fatalf("after the ACK: healthy configured=%v, poisoned configured=%v; want true, false", g.TunnelIngressConfigured, b.TunnelIngressConfigured)
	}
	if p := b.IngressProblem().EN; !strings.Contains(p, "only scheme://host[:port] is allowed") || strings.Contains(p, "techeels") {
		t.Errorf("poisoned domain's problem: %q", p)
	}
	if p := g.IngressProblem(); !p.IsZero() {
		t.Errorf("healthy domain has a problem: %q", p)
	}
}

// A NACK that names a rule leaves that domain out in a new version; the other domains converge,
// and the refused domain's owner reads about its own rule only. A new base file offers it again.
func TestANackNamingARuleContainsIt(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t, false)
	ctx := context.Background()
	agent, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "pct-105", []byte("hash"))
	if err != nil {
		t.Fatal(err)
	}
	refused := f.insert(t, "www.impulse-max.com", "impulse-max")
	c2, td2 := f.secondTenant(t, "http://10.10.10.106:8069")
	other := f.insertFor(t, c2.ID, td2.ID, "www.techeels.io", "techeels")
	v := f.desired(t).Version

	_, err = f.st.RecordAgentAck(ctx, agent.ID, store.AgentAck{Version: v, Stage: "validate",
		Error:    "cloudflared: www.impulse-max.com is odd (next to www.techeels.io)",
		Rejected: []store.RejectedRule{{Hostname: "www.impulse-max.com", Reason: "cloudflared", Error: "cloudflared: www.impulse-max.com is odd"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.desired(t)
	if got.Version != v+1 {
		t.Fatalf("version %d after a contained NACK of %d, want a new one", got.Version, v)
	}
	if want := []string{"techeels.sajet.us", "www.techeels.io"}; !slices.Equal(hostnames(got), want) {
		t.Fatalf("desired %v, want %v", hostnames(got), want)
	}
	if e := excluded(got, refused.ID); e == nil || e.Kind != store.IngressRejected {
		t.Fatalf("exclusion %+v, want rejected", e)
	}
	o, _ := f.st.GetDomain(ctx, other.ID)
	if o.LastError != nil || !o.IngressProblem().IsZero() {
		t.Errorf("the other tenant's domain shows an error: %v %q", o.LastError, o.IngressProblem())
	}
	r, _ := f.st.GetDomain(ctx, refused.ID)
	if p := r.IngressProblem().EN; !strings.Contains(p, "www.impulse-max.com is odd") || strings.Contains(p, "techeels") {
		t.Errorf("refused domain's problem: %q", p)
	}
	if _, err := f.st.RecordAgentAck(ctx, agent.ID, store.AgentAck{Version: got.Version, OK: true, SHA256: strings.Repeat("b", 64)}); err != nil {
		t.Fatal(err)
	}
	if o, _ := f.st.GetDomain(ctx, other.ID); !o.TunnelIngressConfigured {
		t.Error("the other domain is not configured after the ACK of the version without the refused one")
	}

	// The operator edits the base file: the refused rule is offered again, in a new version.
	changed, err := f.st.RecordAgentBase(ctx, agent.ID, strings.Repeat("c", 64), []string{"grafana.ops.example"})
	if err != nil || !changed {
		t.Fatalf("RecordAgentBase: changed=%v err=%v", changed, err)
	}
	again := f.desired(t)
	if again.Version <= got.Version || len(again.Rules) != 4 || len(again.Excluded) != 0 {
		t.Fatalf("after a new base: version %d rules %v excluded %+v", again.Version, hostnames(again), again.Excluded)
	}
	// The same base again changes nothing.
	if changed, err := f.st.RecordAgentBase(ctx, agent.ID, strings.Repeat("c", 64), []string{"grafana.ops.example"}); err != nil || changed {
		t.Fatalf("the same base reported twice: changed=%v err=%v", changed, err)
	}
	if f.desired(t).Version != again.Version {
		t.Error("the same base bumped the tunnel")
	}
}

// Hostnames an operator's base file routes: registering one is refused with 409, a platform
// subdomain never lands on one, and a domain that already uses one is left out of the tunnel.
func TestBaseHostnamesAreReserved(t *testing.T) {
	t.Parallel()
	f, _ := newFixture(t, false)
	ctx := context.Background()
	agent, err := f.st.CreateAgent(ctx, "test", f.tunnel.ID, "pct-105", []byte("hash"))
	if err != nil {
		t.Fatal(err)
	}
	early := f.insert(t, "grafana.operator-internal.com", "grafana-operator-internal")
	if _, err := f.st.RecordAgentBase(ctx, agent.ID, strings.Repeat("d", 64),
		[]string{"grafana.operator-internal.com", "shop.sajet.us"}); err != nil {
		t.Fatal(err)
	}

	_, err = f.st.InsertDomain(ctx, store.NewDomain{CustomerID: f.customer.ID, ExternalDomain: "grafana.operator-internal.com",
		Zone: "sajet.us", Subdomains: []string{"x"}, Token: "t", CreatedBy: "test", PlanQuota: map[string]int{"basic": 10}})
	// The earlier registration holds the name for this customer; a fresh name shows the reservation.
	if err == nil {
		t.Fatal("registered a hostname twice")
	}
	_, err = f.st.InsertDomain(ctx, store.NewDomain{CustomerID: f.customer.ID, ExternalDomain: "shop.sajet-customer.com",
		Zone: "sajet.us", Subdomains: []string{"shop", "shop-2"}, Token: "t", CreatedBy: "test", PlanQuota: map[string]int{"basic": 10}})
	if err != nil {
		t.Fatal(err)
	}
	var ce *store.ConflictError
	if _, err := f.st.Pool().Exec(ctx, `UPDATE agents SET base_hostnames = base_hostnames || '{www.reserved.com}'`); err != nil {
		t.Fatal(err)
	}
	_, err = f.st.InsertDomain(ctx, store.NewDomain{CustomerID: f.customer.ID, ExternalDomain: "www.reserved.com",
		Zone: "sajet.us", Subdomains: []string{"reserved"}, Token: "t", CreatedBy: "test", PlanQuota: map[string]int{"basic": 10}})
	if !asConflict(err, &ce) || ce.Code != "hostname_reserved" || strings.Contains(ce.Message.EN, "grafana") {
		t.Fatalf("registering a base hostname: %v, want hostname_reserved naming only the hostname asked for", err)
	}

	shop, err := f.st.GetDomainByHostname(ctx, "shop.sajet-customer.com")
	if err != nil || shop.SajetSubdomain != "shop-2" {
		t.Fatalf("subdomain %q (err %v), want shop-2: shop.sajet.us is the operator's", shop.SajetSubdomain, err)
	}
	got := f.desired(t)
	if e := excluded(got, early.ID); e == nil || e.Kind != store.IngressBaseConflict || strings.Contains(e.Reason.EN, "shop") {
		t.Fatalf("exclusion of the colliding domain: %+v", e)
	}
	if d, _ := f.st.GetDomain(ctx, early.ID); !strings.Contains(d.IngressProblem().EN, "tunnel host's own configuration") {
		t.Errorf("colliding domain's problem: %q", d.IngressProblem())
	}
}

func asConflict(err error, ce **store.ConflictError) bool { return errors.As(err, ce) }
