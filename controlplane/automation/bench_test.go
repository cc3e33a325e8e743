package automation_test

// Benchmarks for the figures of docs/AUTOMATION.md: re-verification throughput and what it
// costs, a webhook's latency from the commit of a status change to a verified request on a
// loopback receiver, and the API's POST throughput while 1,000 events fan out to 10 endpoints.
// They print figures (custom metrics and log lines) and assert nothing about time.
//
//	go test ./controlplane/automation -run '^$' -bench . -benchtime 1x
//	SAJET_BENCH_DOMAINS=10000 go test ./controlplane/automation -run '^$' -bench Reverify -benchtime 1x
//
// BenchmarkReverify's domain-rows-read/check should stay small and constant as the number of
// domains grows; when it tracks the number of domains, some statement of the check path scans.
//
// Each runs on a PostgreSQL of its own with fsync ON (the test clusters run with fsync off, which
// would flatter every commit-bound figure), DNS on a loopback server, and the production
// defaults of the job client (jobs.Config{}) and of the automation.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/jobs"
	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/clock"
	"github.com/jeturing/sajet-domains/migrations"
)

// bench is the automation on an fsync-on database with the production verifier (CAA lookups
// on) against one loopback resolver.
type bench struct {
	b       *testing.B
	ctx     context.Context
	pool    *pgxpool.Pool
	st      *store.Store
	dns     *dnstest.Server
	clock   *clock.Manual
	svc     *domains.Service
	auto    *automation.Automation
	client  *river.Client[pgx.Tx]
	routing storetest.Routing
}

func newBench(b *testing.B) *bench {
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
	pool, err := pgxpool.New(ctx, cluster.URL("bench")+"&pool_max_conns=64")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := migrations.Apply(ctx, pool, nil); err != nil {
		b.Fatal(err)
	}
	w := &bench{b: b, ctx: ctx, pool: pool, st: store.New(pool), dns: dnstest.Start(b),
		clock: clock.NewManual(time.Now().UTC().Truncate(time.Second))}
	quota := int32(1_000_000)
	w.routing = storetest.NewRouting(b, w.st, store.Customer{DomainQuota: &quota})
	verifier, err := dnsverify.New(dnsverify.Config{Resolvers: []string{w.dns.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	key, _ := webhooks.ParseKey(webhooks.NewKey())
	sealer, _ := webhooks.NewSealer(key)
	w.svc = domains.New(w.st, verifier, domains.Config{Zone: "sajet.us", Clock: w.clock}, nil)
	w.auto = automation.New(automation.Config{Store: w.st, Domains: w.svc, Clock: w.clock, Sealer: sealer,
		Guard: webhooks.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		// The sweeps run when the benchmark says so.
		SweepInterval: time.Hour, AlertInterval: time.Hour, HostnameInterval: time.Hour})
	if w.client, err = jobs.New(pool, jobs.Config{}, w.auto); err != nil {
		b.Fatal(err)
	}
	w.st.UseAutomation(w.auto)
	if err := w.client.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.client.Stop(ctx)
	})
	return w
}

// register registers n domains whose DNS points at the platform (a CNAME to their sajet name,
// which has an A record), named prefix0…
func (w *bench) register(prefix string, n int) []store.Domain {
	w.b.Helper()
	out := make([]store.Domain, 0, n)
	for i := range n {
		host := fmt.Sprintf("www.%s%d.com", prefix, i)
		d, err := w.svc.Register(w.ctx, "bench", domains.RegisterInput{ExternalDomain: host, CustomerID: w.routing.Customer.ID,
			TenantDeploymentID: &w.routing.Tenant.ID})
		if err != nil {
			w.b.Fatalf("register %s: %v", host, err)
		}
		w.dns.AddCNAME(host, d.SajetFullDomain)
		w.dns.AddA(d.SajetFullDomain, "203.0.113.10")
		out = append(out, d)
	}
	return out
}

func (w *bench) count(query string, args ...any) int {
	w.b.Helper()
	var n int
	if err := w.pool.QueryRow(w.ctx, query, args...).Scan(&n); err != nil {
		w.b.Fatal(err)
	}
	return n
}

// until polls cond every 25ms, failing after timeout.
func (w *bench) until(timeout time.Duration, what string, cond func() bool) {
	w.b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			w.b.Fatalf("timed out waiting for %s (jobs: %s)", what, w.jobStates())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// jobStates summarizes the River jobs, for a timeout's message.
func (w *bench) jobStates() string {
	rows, err := w.pool.Query(w.ctx, `SELECT kind || '/' || state || ': ' || count(*) || coalesce(' ' || left(max(errors::text), 300), '')
		FROM river_job GROUP BY kind, state ORDER BY 1`)
	if err != nil {
		return err.Error()
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err.Error()
	}
	return strings.Join(lines, "; ")
}

// idle waits until no check job is queued or running: a check still being completed would make
// the next sweep's job for its domain a duplicate (unique while queued).
func (w *bench) idle() {
	w.b.Helper()
	w.until(time.Minute, "the check jobs to finish", func() bool {
		return w.count(`SELECT count(*) FROM river_job WHERE kind = 'check_domain'
			AND state IN ('available', 'pending', 'running', 'scheduled', 'retryable')`) == 0
	})
}

// pass moves the clock by d, sweeps, and waits until every live domain has been checked at the
// new time; it returns the wall time from the sweep to the last check.
func (w *bench) pass(d time.Duration, n int) time.Duration {
	w.b.Helper()
	w.idle()
	now := w.clock.Advance(d)
	start := time.Now()
	// A sweep claims up to SweepLimit (5,000); the periodic job sweeps again at once when full.
	claimed := 0
	for claimed < n {
		c, err := w.auto.SweepChecks(w.ctx)
		if err != nil {
			w.b.Fatal(err)
		}
		if c == 0 {
			break
		}
		claimed += c
	}
	if claimed != n {
		w.b.Fatalf("the sweep claimed %d checks, want %d", claimed, n)
	}
	// Waits on the job table, not on custom_domains: polling that would add its own scans to
	// the database's CPU and rows read. Generous: a loaded machine runs well under 100 checks/s.
	w.until(time.Minute+time.Duration(n)*50*time.Millisecond, fmt.Sprintf("%d checks", n), func() bool {
		return w.count(`SELECT count(*) FROM river_job WHERE kind = 'check_domain'
			AND state IN ('available', 'pending', 'running', 'scheduled', 'retryable')`) == 0
	})
	took := time.Since(start)
	if checked := w.count(`SELECT count(*) FROM custom_domains WHERE last_checked_at >= $1`, now); checked != n {
		w.b.Fatalf("%d of %d domains checked at %v (jobs: %s)", checked, n, now, w.jobStates())
	}
	return took
}

// cpu is CPU time used so far: this process (the automation, River, pgx, and the loopback
// resolver, which runs in-process) and the database backends of the benchmark's database.
type cpu struct {
	self time.Duration
	pg   map[int]time.Duration
}

func (w *bench) cpu() cpu {
	w.b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		w.b.Fatal(err)
	}
	c := cpu{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), pg: map[int]time.Duration{}}
	rows, err := w.pool.Query(w.ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		w.b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		w.b.Fatal(err)
	}
	for _, pid := range pids {
		if t, ok := procCPU(int(pid)); ok {
			c.pg[int(pid)] = t
		}
	}
	return c
}

