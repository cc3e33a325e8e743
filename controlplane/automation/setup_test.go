package automation_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/jobs"
	"github.com/jeturing/sajet-domains/controlplane/mailer"
	"github.com/jeturing/sajet-domains/controlplane/mailer/mailtest"
	"github.com/jeturing/sajet-domains/controlplane/provisioning"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/clock"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// world is one control plane's automation on a real database, with DNS on loopback, a real SMTP
// server, the fake Cloudflare API and webhook receivers on loopback (allowed by the guard's test
// switch), and a clock the test moves.
type world struct {
	t       testing.TB
	ctx     context.Context
	pool    *pgxpool.Pool
	st      *store.Store
	dns     *dnstest.Server
	dns2    *dnstest.Server // the second resolver, with options.twoResolvers
	cf      *cftest.Server
	mail    *mailtest.Server
	clock   *clock.Manual
	svc     *domains.Service
	auto    *automation.Automation
	client  *river.Client[pgx.Tx]
	routing storetest.Routing
	sealer  *webhooks.Sealer
}

type options struct {
	provisioning bool // Cloudflare records through the fake (and deactivation removes them)
	saas         bool
	smtp         bool
	twoResolvers bool // a second resolver, which can disagree with the first
	mutate       func(*automation.Config)
}

func newWorld(t testing.TB, o options) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), clock: clock.NewManual(time.Now().UTC().Truncate(time.Second))}
	w.pool = storetest.NewDB(t)
	w.st = store.New(w.pool)
	w.routing = storetest.NewRouting(t, w.st, store.Customer{})
	w.dns = dnstest.Start(t)
	w.dns.AddA("impulse-max.sajet.us", "203.0.113.10")
	resolvers := []string{w.dns.Addr()}
	if o.twoResolvers {
		w.dns2 = dnstest.Start(t)
		w.dns2.AddA("impulse-max.sajet.us", "203.0.113.10")
		resolvers = append(resolvers, w.dns2.Addr())
	}
	verifier, err := dnsverify.New(dnsverify.Config{Resolvers: resolvers, DisableCAA: true,
		QueryTimeout: 200 * time.Millisecond, CheckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.mail = mailtest.Start(t)
	key, _ := webhooks.ParseKey(webhooks.NewKey())
	w.sealer, _ = webhooks.NewSealer(key)
	w.cf = cftest.New(t)
	cfg := automation.Config{
		Store: w.st, Clock: w.clock, Logger: slog.New(slog.DiscardHandler), Sealer: w.sealer,
		Guard:         webhooks.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		RetrySchedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		// The periodic sweeps stay out of the way: the tests run them when the clock says so.
		SweepInterval: time.Hour, AlertInterval: time.Hour, HostnameInterval: time.Hour,
	}
	if o.smtp {
		cfg.Mailer = mailer.New(mailer.Config{Host: w.mail.Host, Port: w.mail.Port, TLS: "none", From: "Sajet <dominios@sajet.us>",
			MessageIDDomain: "sajet.us", Timeout: 5 * time.Second})
	}
	var provider *cloudflare.Provider
	if o.provisioning || o.saas {
		provider, err = cloudflare.New(cloudflare.Config{APIURL: w.cf.URL(), APIToken: w.cf.Token, ZoneID: w.cf.ZoneID, CallsPerWindow: -1})
		if err != nil {
			t.Fatal(err)
		}
	}
	if o.saas {
		cfg.Hostnames = provider
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	w.svc = domains.New(w.st, verifier, domains.Config{Zone: "sajet.us", Clock: w.clock, ProviderEnabled: provider != nil,
		SaaSMode: o.saas}, nil)
	cfg.Domains = w.svc
	w.auto = automation.New(cfg)
	sets := []jobs.Set{w.auto}
	jc := jobs.Config{FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond}
	if provider != nil {
		pc := provisioning.Config{Store: w.st, DNS: provider, ReconcileInterval: -1, RetryBase: 20 * time.Millisecond,
			RetryMax: 200 * time.Millisecond, RefreshInterval: time.Hour}
		if o.saas {
			pc.SaaS = provider
		}
		p := provisioning.NewSet(pc)
		w.st.UseOutbox(p)
		sets = append(sets, p)
		jc.RetryPolicy = p.JobsConfig().RetryPolicy
	}
	w.client, err = jobs.New(w.pool, jc, sets...)
	if err != nil {
		t.Fatal(err)
	}
	w.st.UseAutomation(w.auto)
	if err := w.client.Start(w.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.client.Stop(ctx)
	})
	return w
}

// register registers host on the routing's tenant deployment.
func (w *world) register(host string) store.Domain {
	w.t.Helper()
	d, err := w.svc.Register(w.ctx, "test", domains.RegisterInput{ExternalDomain: host, CustomerID: w.routing.Customer.ID,
		TenantDeploymentID: &w.routing.Tenant.ID})
	if err != nil {
		w.t.Fatalf("register %s: %v", host, err)
	}
	return d
}

func (w *world) domain(id int64) store.Domain {
	w.t.Helper()
	d, err := w.st.GetDomain(w.ctx, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// sweep moves the clock by d, runs the check sweep, and waits until the domain's check at the new
// time is recorded (its next check moves past the sweep's lease).
func (w *world) sweep(id int64, d time.Duration) store.Domain {
	w.t.Helper()
	// A check job still being completed would make the new one a duplicate (unique while
	// queued); in production a domain is next due minutes later, here the clock jumps.
	w.settled("check_domain")
	now := w.clock.Advance(d)
	if _, err := w.auto.SweepChecks(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	var got store.Domain
	testwait.For(w.t, 20*time.Second, func() string {
		got = w.domain(id)
		if got.LastCheckedAt != nil && !got.LastCheckedAt.Before(now) {
			return ""
		}
		return fmt.Sprintf("domain %d not checked at %v (last checked %v, next %v)", id, now, got.LastCheckedAt, got.NextCheckAt)
	})
	return got
}

// settled waits until no job of kind is queued or running.
func (w *world) settled(kind string) {
	w.t.Helper()
	testwait.Until(w.t, 20*time.Second, "the "+kind+" jobs to finish", func() bool {
		var n int
		if err := w.pool.QueryRow(w.ctx, `SELECT count(*) FROM river_job WHERE kind = $1
			AND state IN ('available', 'pending', 'running', 'scheduled', 'retryable')`, kind).Scan(&n); err != nil {
			w.t.Fatal(err)
		}
		return n == 0
	})
}

// ackTunnel makes an agent of the tunnel apply its current version (the ACK the gateway records).
func (w *world) ackTunnel() {
	w.t.Helper()
	agents, err := w.st.ListAgents(w.ctx, 0, 10)
	if err != nil {
		w.t.Fatal(err)
	}
	var agentID int64
	if len(agents) == 0 {
		sum := sha256.Sum256([]byte(w.t.Name()))
		a, err := w.st.CreateAgent(w.ctx, "test", w.routing.Tunnel.ID, "pct-105", sum[:])
		if err != nil {
			w.t.Fatal(err)
		}
		agentID = a.ID
	} else {
		agentID = agents[0].ID
	}
	di, err := w.st.GetDesiredIngress(w.ctx, w.routing.Tunnel.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.st.RecordAgentAck(w.ctx, agentID, store.AgentAck{Version: di.Version, OK: true}); err != nil {
		w.t.Fatal(err)
	}
}

// routed reports whether the tunnel's desired rules include host.
func (w *world) routed(host string) bool {
	w.t.Helper()
	di, err := w.st.GetDesiredIngress(w.ctx, w.routing.Tunnel.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range di.Rules {
		if r.Hostname == host {
			return true
		}
	}
	return false
}

// receiver is a webhook endpoint on loopback that verifies every request with its secret.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	// keys verify requests; status answers them (200 when 0).
	keys    [][]byte
	status  int
	header  http.Header
	script  []int // statuses to answer first, in order
	hits    int   // every request, verified or not
	got     []received
	refused int // requests whose signature did not verify
}

type received struct {
	ID, Type string
	Data     map[string]any
	Header   http.Header
	At       time.Time
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.hits++
		ok := false
		for _, k := range r.keys {
			ok = ok || webhooks.Verify(k, req.Header, body, time.Now()) == nil
		}
		if !ok {
			r.refused++
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		r.got = append(r.got, received{ID: req.Header.Get("webhook-id"), Type: p.Type, Data: p.Data, Header: req.Header.Clone(), At: time.Now()})
		for k, v := range r.header {
			rw.Header()[k] = v
		}
		status := r.status
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		if status == http.StatusFound {
			rw.Header().Set("Location", "/elsewhere")
		}
		if status != 0 {
			rw.WriteHeader(status)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) trust(secret string) {
	k, err := webhooks.ParseSecret(secret)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, k)
}

// answer makes the receiver answer status (with header) from now on, after the statuses of
// script.
func (r *receiver) answer(status int, header http.Header, script ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.header, r.script = status, header, script
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

func (r *receiver) events() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// waitEvent waits for a delivered event of type typ and returns it.
func (r *receiver) waitEvent(t testing.TB, typ string) received {
	t.Helper()
	var out received
	testwait.For(t, 20*time.Second, func() string {
		var types []string
		for _, e := range r.events() {
			if e.Type == typ {
				out = e
				return ""
			}
			types = append(types, e.Type)
		}
		return fmt.Sprintf("no %s delivered (got %v)", typ, types)
	})
	return out
}

// endpoint registers an endpoint at the receiver for the routing's customer and trusts its secret.
func (w *world) endpoint(r *receiver, types ...string) store.WebhookEndpoint {
	w.t.Helper()
	cust := w.routing.Customer.ID
	ep, secret, err := w.auto.CreateEndpoint(w.ctx, "test", automation.EndpointInput{CustomerID: &cust, URL: r.srv.URL + "/hooks",
		EventTypes: types, Enabled: true})
	if err != nil {
		w.t.Fatal(err)
	}
	r.trust(secret)
	return ep
}

// subjects waits for n messages and returns their decoded subjects, with the recipient and
// language: "to|lang|subject".
func (w *world) subjects(n int) []string {
	w.t.Helper()
	msgs := w.mail.Wait(w.t, n, 20*time.Second)
	var out []string
	for _, m := range msgs {
		pm, err := m.Parsed()
		if err != nil {
			w.t.Fatal(err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, strings.Join(m.To, ",")+"|"+pm.Header.Get("Content-Language")+"|"+subject)
	}
	return out
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
