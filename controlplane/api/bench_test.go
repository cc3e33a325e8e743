package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/app"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/migrations"
)

// benchStack is the real API over loopback HTTP on a PostgreSQL with fsync ON (a private cluster
// of its own: the test clusters run with fsync off, which would flatter write throughput).
type benchStack struct {
	url   string
	pool  *pgxpool.Pool
	store *store.Store
	admin string
}

func newBenchStack(b *testing.B) *benchStack {
	b.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sajet-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // as root, PostgreSQL runs as postgres
		b.Fatal(err)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "pg"), Fsync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cluster.Stop(context.Background()) })
	if err := cluster.CreateDatabase(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	pool, err := app.Open(ctx, cluster.URL("bench")+"&pool_max_conns=32")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := migrations.Apply(ctx, pool, nil); err != nil {
		b.Fatal(err)
	}
	verifier, err := dnsverify.New(dnsverify.Config{Resolvers: []string{"127.0.0.1:9"}})
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(pool)
	svc := domains.New(st, verifier, domains.Config{Zone: "sajet.us"}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(api.New(api.Config{Store: st, Domains: svc}))
	b.Cleanup(srv.Close)
	secret, hash := api.NewToken()
	if _, err := st.CreateAPIToken(ctx, "bench", hash, api.RoleAdmin, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	return &benchStack{url: srv.URL, pool: pool, store: st, admin: secret}
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
}

func (s *benchStack) request(c *http.Client, method, path, body string) (int, error) {
	var req *http.Request
	var err error
	if body != "" {
		req, err = http.NewRequest(method, s.url+path, stringsReader(body))
	} else {
		req, err = http.NewRequest(method, s.url+path, nil)
	}
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = readAll(res)
	return res.StatusCode, nil
}

// BenchmarkCreateDomain measures POST /api/domains with 32 concurrent clients through the real
// HTTP stack on an fsync-on database. Target: ≥ 300 requests/s on 2 cores.
func BenchmarkCreateDomain(b *testing.B) {
	s := newBenchStack(b)
	ctx := context.Background()
	const clients, perClient = 32, 60
	var customers []int64
	for i := range clients {
		var id int64
		if err := s.pool.QueryRow(ctx, `INSERT INTO customers (email, company_name, plan, domain_quota)
			VALUES ($1, $1, 'enterprise', 1000000) RETURNING id`, fmt.Sprintf("c%d@bench", i)).Scan(&id); err != nil {
			b.Fatal(err)
		}
		customers = append(customers, id)
	}
	c := benchClient()
	var seq atomic.Int64
	b.ResetTimer()
	var total time.Duration
	var n int
	for range b.N {
		start := time.Now()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range clients {
			wg.Go(func() {
				for range perClient {
					k := seq.Add(1)
					body := fmt.Sprintf(`{"external_domain":"shop%d.bench-%d.com","customer_id":%d}`, k, i, customers[i])
					code, err := s.request(c, "POST", "/api/domains", body)
					if err != nil || code != 201 {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
		n += clients * perClient
		if failed.Load() > 0 {
			b.Fatalf("%d creates failed", failed.Load())
		}
	}
	b.ReportMetric(float64(n)/total.Seconds(), "req/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGetDomain100k measures the list-by-customer and get-by-hostname endpoints with 100,000
// domains in the table, and the same get query issued straight through pgx in the same run.
// Targets: p99 ≤ 20 ms for both endpoints; API p50 within 3× of the direct query's p50.
func BenchmarkGetDomain100k(b *testing.B) {
	s := newBenchStack(b)
	ctx := context.Background()
	const domainsTotal, customers = 100_000, 2_000
	if _, err := s.pool.Exec(ctx, `INSERT INTO customers (email, company_name, plan, domain_quota)
		SELECT 'c' || g || '@bench', 'C' || g, 'enterprise', 1000 FROM generate_series(1, $1) g`, customers); err != nil {
		b.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO custom_domains (customer_id, external_domain, sajet_subdomain, sajet_zone, verification_token)
		SELECT 1 + (g % $2), 'www.d' || g || '.com', 'd' || g, 'sajet.us', 'jeturing-verify-' || md5(g::text)
		FROM generate_series(1, $1) g`, domainsTotal, customers); err != nil {
		b.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	c := benchClient()
	const samples = 2000
	measure := func(f func(i int) error) []time.Duration {
		out := make([]time.Duration, 0, samples)
		for i := range samples {
			start := time.Now()
			if err := f(i); err != nil {
				b.Fatal(err)
			}
			out = append(out, time.Since(start))
		}
		slices.Sort(out)
		return out
	}
	get := func(path string) error {
		code, err := s.request(c, "GET", path, "")
		if err == nil && code != 200 {
			err = fmt.Errorf("GET %s: %d", path, code)
		}
		return err
	}
	b.ResetTimer()
	for range b.N {
		list := measure(func(i int) error { return get(fmt.Sprintf("/api/domains?customer_id=%d", 1+i%customers)) })
		one := measure(func(i int) error { return get(fmt.Sprintf("/api/domains/www.d%d.com", 1+(i*37)%domainsTotal)) })
		direct := measure(func(i int) error {
			_, err := s.store.GetDomainByHostname(ctx, fmt.Sprintf("www.d%d.com", 1+(i*37)%domainsTotal))
			return err
		})
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		pct := func(ds []time.Duration, p float64) time.Duration { return ds[int(p*float64(len(ds)-1))] }
		b.ReportMetric(ms(pct(list, .5)), "list-p50-ms")
		b.ReportMetric(ms(pct(list, .99)), "list-p99-ms")
		b.ReportMetric(ms(pct(one, .5)), "get-p50-ms")
		b.ReportMetric(ms(pct(one, .99)), "get-p99-ms")
		b.ReportMetric(ms(pct(direct, .5)), "pgx-p50-ms")
		b.ReportMetric(float64(pct(one, .5))/float64(pct(direct, .5)), "get/pgx-p50")
	}
	b.ReportMetric(0, "ns/op")
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func readAll(res *http.Response) ([]byte, error) { return io.ReadAll(res.Body) }
