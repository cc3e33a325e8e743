package storetest_test

import (
	"context"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// Two tests get distinct migrated databases: a row written in one is invisible in the other.
func TestDatabasesAreMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	a := storetest.NewDB(t)
	b := storetest.NewDB(t)
	ctx := context.Background()
	for _, table := range []string{"custom_domains", "river_job"} {
		var ok bool
		if err := a.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Fatalf("table %s missing in a fresh test database (%v)", table, err)
		}
	}
	if _, err := a.Exec(ctx, `INSERT INTO customers (email, company_name) VALUES ('a@x.com', 'A')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a row written in one test database is visible in another (%d rows)", n)
	}
}