// procCPU reads a process's user+system time from /proc (clock ticks of 10ms).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command may contain spaces: fields count from after its closing parenthesis.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, true
}

// since returns the CPU used since c: this process, and the database backends (those that
// started meanwhile count from zero).
func (w *bench) since(c cpu) (self, pg time.Duration) {
	now := w.cpu()
	for pid, t := range now.pg {
		pg += t - c.pg[pid]
	}
	return now.self - c.self, pg
}

// rowsRead is how many rows of custom_domains were read so far (sequential and index scans),
// from PostgreSQL's statistics; backends report them within a second, so it waits that long.
func (w *bench) rowsRead() int64 {
	w.b.Helper()
	time.Sleep(1500 * time.Millisecond)
	var n int64
	if err := w.pool.QueryRow(w.ctx, `SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
		FROM pg_stat_user_tables WHERE relname = 'custom_domains'`).Scan(&n); err != nil {
		w.b.Fatal(err)
	}
	return n
}

// BenchmarkReverify measures the checks that never stop: 2,000 verified domains come due, one
// sweep claims them, and the check jobs (River, queue checks, the default 50 workers) run each
// through domains.Service.Check — the verifier against the loopback resolver, then the recorded
// check, health rules, events and next check time in one transaction. It reports checks per
// second, DNS queries and CPU per check, and from those what 100,000 domains cost per day at
// the default cadences. Target: ≥ 500 checks/s on 2 cores.
func BenchmarkReverify(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("SAJET_BENCH_DOMAINS")); err == nil && v > 0 {
		n = v // a quicker run
	}
	w := newBench(b)
	w.register("reverify", n)
	// The first checks verify them (pending → verified, with their events); the measured
	// passes are re-verifications of verified domains, the steady state.
	// An hour: registration sets the first check a minute after the real time of each insert.
	w.pass(time.Hour, n)
	// Statistics as a running database has them (autovacuum would get there on its own).
	if _, err := w.pool.Exec(w.ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	if v := w.count(`SELECT count(*) FROM custom_domains WHERE verified_at IS NOT NULL`); v != n {
		b.Fatalf("%d of %d domains verified by the first checks", v, n)
	}
	var wall, self, pg time.Duration
	var queries, rows int64
	passes := 0
	for b.Loop() {
		q0, c0, r0 := w.dns.Queries(), w.cpu(), w.rowsRead()
		// Verified domains are next due within 6h ± 20%.
		wall += w.pass(8*time.Hour, n)
		s, p := w.since(c0)
		self, pg, queries = self+s, pg+p, queries+w.dns.Queries()-q0
		rows += w.rowsRead() - r0
		passes++
	}
	if bad := w.count(`SELECT count(*) FROM custom_domains WHERE last_check_status IS DISTINCT FROM 'ok'`); bad > 0 {
		b.Fatalf("%d domains' last check is not ok", bad)
	}
	checks := float64(n * passes)
	rate := checks / wall.Seconds()
	qPerCheck := float64(queries) / checks
	selfPer, pgPer := self.Seconds()/checks, pg.Seconds()/checks
	b.ReportMetric(rate, "checks/s")
	b.ReportMetric(qPerCheck, "queries/check")
	b.ReportMetric(selfPer*1000, "cpu-ms/check")
	b.ReportMetric(pgPer*1000, "pg-cpu-ms/check")
	// Rows of custom_domains read per check: a constant means per-check cost independent of the
	// number of domains; growing with n means some statement scans.
	b.ReportMetric(float64(rows)/checks, "domain-rows-read/check")
	b.ReportMetric(0, "ns/op")

	// 100,000 domains a day at the default cadences (domains.DefaultHealth): verified every
	// VerifiedEvery; a mix with 2% pending at the PendingMax cap and 1% misconfigured every
	// MisconfiguredEvery. Queries scale with the resolvers configured (--dns-resolver).
	h := domains.DefaultHealth()
	day := 24 * time.Hour
	allVerified := 100_000 * float64(day/h.VerifiedEvery)
	mix := 97_000*float64(day/h.VerifiedEvery) + 2_000*float64(day/h.PendingMax) + 1_000*float64(day/h.MisconfiguredEvery)
	for _, c := range []struct {
		name   string
		checks float64
	}{{"100,000 verified", allVerified}, {"97% verified, 2% pending, 1% misconfigured", mix}} {
		b.Logf("%s: %.0f checks/day, %.2f M DNS queries/day per resolver (%.1f/s), CPU %.0f s/day here + %.0f s/day PostgreSQL (%.2f%% of one core), %.0f s of checking at %.0f checks/s",
			c.name, c.checks, c.checks*qPerCheck/1e6, c.checks*qPerCheck/86400, c.checks*selfPer, c.checks*pgPer,
			100*c.checks*(selfPer+pgPer)/86400, c.checks/rate, rate)
	}
	if perCheck := float64(rows) / checks; perCheck > 100 {
		b.Logf("caution: a check reads %.0f rows of custom_domains with %d domains (%.2f per domain): the database's cost per check grows with the table, so the per-day figures above, computed from the cost at %d domains, understate 100,000",
			perCheck, n, perCheck/float64(n), n)
	}
	b.Logf("measured with %d domains: %d checks in %v (%.0f checks/s), %.2f queries/check to 1 resolver (CAA on), %.3f ms CPU/check in the process (incl. the loopback resolver) + %.3f ms in PostgreSQL, %.0f rows of custom_domains read per check",
		n, int(checks), wall.Round(time.Millisecond), rate, qPerCheck, selfPer*1000, pgPer*1000, float64(rows)/checks)
}

