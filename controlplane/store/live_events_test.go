package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
)

// What the pages watching a domain hear (GET /api/events, migrations 00011 and 00021): the
// sweep's claim of due checks is silent; an alert opened on a domain is announced as a change of
// that domain; any other change of the row still is.
func TestLiveEventsOfDomainsAndAlerts(t *testing.T) {
	t.Parallel()
	pool, _ := storetest.NewDBURL(t)
	st := store.New(pool)
	r := storetest.NewRouting(t, st, store.Customer{})
	ctx := context.Background()
	var id int64
	if err := pool.QueryRow(ctx, `INSERT INTO custom_domains (customer_id, tenant_deployment_id, external_domain, sajet_subdomain,
			sajet_zone, verification_token, next_check_at) VALUES ($1, $2, 'www.quiet-shop.com', 'quiet', 'sajet.us', 'jeturing-verify-x',
			now() - interval '1 minute') RETURNING id`, r.Customer.ID, r.Tenant.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d:%d", r.Customer.ID, id)

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN sajet_domain`); err != nil {
		t.Fatal(err)
	}
	// heard returns the payloads that arrive within a short wait after what was done.
	heard := func() []string {
		t.Helper()
		var got []string
		for {
			wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			n, err := conn.Conn().WaitForNotification(wctx)
			cancel()
			if err != nil {
				return got
			}
			got = append(got, n.Payload)
		}
	}

	claimed, err := st.ClaimDueChecks(ctx, time.Now(), 10*time.Minute, 10, func(context.Context, pgx.Tx, []int64) error { return nil })
	if err != nil || claimed != 1 {
		t.Fatalf("claim: %d, %v; want the one due domain", claimed, err)
	}
	if got := heard(); len(got) != 0 {
		t.Errorf("the claim of a due check was announced: %v", got)
	}
	// The quiet setting is the claim's transaction's only: the next change is heard.
	if _, err := pool.Exec(ctx, `UPDATE custom_domains SET last_checked_at = now() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if got := heard(); len(got) != 1 || got[0] != want {
		t.Errorf("a change of the domain was announced as %v, want [%s]", got, want)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO alerts (kind, severity, domain_id, customer_id, hostname, message, opened_at, last_seen_at)
		VALUES ('domain_misconfigured', 'warning', $1, $2, 'www.quiet-shop.com', '{}', now(), now())`, id, r.Customer.ID); err != nil {
		t.Fatal(err)
	}
	if got := heard(); len(got) != 1 || got[0] != want {
		t.Errorf("an alert opened on the domain was announced as %v, want [%s]", got, want)
	}
	// A platform-wide alert belongs to no page's domain.
	if _, err := pool.Exec(ctx, `INSERT INTO alerts (kind, severity, message, opened_at, last_seen_at)
		VALUES ('checks_stalled', 'critical', '{}', now(), now())`); err != nil {
		t.Fatal(err)
	}
	if got := heard(); len(got) != 0 {
		t.Errorf("a platform-wide alert was announced as a domain's: %v", got)
	}
}
