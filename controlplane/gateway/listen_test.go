package gateway_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

type recorder struct {
	mu      sync.Mutex
	tunnels []int64
	all     int
	changed chan struct{}
}

func (r *recorder) Tunnel(id int64) {
	r.mu.Lock()
	r.tunnels = append(r.tunnels, id)
	r.mu.Unlock()
	r.changed <- struct{}{}
}

func (r *recorder) All() {
	r.mu.Lock()
	r.all++
	r.mu.Unlock()
	r.changed <- struct{}{}
}

// waitUntil blocks until cond holds for what the listener reported, or fails after 20s.
func (r *recorder) waitUntil(t *testing.T, cond func(tunnels []int64, all int) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if tunnels, all := r.snapshot(); cond(tunnels, all) {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			tunnels, all := r.snapshot()
			t.Fatalf("listener saw tunnels %v and %d resyncs", tunnels, all)
		}
	}
}

func (r *recorder) snapshot() ([]int64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.tunnels...), r.all
}

// startListener runs a Listener on a fresh database until the test ends and returns the pool and
// what the listener reported.
func startListener(t *testing.T, reconcile time.Duration) (*pgxpool.Pool, *recorder) {
	t.Helper()
	pool, url := storetest.NewDBURL(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{changed: make(chan struct{}, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&gateway.Listener{ConnConfig: cfg, ReconcileInterval: reconcile}).Run(ctx, rec)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return pool, rec
}

// A committed domain change reaches the listener as its tunnel's id; connecting, and every
// reconcile interval, report "all" so a missed notification is healed.
func TestListenerReportsTunnelChangesAndPeriodicReconciles(t *testing.T) {
	t.Parallel()
	pool, rec := startListener(t, 300*time.Millisecond)
	wait := func(cond func([]int64, int) bool) { t.Helper(); rec.waitUntil(t, cond) }
	wait(func(_ []int64, all int) bool { return all >= 1 }) // LISTEN is in place

	st := store.New(pool)
	r := storetest.NewRouting(t, st, store.Customer{})
	if _, err := st.InsertDomain(context.Background(), store.NewDomain{CustomerID: r.Customer.ID, TenantDeploymentID: &r.Tenant.ID,
		ExternalDomain: "www.impulse-max.com", Zone: "sajet.us", Subdomains: []string{"impulse-max"}, Token: "t", CreatedBy: "t",
		PlanQuota: map[string]int{"basic": 10}}); err != nil {
		t.Fatal(err)
	}
	wait(func(tunnels []int64, _ int) bool { return len(tunnels) == 1 && tunnels[0] == r.Tunnel.ID })
	wait(func(_ []int64, all int) bool { return all >= 2 }) // the periodic reconcile fired
}

// A listener whose connection is killed reconnects and reports "all", since notifications sent
// while it was away are lost.
func TestListenerReconnectsAndResyncs(t *testing.T) {
	t.Parallel()
	pool, rec := startListener(t, time.Hour)
	waitAll := func(n int) {
		t.Helper()
		rec.waitUntil(t, func(_ []int64, all int) bool { return all >= n })
	}
	waitAll(1)
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN%' AND datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	waitAll(2)
}