// hookReceiver is a webhook endpoint on loopback that verifies each request's signature and
// notes when each domain's event arrived.
type hookReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	key     []byte
	arrived map[float64]time.Time // domain_id → first verified arrival
	total   int
	refused int
	signal  chan struct{}
}

func newHookReceiver(b *testing.B) *hookReceiver {
	r := &hookReceiver{arrived: map[float64]time.Time{}, signal: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		at := time.Now()
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		defer r.mu.Unlock()
		if webhooks.Verify(r.key, req.Header, body, time.Now()) != nil {
			r.refused++
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.total++
		var p struct {
			Data struct {
				DomainID float64 `json:"domain_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		if _, seen := r.arrived[p.Data.DomainID]; !seen {
			r.arrived[p.Data.DomainID] = at
		}
		select {
		case r.signal <- struct{}{}:
		default:
		}
	}))
	b.Cleanup(r.srv.Close)
	return r
}

func (w *bench) endpoint(r *hookReceiver, types ...string) {
	w.b.Helper()
	cust := w.routing.Customer.ID
	_, secret, err := w.auto.CreateEndpoint(w.ctx, "bench", automation.EndpointInput{CustomerID: &cust,
		URL: r.srv.URL + "/hooks", EventTypes: types, Enabled: true})
	if err != nil {
		w.b.Fatal(err)
	}
	key, err := webhooks.ParseSecret(secret)
	if err != nil {
		w.b.Fatal(err)
	}
	r.mu.Lock()
	r.key = key
	r.mu.Unlock()
}

// BenchmarkWebhookLatency measures, 200 times one after the other, a manual verify of a pending
// domain (domains.Service.Verify: the check, then the status change and its domain.verified
// event committed together) until the signed request arrives at a loopback receiver that
// verified its signature: the fan-out job, the delivery job and the HTTP request, through River
// with its default fetch settings. Reported from the moment Verify returned (the commit).
func BenchmarkWebhookLatency(b *testing.B) {
	const samples = 200
	w := newBench(b)
	r := newHookReceiver(b)
	w.endpoint(r, store.EventDomainVerified)
	var lat []time.Duration
	round := 0
	for b.Loop() {
		ds := w.register(fmt.Sprintf("hook%d-", round), samples)
		round++
		for _, d := range ds {
			out, err := w.svc.Verify(w.ctx, "bench", d)
			committed := time.Now()
			if err != nil || out.Domain.VerifiedAt == nil {
				b.Fatalf("verify %s: %v (verified %v)", d.ExternalDomain, err, out.Domain.VerifiedAt)
			}
			deadline := time.After(30 * time.Second)
			for {
				r.mu.Lock()
				at, ok := r.arrived[float64(d.ID)]
				r.mu.Unlock()
				if ok {
					lat = append(lat, at.Sub(committed))
					break
				}
				select {
				case <-r.signal:
				case <-time.After(5 * time.Millisecond):
				case <-deadline:
					b.Fatalf("no signed domain.verified for domain %d within 30s", d.ID)
				}
			}
		}
	}
	if r.refused > 0 {
		b.Fatalf("%d requests failed signature verification", r.refused)
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(p(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("commit → verified signed request on loopback, %d samples: p50 %v, p90 %v, p99 %v, max %v",
		len(lat), p(0.5).Round(10*time.Microsecond), p(0.9).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond),
		lat[len(lat)-1].Round(10*time.Microsecond))
}

// BenchmarkFanoutAPIThroughput measures the API's POST /api/domains throughput (16 clients over
// loopback HTTP, the real API on the same database, spread over 160 customers) in alternating
// windows: the webhooks queue paused, then running while 1,000 events fan out to 10 endpoints
// (10,000 signed deliveries to loopback receivers that verify every signature, at the default
// --webhook-rate). The events are committed in one transaction with their fan-out jobs, as the
// store's emit does. Target: the API slows by ≤ 10%.
func BenchmarkFanoutAPIThroughput(b *testing.B) {
	const events, endpoints, clients = 1000, 10, 16
	const baseline = 30 * time.Second // long enough that the windows before and after are not noise
	w := newBench(b)
	about := w.register("fanout", 100)
	var receivers []*hookReceiver
	for range endpoints {
		r := newHookReceiver(b)
		w.endpoint(r, store.EventDomainVerified)
		receivers = append(receivers, r)
	}
	received := func() (ok, refused int) {
		for _, r := range receivers {
			r.mu.Lock()
			ok, refused = ok+r.total, refused+r.refused
			r.mu.Unlock()
		}
		return ok, refused
	}
	srv := httptest.NewServer(api.New(api.Config{Store: w.st, Domains: w.svc}))
	b.Cleanup(srv.Close)
	token, hash := api.NewToken()
	if _, err := w.st.CreateAPIToken(w.ctx, "bench", hash, api.RoleAdmin, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	// The POSTs go to 160 customers, as on a platform: tens of thousands of domains are created
	// during a run, and what one registration costs should not be measured at one customer's
	// ever-growing list (the windows before and after the fan-out would see different costs).
	quota := int32(1_000_000)
	customers := make([]int64, 160)
	backend := storetest.BackendURL
	for i := range customers {
		c, err := w.st.CreateCustomer(w.ctx, "bench", store.Customer{CompanyName: fmt.Sprintf("Shop %d", i),
			Email: fmt.Sprintf("ops@shop%d.com", i), Plan: "basic", DomainQuota: &quota})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.st.CreateTenantDeployment(w.ctx, "bench", store.TenantDeployment{CustomerID: c.ID, Name: "odoo",
			TunnelID: &w.routing.Tunnel.ID, BackendURL: &backend}); err != nil {
			b.Fatal(err)
		}
		customers[i] = c.ID
	}
	var seq atomic.Int64
	// load POSTs new domains from 16 clients until stop is closed; it returns how many were
	// created and in how long.
	load := func(stop <-chan struct{}) (int, time.Duration) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		total, failed := 0, ""
		start := time.Now()
		for range clients {
			wg.Go(func() {
				n := 0
				defer func() { mu.Lock(); total += n; mu.Unlock() }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					k := seq.Add(1)
					body := fmt.Sprintf(`{"external_domain":"shop%d.fanout-bench.com","customer_id":%d}`, k, customers[k%int64(len(customers))])
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/domains", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Content-Type", "application/json")
					res, err := hc.Do(req)
					if err != nil {
						mu.Lock()
						failed = err.Error()
						mu.Unlock()
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusCreated {
						mu.Lock()
						failed = "POST /api/domains: " + res.Status
						mu.Unlock()
						return
					}
					n++
				}
			})
		}
		wg.Wait()
		if failed != "" {
			b.Fatal(failed)
		}
		return total, time.Since(start)
	}
	timed := func(d time.Duration) float64 {
		stop := make(chan struct{})
		time.AfterFunc(d, func() { close(stop) })
		n, took := load(stop)
		return float64(n) / took.Seconds()
	}
	// Windows alternate between the deliveries' queue paused and running, on the same warmed
	// database, so whatever drifts over the run (a fresh database's first minutes are slower
	// whatever runs; the table grows) falls on both sides alike.
	const cycles, window = 4, 20 * time.Second
	timed(baseline) // warm up
	if err := w.client.QueuePause(w.ctx, "webhooks", nil); err != nil {
		b.Fatal(err)
	}
	// 1,000 events in one transaction, each with its fan-out job; their 10,000 deliveries wait
	// in the paused queue.
	tx, err := w.pool.Begin(w.ctx)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range events {
		d := about[i%len(about)]
		payload, _ := json.Marshal(map[string]any{"type": store.EventDomainVerified, "timestamp": now.Format(time.RFC3339Nano),
			"data": map[string]any{"domain_id": d.ID, "hostname": d.ExternalDomain, "state": "verified", "previous_state": "pending",
				"seq": i + 1, "customer_id": d.CustomerID}})
		var id int64
		if err := tx.QueryRow(w.ctx, `INSERT INTO domain_events (type, domain_id, customer_id, seq, occurred_at, payload)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, store.EventDomainVerified, d.ID, d.CustomerID, i+1, now,
			string(payload)).Scan(&id); err != nil {
			b.Fatal(err)
		}
		if err := w.auto.FanoutTx(w.ctx, tx, id); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(w.ctx); err != nil {
		b.Fatal(err)
	}
	var quiet, busy []float64
	delivered := 0
	for b.Loop() {
		for range cycles {
			quiet = append(quiet, timed(window))
			before, _ := received()
			if err := w.client.QueueResume(w.ctx, "webhooks", nil); err != nil {
				b.Fatal(err)
			}
			busy = append(busy, timed(window))
			if err := w.client.QueuePause(w.ctx, "webhooks", nil); err != nil {
				b.Fatal(err)
			}
			after, _ := received()
			delivered += after - before
		}
	}
	ok, refused := received()
	if refused > 0 {
		b.Fatalf("%d deliveries failed signature verification", refused)
	}
	if ok == 0 {
		b.Fatal("no delivery arrived while the queue ran")
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	slowdown := 100 * (1 - mean(busy)/mean(quiet))
	rate := float64(delivered) / (float64(len(busy)) * window.Seconds())
	b.ReportMetric(mean(quiet), "quiet-req/s")
	b.ReportMetric(mean(busy), "fanout-req/s")
	b.ReportMetric(slowdown, "slowdown-%")
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("POST /api/domains, %d clients, %d alternating %s windows: %.0f req/s with the deliveries paused %v, %.0f req/s while they ran %v (%d signed deliveries of %d events × %d endpoints, %.0f/s): %.1f%% slower",
		clients, 2*len(quiet), window, mean(quiet), rounded(quiet), mean(busy), rounded(busy), delivered, events, endpoints, rate, slowdown)
}

func rounded(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}
