package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// rssKB reads VmRSS and VmHWM (peak) of pid in KiB.
func rssKB(t testing.TB, pid int) (rss, peak int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] == "VmRSS:" {
				rss = v
			} else {
				peak = v
			}
		}
	}
	return rss, peak
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printJSON(b *testing.B, v map[string]any) {
	data, _ := json.Marshal(v)
	fmt.Println(string(data))
	b.Log(string(data))
}

// parallel runs f(i) for i in [0,n) on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// BenchmarkCommitToAck measures, through both real binaries and a real bus whose fake systemd
// answers at once, the time from sending a domain create (its commit happens before the response)
// to the agent's ACK being recorded in the database, over 200 sequential changes.
// Target: p50 ≤ 50 ms, p99 ≤ 250 ms.
func BenchmarkCommitToAck(b *testing.B) {
	for b.Loop() {
		pool, dbURL := storetest.NewDBURL(b)
		certFile, keyFile := gatewaytest.CertificateFiles(b)
		cp := startControlPlane(b, dbURL, proctest.FreeAddr(b), certFile, keyFile)
		token := cp.seed(b)
		n := newNode(b, cp, token)
		n.startAgent(b)
		cp.createDomain(b, "warmup.example.com")
		waitApplied(b, pool, 0)
		lat := make([]time.Duration, 0, 200)
		for i := range 200 {
			var before int64
			_ = pool.QueryRow(context.Background(), `SELECT config_version FROM tunnels WHERE id = 1`).Scan(&before)
			start := time.Now()
			cp.createDomain(b, fmt.Sprintf("shop-%03d.example.com", i))
			waitApplied(b, pool, before)
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		printJSON(b, map[string]any{"bench": "commit_to_ack", "changes": len(lat), "p50_ms": ms(percentile(lat, 0.5)),
			"p90_ms": ms(percentile(lat, 0.9)), "p99_ms": ms(percentile(lat, 0.99)), "max_ms": ms(lat[len(lat)-1]),
			"cloudflared_restarts": n.systemd.Restarts("cloudflared.service")})
		b.ReportMetric(ms(percentile(lat, 0.5)), "p50-ms")
		b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	}
}

// waitApplied spins until the agent has acknowledged a tunnel version above before.
func waitApplied(b testing.TB, pool *pgxpool.Pool, before int64) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var applied *int64
		_ = pool.QueryRow(context.Background(), `SELECT applied_version FROM agents WHERE id = 1`).Scan(&applied)
		if applied != nil && *applied > before {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
	b.Fatal("no ACK within 30s")
}

// BenchmarkThousandAgents connects 1,000 agents (goroutines, each with its own TLS connection and
// yamux session) to one control-plane binary, one tunnel each, then creates one domain on every
// tunnel and measures how fast each change reaches its agent, and the control plane's memory.
// Targets: RSS ≤ 250 MB; a change to every tunnel reaches all 1,000 agents in ≤ 2 s.
func BenchmarkThousandAgents(b *testing.B) {
	const agents = 1000
	for b.Loop() {
		_, dbURL := storetest.NewDBURL(b)
		certFile, keyFile := gatewaytest.CertificateFiles(b)
		cp := startControlPlane(b, dbURL, proctest.FreeAddr(b), certFile, keyFile)
		var cust map[string]any
		cp.call(b, "POST", "/api/customers", `{"email":"ops@impulse-max.com","company_name":"ImpulseMax","domain_quota":100000}`, &cust)
		tokens := make([]string, agents)
		parallel(agents, 16, func(i int) {
			var v map[string]any
			cp.call(b, "POST", "/api/tunnels", fmt.Sprintf(`{"name":"tunnel-%04d","cloudflare_tunnel_id":"00000000-0000-4000-8000-%012d"}`, i, i), &v)
		})
		var tunnels struct {
			Items []struct {
				ID   int64  `json:"id"`
				Name string `json:"name"`
			} `json:"items"`
		}
		ids := map[string]int64{}
		for after := int64(0); ; {
			cp.call(b, "GET", fmt.Sprintf("/api/tunnels?limit=500&after=%d", after), "", &tunnels)
			if len(tunnels.Items) == 0 {
				break
			}
			for _, t := range tunnels.Items {
				ids[t.Name] = t.ID
				after = t.ID
			}
		}
		parallel(agents, 16, func(i int) {
			id := ids[fmt.Sprintf("tunnel-%04d", i)]
			var v map[string]any
			cp.call(b, "POST", "/api/tenant-deployments", fmt.Sprintf(`{"customer_id":1,"name":"odoo-%04d","tunnel_id":%d,"backend_url":"http://10.0.%d.%d:8069"}`, i, id, i/250, i%250+1), &v)
			var created struct {
				Token string `json:"token"`
			}
			cp.call(b, "POST", "/api/agents", fmt.Sprintf(`{"tunnel_id":%d,"name":"agent-%04d"}`, id, i), &created)
			tokens[i] = created.Token
		})
		rss0, _ := rssKB(b, cp.p.Cmd.Process.Pid)

		received := make([]chan time.Time, agents)
		var connected sync.WaitGroup
		for i := range agents {
			received[i] = make(chan time.Time, 4)
			connected.Add(1)
			go fakeAgent(b, cp.agentAddr, tokens[i], fmt.Sprintf("tunnel-%04d", i), &connected, received[i])
		}
		connected.Wait()
		time.Sleep(time.Second) // let the initial resync pushes (empty rule sets) settle
		for i := range received {
			for len(received[i]) > 0 {
				<-received[i]
			}
		}
		rssConnected, _ := rssKB(b, cp.p.Cmd.Process.Pid)

		commits := make([]time.Time, agents)
		start := time.Now()
		parallel(agents, 32, func(i int) {
			var d map[string]any
			cp.call(b, "POST", "/api/domains", fmt.Sprintf(`{"external_domain":"www.tenant-%04d.com","customer_id":1,"tenant_deployment_id":%d}`, i, i+1), &d)
			commits[i] = time.Now()
		})
		lastCommit := time.Now()
		lat := make([]time.Duration, agents)
		var lastRecv time.Time
		for i := range agents {
			select {
			case at := <-received[i]:
				lat[i] = at.Sub(commits[i])
				if at.After(lastRecv) {
					lastRecv = at
				}
			case <-time.After(60 * time.Second):
				b.Fatalf("agent %d got no push", i)
			}
		}
		// Phase 2, fan-out alone: one transaction changes every tunnel (every tenant's backend
		// moves to another port, each tunnel's version is bumped and notified, as the store does
		// for a domain change), and the clock runs from its commit to the last agent's push.
		pool, err := pgxpool.New(context.Background(), dbURL)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		tx, err := pool.Begin(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it is a no-op
		_, err = tx.Exec(context.Background(), `UPDATE tenant_deployments SET backend_url = replace(backend_url, ':8069', ':8070')`)
		if err == nil {
			_, err = tx.Exec(context.Background(), `WITH t AS (UPDATE tunnels SET config_version = config_version + 1 RETURNING id)
				SELECT pg_notify('sajet_tunnel', id::text) FROM t`)
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
		bulkCommit := time.Now()
		var bulkLast time.Time
		for i := range agents {
			select {
			case at := <-received[i]:
				if at.After(bulkLast) {
					bulkLast = at
				}
			case <-time.After(60 * time.Second):
				b.Fatalf("agent %d got no push after the bulk change", i)
			}
		}

		rss, peak := rssKB(b, cp.p.Cmd.Process.Pid)
		slices.Sort(lat)
		printJSON(b, map[string]any{"bench": "thousand_agents", "agents": agents,
			"bulk_change_commit_to_all_received_ms": ms(bulkLast.Sub(bulkCommit)),
			"cp_rss_mb_before_agents":               rss0 / 1024, "cp_rss_mb_connected": rssConnected / 1024, "cp_rss_mb_after_change": rss / 1024, "cp_peak_rss_mb": peak / 1024,
			"creates_s": lastCommit.Sub(start).Seconds(), "first_create_to_all_received_s": lastRecv.Sub(start).Seconds(),
			"last_commit_to_all_received_ms": ms(lastRecv.Sub(lastCommit)),
			"per_change_p50_ms":              ms(percentile(lat, 0.5)), "per_change_p99_ms": ms(percentile(lat, 0.99)), "per_change_max_ms": ms(lat[len(lat)-1])})
		b.ReportMetric(float64(peak)/1024, "cp-peak-rss-MB")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-commit-to-agent-ms")
		b.ReportMetric(ms(bulkLast.Sub(bulkCommit)), "bulk-commit-to-all-ms")
	}
}

// fakeAgent holds one session and reports when each push with rules arrives; it ACKs all. Like a
// real agent it retries a refused connection after a jittered second (the gateway bounds pending
// handshakes, and 1,000 agents dialling at once exceed it).
func fakeAgent(b testing.TB, addr, token, tunnel string, connected *sync.WaitGroup, received chan<- time.Time) {
	var ys *yamux.Session
	for attempt := 0; ys == nil; attempt++ {
		if attempt == 20 {
			b.Errorf("agent for %s could not connect", tunnel)
			connected.Done()
			return
		}
		if attempt > 0 {
			time.Sleep(time.Duration(800+rand.IntN(400)) * time.Millisecond)
		}
		ys = dialFake(addr, token, tunnel)
	}
	b.Cleanup(func() { ys.Close() })
	connected.Done()
	for {
		s, err := ys.AcceptStream()
		if err != nil {
			return
		}
		m, err := protocol.ReadMessage(s, protocol.MaxFrameSize)
		if err != nil {
			s.Close()
			continue
		}
		if d, ok := m.(protocol.Desired); ok {
			if len(d.Rules) > 0 {
				select {
				case received <- time.Now():
				default:
				}
			}
			_ = protocol.WriteMessage(s, gatewaytest.ACK(d))
		}
		s.Close()
	}
}

// BenchmarkAgentIdleRSS applies 10,000 rules through the real binaries and reads the agent's
// memory once it is idle. Target: ≤ 30 MB.
func BenchmarkAgentIdleRSS(b *testing.B) {
	const domains = 5000 // two rules each: the platform subdomain and the customer's hostname
	for b.Loop() {
		pool, dbURL := storetest.NewDBURL(b)
		certFile, keyFile := gatewaytest.CertificateFiles(b)
		cp := startControlPlane(b, dbURL, proctest.FreeAddr(b), certFile, keyFile)
		token := cp.seed(b)
		parallel(domains, 16, func(i int) {
			var d map[string]any
			cp.call(b, "POST", "/api/domains", fmt.Sprintf(`{"external_domain":"www.tenant-%05d.com","customer_id":1,"tenant_deployment_id":1}`, i), &d)
		})
		n := newNode(b, cp, token)
		p := n.startAgent(b)
		var version int64
		_ = pool.QueryRow(context.Background(), `SELECT config_version FROM tunnels WHERE id = 1`).Scan(&version)
		waitApplied(b, pool, version-1)
		time.Sleep(5 * time.Second) // idle: a few status reports, keepalives and rescans
		rss, peak := rssKB(b, p.Cmd.Process.Pid)
		st := n.status(b)
		printJSON(b, map[string]any{"bench": "agent_idle_rss", "rules": domains * 2, "applied_version": st.Config.AppliedVersion,
			"agent_rss_mb": float64(rss) / 1024, "agent_peak_rss_mb": float64(peak) / 1024})
		b.ReportMetric(float64(rss)/1024, "agent-rss-MB")
	}
}

// dialFake connects and says hello; nil when refused.
func dialFake(addr, token, tunnel string) *yamux.Session {
	ys, reply, err := gatewaytest.Connect(addr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: tunnel,
		Token: token, Tunnel: tunnel})
	if err != nil {
		return nil
	}
	if _, ok := reply.(protocol.Welcome); !ok {
		ys.Close()
		return nil
	}
	return ys
}
