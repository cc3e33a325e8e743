package store_test

import (
	"context"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

// BenchmarkDesiredIngress10k measures what a push costs the control plane for a tunnel with
// 10,000 domains (20,000 rules): read the domains and judge each one alone with the agent's
// validator (ingressProblem), as every push and every ACK does.
//
//	go test -run '^$' -bench BenchmarkDesiredIngress10k -benchtime 20x ./controlplane/store/
func BenchmarkDesiredIngress10k(b *testing.B) {
	pool, _ := storetest.NewDBURL(b)
	st := store.New(pool)
	r := storetest.NewRouting(b, st, store.Customer{})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO custom_domains (customer_id, tenant_deployment_id, external_domain,
			sajet_subdomain, sajet_zone, verification_token, ingress_version)
		SELECT $1, $2, 'www.tenant-' || g || '.com', 'tenant-' || g, 'sajet.us', 'jeturing-verify-x', 1
		FROM generate_series(1, 10000) AS g`, r.Customer.ID, r.Tenant.ID); err != nil {
		b.Fatal(err)
	}
	// One poisoned row among them, left out alone.
	if _, err := pool.Exec(ctx, `UPDATE custom_domains SET external_domain = 'WWW.BAD.COM' WHERE sajet_subdomain = 'tenant-5000'`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		d, err := st.GetDesiredIngress(ctx, r.Tunnel.ID)
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Rules) != 19998 || len(d.Excluded) != 1 {
			b.Fatalf("%d rules, %d excluded", len(d.Rules), len(d.Excluded))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/push")
}
