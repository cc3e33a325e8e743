package storetest

import (
	"context"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/store"
)

// Routing is a customer whose tenant deployment sits behind a tunnel: what a domain needs to be
// routed (the frontend contract's ImpulseMax on tcs-sajet-tunnel, Odoo at 10.10.10.105:8069).
type Routing struct {
	Customer store.Customer
	Tunnel   store.Tunnel
	Tenant   store.TenantDeployment
}

// Seed values of Routing.
const (
	TunnelName = "tcs-sajet-tunnel"
	TunnelUUID = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
	BackendURL = "http://10.10.10.105:8069"
)

// NewRouting creates customer (ImpulseMax on the basic plan unless its fields say otherwise), the
// tunnel and a tenant deployment on it.
func NewRouting(t testing.TB, st *store.Store, customer store.Customer) Routing {
	t.Helper()
	ctx := context.Background()
	if customer.Email == "" {
		customer.Email = "ops@impulse-max.com"
	}
	if customer.CompanyName == "" {
		customer.CompanyName = "ImpulseMax"
	}
	if customer.Plan == "" {
		customer.Plan = "basic"
	}
	c, err := st.CreateCustomer(ctx, "test", customer)
	if err != nil {
		t.Fatal(err)
	}
	tun, err := st.CreateTunnel(ctx, "test", store.Tunnel{Name: TunnelName, CloudflareTunnelID: TunnelUUID})
	if err != nil {
		t.Fatal(err)
	}
	backend := BackendURL
	td, err := st.CreateTenantDeployment(ctx, "test", store.TenantDeployment{CustomerID: c.ID, Name: "odoo", TunnelID: &tun.ID, BackendURL: &backend})
	if err != nil {
		t.Fatal(err)
	}
	return Routing{Customer: c, Tunnel: tun, Tenant: td}
}
