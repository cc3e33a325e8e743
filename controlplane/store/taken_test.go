package store_test

import (
	"context"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

// hostname_taken: a domain one of whose hostnames an older domain of the same tunnel already
// has, in either column (external or platform), is the later one; the older one is not.
func TestHostnameTakenAcrossColumns(t *testing.T) {
	t.Parallel()
	pool, _ := storetest.NewDBURL(t)
	st := store.New(pool)
	r := storetest.NewRouting(t, st, store.Customer{})
	ctx := context.Background()
	insert := func(external, sub string) int64 {
		t.Helper()
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO custom_domains (customer_id, tenant_deployment_id, external_domain, sajet_subdomain,
				sajet_zone, verification_token) VALUES ($1, $2, $3, $4, 'sajet.us', 'jeturing-verify-x') RETURNING id`,
			r.Customer.ID, r.Tenant.ID, external, sub).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	older := insert("www.alpha-shop.com", "alpha")
	externalIsPlatform := insert("alpha.sajet.us", "gamma")     // its external name is older's platform name
	platformIsExternal := insert("www.other-shop.com", "delta") // not taken
	insert("delta.sajet.us.example.com", "epsilon")             // unrelated
	laterPlatform := insert("www.zeta-shop.com", "zeta")        // not taken
	platformTaken := insert("zeta.sajet.us", "eta")             // external = zeta's platform name
	for _, c := range []struct {
		id    int64
		taken bool
	}{{older, false}, {externalIsPlatform, true}, {platformIsExternal, false}, {laterPlatform, false}, {platformTaken, true}} {
		d, err := st.GetDomain(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if d.HostnameTaken != c.taken {
			t.Errorf("%s (%s): hostname_taken %v, want %v", d.ExternalDomain, d.SajetFullDomain, d.HostnameTaken, c.taken)
		}
	}
	// The platform name taken by an older domain's external name.
	first := insert("theta.sajet.us", "iota")
	second := insert("www.theta-shop.com", "theta") // its platform name is first's external name
	if d, _ := st.GetDomain(ctx, second); !d.HostnameTaken {
		t.Errorf("%s: platform name %s is an older domain's external name, not reported taken", d.ExternalDomain, d.SajetFullDomain)
	}
	if d, _ := st.GetDomain(ctx, first); d.HostnameTaken {
		t.Errorf("the older domain %s is reported taken", d.ExternalDomain)
	}
}
