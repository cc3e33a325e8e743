package storetest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// Parallel tests each get their own database, already holding our schema and River's.
func TestEachTestGetsItsOwnMigratedDatabase(t *testing.T) {
	t.Parallel()
	var names sync.Map
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			pool := storetest.NewDB(t)
			ctx := t.Context()
			var name string
			if err := pool.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
				t.Fatal(err)
			}
			if other, dup := names.LoadOrStore(name, i); dup {
				t.Fatalf("tests %d and %d share database %s", other, i, name)
			}
			for _, table := range []string{"custom_domains", "customers", "river_job"} {
				var ok bool
				if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
					t.Errorf("table %s missing from a fresh test database (%v)", table, err)
				}
			}
		})
	}
}

// A row written in one test database is invisible in another, and the URL reaches the same
// database as the pool (for a binary started against it).
func TestWritesAreIsolatedAndTheURLReachesThePoolsDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, aURL := storetest.NewDBURL(t)
	b := storetest.NewDB(t)
	if _, err := a.Exec(ctx, `INSERT INTO customers (email, company_name) VALUES ('a@example.com', 'A')`); err != nil {
		t.Fatal(err)
	}
	if n := count(t, b.QueryRow(ctx, `SELECT count(*) FROM customers`)); n != 0 {
		t.Errorf("a row written in one test database is visible in another (%d rows)", n)
	}
	conn, err := pgx.Connect(ctx, aURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if n := count(t, conn.QueryRow(ctx, `SELECT count(*) FROM customers`)); n != 1 {
		t.Errorf("through NewDBURL's URL: %d rows, want the pool's 1", n)
	}
}

// A test's database is gone once the test has finished, even with a client still connected.
func TestDatabaseIsDroppedAtCleanup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var name string
	t.Run("user", func(t *testing.T) {
		pool, url := storetest.NewDBURL(t)
		if err := pool.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		// A client the test forgot to close, like a binary still running.
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn
	})
	observer := storetest.NewDB(t)
	if n := count(t, observer.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name)); n != 0 {
		t.Errorf("database %s still exists after its test finished", name)
	}
}

func count(t *testing.T, row pgx.Row) int {
	t.Helper()
	var n int
	if err := row.Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
