package pgcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
)

// A cluster keeps its data and its port across a stop and a start on the same directory, and a
// start on a directory whose cluster is still running adopts it.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sajet-pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must enter it when we are root
		t.Fatal(err)
	}
	opts := pgcluster.Options{Dir: filepath.Join(dir, "pg"), Fsync: false}

	c, err := pgcluster.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatalf("creating an existing database again: %v", err)
	}
	exec(t, c.URL("app"), `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')`)

	again, err := pgcluster.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start on a running cluster's directory: %v", err)
	}
	if again.Port() != c.Port() {
		t.Errorf("adopted cluster port %d, want %d", again.Port(), c.Port())
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, c.URL("app")); err == nil {
		t.Fatal("the cluster still accepts connections after Stop")
	}
	c2, err := pgcluster.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Stop(context.Background()) })
	if c2.Port() != c.Port() {
		t.Errorf("port after restart %d, want the remembered %d", c2.Port(), c.Port())
	}
	conn, err := pgx.Connect(ctx, c2.URL("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != "still here" {
		t.Errorf("after restart: %q, %v; want the row written before", v, err)
	}
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}
