package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/migrations"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// The template database is already migrated, so Apply must find nothing to do — from several
// callers at once, as replicas starting together would.
func TestApplyIsIdempotentAndSafeConcurrently(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	var wg sync.WaitGroup
	results := make([]migrations.Result, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = migrations.Apply(context.Background(), pool, nil) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("apply %d: %v", i, errs[i])
		}
		if len(results[i].Applied) != 0 || len(results[i].RiverApplied) != 0 {
			t.Errorf("apply %d on a migrated database changed something: %+v", i, results[i])
		}
	}
	for _, table := range []string{"custom_domains", "customers", "tenant_deployments", "tunnels", "agents", "api_tokens", "audit_log", "river_job"} {
		var exists bool
		if err := pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s missing (%v)", table, err)
		}
	}
}

// The enum the seed declares exists and the column uses it.
func TestVerificationStatusIsTheSeedEnum(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	var typ string
	err := pool.QueryRow(context.Background(), `SELECT udt_name FROM information_schema.columns
		WHERE table_name = 'custom_domains' AND column_name = 'verification_status'`).Scan(&typ)
	if err != nil || typ != "domain_verification_status" {
		t.Fatalf("verification_status type %q (%v), want domain_verification_status", typ, err)
	}
	_, err = pool.Exec(context.Background(), `INSERT INTO customers (email, company_name) VALUES ('a@b.c', 'A')`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(context.Background(), `INSERT INTO custom_domains (customer_id, external_domain, sajet_subdomain, sajet_zone, verification_token, verification_status)
		SELECT id, 'www.x.com', 'x', 'sajet.us', 't', 'bogus' FROM customers`)
	if err == nil {
		t.Error("a status outside the enum was stored")
	}
	_, err = pool.Exec(context.Background(), `INSERT INTO custom_domains (customer_id, external_domain, sajet_subdomain, sajet_zone, verification_token)
		SELECT id, 'www.x.com', '-bad-', 'sajet.us', 't' FROM customers`)
	if err == nil {
		t.Error("an invalid subdomain label was stored")
	}
}
