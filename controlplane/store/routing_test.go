package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

// recordingOutbox stands in for River: it records which domains got provisioning enqueued.
type recordingOutbox struct {
	mu          sync.Mutex
	provisioned []int64
}

func (o *recordingOutbox) ProvisionTx(_ context.Context, _ pgx.Tx, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.provisioned = append(o.provisioned, id)
	return nil
}

func (o *recordingOutbox) DeprovisionTx(context.Context, pgx.Tx, int64) error { return nil }

func (o *recordingOutbox) take() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.provisioned
	o.provisioned = nil
	slices.Sort(out)
	return out
}

func set[T any](v T) store.Change[T] { return store.Change[T]{Set: true, Value: v} }

func insertOn(t *testing.T, st *store.Store, customer int64, deployment *int64, host, sub string) store.Domain {
	t.Helper()
	d, err := st.InsertDomain(context.Background(), store.NewDomain{
		CustomerID: customer, TenantDeploymentID: deployment, ExternalDomain: host, Zone: "sajet.us",
		Subdomains: []string{sub}, Token: "jeturing-verify-x", CreatedBy: "test", PlanQuota: map[string]int{"basic": 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A domain's Cloudflare record points at its tunnel: when that changes (a move, a new tunnel id,
// a first tunnel, the TXT gate opening), provisioning runs again in the same transaction; a new
// backend on the same tunnel leaves the record alone.
func TestRoutingChangesProvisionTheRecordAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.New(storetest.NewDB(t))
	ob := &recordingOutbox{}
	st.UseOutbox(ob)
	r := storetest.NewRouting(t, st, store.Customer{})
	d := insertOn(t, st, r.Customer.ID, &r.Tenant.ID, "www.impulse-max.com", "impulse-max")
	if got := ob.take(); !slices.Equal(got, []int64{d.ID}) {
		t.Fatalf("provisioned at insert %v", got)
	}
	configured := func(id int64) store.Domain {
		t.Helper()
		if err := st.MarkCloudflareConfigured(ctx, id, "rec-1"); err != nil {
			t.Fatal(err)
		}
		got, _ := st.GetDomain(ctx, id)
		return got
	}
	configured(d.ID)

	backend := "http://10.10.10.106:8069"
	if _, err := st.UpdateTenantDeployment(ctx, "test", r.Tenant.ID, store.DeploymentPatch{BackendURL: set(&backend)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetDomain(ctx, d.ID); len(ob.take()) != 0 || !got.CloudflareConfigured {
		t.Errorf("a new backend on the same tunnel re-provisioned the record (configured %v)", got.CloudflareConfigured)
	}

	t2, err := st.CreateTunnel(ctx, "test", store.Tunnel{Name: "tunnel-two", CloudflareTunnelID: "0b1f6a8e-2c39-4a47-9d1e-5b2f7c3d4e5f"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateTenantDeployment(ctx, "test", r.Tenant.ID, store.DeploymentPatch{TunnelID: set(&t2.ID)}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetDomain(ctx, d.ID)
	if p := ob.take(); !slices.Equal(p, []int64{d.ID}) || got.CloudflareConfigured || *got.TunnelUUID != t2.CloudflareTunnelID {
		t.Errorf("after a move: provisioned %v, configured %v, tunnel %v", p, got.CloudflareConfigured, *got.TunnelUUID)
	}
	configured(d.ID)

	if _, err := st.UpdateTunnel(ctx, "test", t2.ID, store.TunnelPatch{CloudflareTunnelID: set("3d5e0c1a-8f4b-4c2d-9e6f-7a8b9c0d1e2f")}); err != nil {
		t.Fatal(err)
	}
	got, _ = st.GetDomain(ctx, d.ID)
	if p := ob.take(); !slices.Equal(p, []int64{d.ID}) || got.CloudflareConfigured {
		t.Errorf("after a new tunnel id: provisioned %v, configured %v", p, got.CloudflareConfigured)
	}
	if _, err := st.UpdateTunnel(ctx, "test", t2.ID, store.TunnelPatch{Name: set("renamed")}); err != nil {
		t.Fatal(err)
	}
	if p := ob.take(); len(p) != 0 {
		t.Errorf("a rename provisioned %v", p)
	}

	// A deployment's first tunnel: its domains can have records now.
	bare, err := st.CreateTenantDeployment(ctx, "test", store.TenantDeployment{CustomerID: r.Customer.ID, Name: "bare", BackendURL: &backend})
	if err != nil {
		t.Fatal(err)
	}
	d3 := insertOn(t, st, r.Customer.ID, &bare.ID, "shop.impulse-max.com", "shop")
	ob.take()
	if _, err := st.UpdateTenantDeployment(ctx, "test", bare.ID, store.DeploymentPatch{TunnelID: set(&t2.ID)}); err != nil {
		t.Fatal(err)
	}
	if p := ob.take(); !slices.Equal(p, []int64{d3.ID}) {
		t.Errorf("first tunnel of a deployment provisioned %v, want [%d]", p, d3.ID)
	}

	// The TXT gate: closed, an unproven domain gets nothing; opened, it is routed and provisioned.
	c2, err := st.CreateCustomer(ctx, "test", store.Customer{Email: "ops@b.com", CompanyName: "B", Plan: "basic", RequireTXT: true})
	if err != nil {
		t.Fatal(err)
	}
	td2, err := st.CreateTenantDeployment(ctx, "test", store.TenantDeployment{CustomerID: c2.ID, Name: "b", TunnelID: &t2.ID, BackendURL: &backend})
	if err != nil {
		t.Fatal(err)
	}
	d2 := insertOn(t, st, c2.ID, &td2.ID, "www.b.com", "b")
	if p := ob.take(); len(p) != 0 || d2.IngressVersion != nil {
		t.Fatalf("unproven domain of a TXT customer: provisioned %v, ingress_version %v", p, d2.IngressVersion)
	}
	if _, err := st.UpdateCustomer(ctx, "test", c2.ID, store.CustomerPatch{RequireTXT: set(false)}, map[string]int{"basic": 10}); err != nil {
		t.Fatal(err)
	}
	got, _ = st.GetDomain(ctx, d2.ID)
	if p := ob.take(); !slices.Equal(p, []int64{d2.ID}) || got.IngressVersion == nil {
		t.Errorf("after require_txt false: provisioned %v, ingress_version %v", p, got.IngressVersion)
	}
}

// A domain being deleted waits for the agents of its deployment's tunnel: the deployment cannot
// move to another tunnel (or be deleted) until it is gone, but its backend can change.
func TestMovesWaitForDomainsBeingRemoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.New(storetest.NewDB(t))
	r := storetest.NewRouting(t, st, store.Customer{})
	d := insertOn(t, st, r.Customer.ID, &r.Tenant.ID, "www.impulse-max.com", "impulse-max")
	if _, err := st.CreateAgent(ctx, "test", r.Tunnel.ID, "pct-105", []byte("hash")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE agents SET applied_version = $1`, *d.IngressVersion); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteDomain(ctx, "test", d.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetDomain(ctx, d.ID); err != nil || got.DeletingAt == nil {
		t.Fatalf("the domain should be kept as deleting while the agent routes it: %v %v", got.DeletingAt, err)
	}

	var ce *store.ConflictError
	_, err := st.UpdateTenantDeployment(ctx, "test", r.Tenant.ID, store.DeploymentPatch{TunnelID: set[*int64](nil)})
	if !errors.As(err, &ce) || ce.Code != "removal_in_progress" || !strings.Contains(ce.Message.EN, "www.impulse-max.com") {
		t.Fatalf("move while a domain is being removed: %v", err)
	}
	err = st.DeleteTenantDeployment(ctx, "test", r.Tenant.ID)
	if !errors.As(err, &ce) || ce.Code != "tenant_deployment_in_use" || !strings.Contains(ce.Message.EN, "1 domain being removed (www.impulse-max.com)") {
		t.Fatalf("delete while a domain is being removed: %v", err)
	}
	backend := "http://10.10.10.106:8069"
	if _, err := st.UpdateTenantDeployment(ctx, "test", r.Tenant.ID, store.DeploymentPatch{BackendURL: set(&backend)}); err != nil {
		t.Errorf("a new backend while a domain is being removed: %v", err)
	}
	td, err := st.GetTenantDeployment(ctx, r.Tenant.ID)
	if err != nil || td.TunnelID == nil || *td.TunnelID != r.Tunnel.ID {
		t.Errorf("deployment after the refused move: %+v %v", td, err)
	}
}

// A rule an agent refused stays out of its tunnel until its routing changes: a new backend offers
// it again, in the new version.
func TestARoutingChangeOffersARefusedRuleAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.New(storetest.NewDB(t))
	r := storetest.NewRouting(t, st, store.Customer{})
	d := insertOn(t, st, r.Customer.ID, &r.Tenant.ID, "www.impulse-max.com", "impulse-max")
	if _, err := st.Pool().Exec(ctx, `UPDATE custom_domains SET ingress_rejected_at = now(), ingress_rejected_kind = 'rejected',
		ingress_rejected_reason = '{"es": "el agente del túnel rechazó la regla", "en": "the tunnel agent refused the rule"}' WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	if di, err := st.GetDesiredIngress(ctx, r.Tunnel.ID); err != nil || len(di.Rules) != 0 {
		t.Fatalf("a refused rule is in the desired set: %+v %v", di.Rules, err)
	}
	backend := "http://10.10.10.106:8069"
	if _, err := st.UpdateTenantDeployment(ctx, "test", r.Tenant.ID, store.DeploymentPatch{BackendURL: set(&backend)}); err != nil {
		t.Fatal(err)
	}
	di, err := st.GetDesiredIngress(ctx, r.Tunnel.ID)
	if err != nil || len(di.Rules) != 2 || di.Rules[0].Service != backend {
		t.Fatalf("after a new backend: %+v %v, want the domain's 2 rules → %s", di.Rules, err, backend)
	}
	got, _ := st.GetDomain(ctx, d.ID)
	if got.IngressRejectedKind != nil || got.IngressVersion == nil || *got.IngressVersion != di.Version {
		t.Errorf("domain after a new backend: rejected %v, ingress_version %v (tunnel at %d)", got.IngressRejectedKind, got.IngressVersion, di.Version)
	}
}
