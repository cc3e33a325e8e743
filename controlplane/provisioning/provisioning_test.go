package provisioning_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/provisioning"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/testwait"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const tunnelUUID = storetest.TunnelUUID

type bundle struct {
	t        testing.TB
	pool     *pgxpool.Pool
	store    *store.Store
	cf       *cftest.Server
	svc      *domains.Service
	customer int64
	tenant   int64
}

func setup(t testing.TB) *bundle {
	t.Helper()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	r := storetest.NewRouting(t, st, store.Customer{Plan: "enterprise"})
	svc := domains.New(st, nil, domains.Config{Zone: "sajet.us", ProviderEnabled: true}, nil)
	return &bundle{t: t, pool: pool, store: st, cf: cftest.New(t), svc: svc, customer: r.Customer.ID, tenant: r.Tenant.ID}
}

// provisioner starts a provisioner (one "control plane process") on the bundle's database.
func (b *bundle) provisioner(mutate ...func(*provisioning.Config)) *provisioning.Provisioner {
	b.t.Helper()
	p := b.newProvisioner(mutate...)
	if err := p.Start(context.Background()); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Stop(ctx)
	})
	return p
}

// provider is a real provider on the fake; callsPerWindow as in cloudflare.Config.
func (b *bundle) provider(callsPerWindow int) *cloudflare.Provider {
	b.t.Helper()
	cf, err := cloudflare.New(cloudflare.Config{APIURL: b.cf.URL(), APIToken: b.cf.Token, ZoneID: b.cf.ZoneID, CallsPerWindow: callsPerWindow})
	if err != nil {
		b.t.Fatal(err)
	}
	return cf
}

func (b *bundle) newProvisioner(mutate ...func(*provisioning.Config)) *provisioning.Provisioner {
	b.t.Helper()
	cf := b.provider(0)
	cfg := provisioning.Config{
		Store: b.store, DNS: cf, Logger: slog.New(slog.DiscardHandler),
		ReconcileInterval: -1, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := provisioning.New(b.pool, cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	b.store.UseOutbox(p)
	return p
}

func (b *bundle) register(host string) store.Domain {
	b.t.Helper()
	d, err := b.svc.Register(context.Background(), "test", domains.RegisterInput{
		ExternalDomain: host, CustomerID: b.customer, TenantDeploymentID: &b.tenant,
	})
	if err != nil {
		b.t.Fatalf("register %s: %v", host, err)
	}
	return d
}

// waitFor polls the domain until cond holds; the bound is generous and is not what is tested.
func (b *bundle) waitFor(id int64, what string, cond func(store.Domain, error) bool) store.Domain {
	b.t.Helper()
	var d store.Domain
	testwait.For(b.t, 30*time.Second, func() string {
		var err error
		if d, err = b.store.GetDomain(context.Background(), id); cond(d, err) {
			return ""
		}
		return fmt.Sprintf("domain %d never became %s (last: err=%v last_error=%v)", id, what, err, d.LastError)
	})
	return d
}

func configured(d store.Domain, err error) bool { return err == nil && d.CloudflareConfigured }

func strOrNil(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func (b *bundle) ourRecords(name string) []cftest.Record {
	var out []cftest.Record
	for _, r := range b.cf.Records() {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

func TestCreateThenDeleteConverges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.provisioner()
	d := b.register("www.impulse-max.com")
	d = b.waitFor(d.ID, "configured", configured)

	recs := b.ourRecords("impulse-max.sajet.us")
	if len(recs) != 1 {
		t.Fatalf("%d records for impulse-max.sajet.us, want 1", len(recs))
	}
	r := recs[0]
	if r.Type != "CNAME" || r.Content != tunnelUUID+".cfargotunnel.com" || !r.Proxied {
		t.Errorf("record %+v, want a proxied CNAME to the tunnel", r)
	}
	if id, ours := cloudflare.ParseComment(r.Comment); !ours || id != d.ID {
		t.Errorf("record comment %q does not mark it as ours for domain %d", r.Comment, d.ID)
	}
	if d.CloudflareDNSRecordID == nil || *d.CloudflareDNSRecordID != r.ID {
		t.Errorf("cloudflare_dns_record_id %v, want %s", strOrNil(d.CloudflareDNSRecordID), r.ID)
	}

	if err := b.svc.Delete(context.Background(), "test", d); err != nil {
		t.Fatal(err)
	}
	b.waitFor(d.ID, "removed", func(_ store.Domain, err error) bool { return err == store.ErrNotFound })
	if recs := b.ourRecords("impulse-max.sajet.us"); len(recs) != 0 {
		t.Errorf("records left after delete: %+v", recs)
	}
}

func TestRetriesThrough5xxAnd429WithoutDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cf.FailNext(3, 502, 10000, "Bad gateway")
	b.provisioner()
	d := b.register("www.impulse-max.com")
	b.waitFor(d.ID, "configured after a 5xx burst", configured)
	if n := len(b.ourRecords("impulse-max.sajet.us")); n != 1 {
		t.Errorf("%d records after 5xx retries, want 1", n)
	}

	b.cf.RateLimit(1, time.Second)
	start := time.Now()
	d2 := b.register("www.techeels.io")
	b.waitFor(d2.ID, "configured after a 429", configured)
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("configured %v after a 429 with retry-after 1s: the wait was not honoured", waited)
	}
	if n := len(b.ourRecords("techeels.sajet.us")); n != 1 {
		t.Errorf("%d records after 429, want 1", n)
	}
}

func TestUncertainFailureAdoptsInsteadOfDuplicating(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.cf.FailAfterApply(1) // the record is created but the answer is an error
	b.provisioner()
	d := b.register("www.impulse-max.com")
	b.waitFor(d.ID, "configured", configured)
	if n := len(b.ourRecords("impulse-max.sajet.us")); n != 1 {
		t.Errorf("%d records after an uncertain create, want 1 (adopted)", n)
	}
}

func TestForeignRecordIsNeverTouched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	foreign := b.cf.AddRecord(cftest.Record{Type: "A", Name: "impulse-max.sajet.us", Content: "192.0.2.1", Comment: "hand-made"})
	b.provisioner()
	d := b.register("www.impulse-max.com")
	d = b.waitFor(d.ID, "failed", func(d store.Domain, err error) bool {
		return err == nil && d.LastError != nil && strings.Contains(d.LastError.EN, "not managed by Sajet")
	})
	if d.CloudflareConfigured {
		t.Error("cloudflare_configured is true beside a foreign record")
	}
	recs := b.ourRecords("impulse-max.sajet.us")
	if len(recs) != 1 || recs[0].ID != foreign.ID || recs[0].Content != "192.0.2.1" {
		t.Errorf("the foreign record changed: %+v", recs)
	}
	steps := b.svc.Steps(d)
	if steps[2].Name != "cloudflare" || steps[2].Status != domains.StepFailed {
		t.Errorf("cloudflare step %+v, want failed with the reason", steps[2])
	}
}

// The control plane commits the domain (and its job) and dies before working it: the next process
// creates the record.
func TestWorkQueuedBeforeACrashIsFinishedAfterRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.newProvisioner() // outbox only: this "process" dies before starting its workers
	d := b.register("www.impulse-max.com")
	time.Sleep(100 * time.Millisecond)
	if got, _ := b.store.GetDomain(context.Background(), d.ID); got.CloudflareConfigured || len(b.cf.Records()) != 0 {
		t.Fatal("work happened without a running worker")
	}
	b.provisioner() // the restarted process
	b.waitFor(d.ID, "configured after restart", configured)
}

func TestReconcilerRepairsAndRemovesOrphans(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.provisioner(func(c *provisioning.Config) { c.OrphanGrace = time.Nanosecond })
	d := b.register("www.impulse-max.com")
	d = b.waitFor(d.ID, "configured", configured)
	b.cf.DeleteRecordBehindBack(*d.CloudflareDNSRecordID)
	orphan := b.cf.AddRecord(cftest.Record{Type: "CNAME", Name: "gone.sajet.us", Content: tunnelUUID + ".cfargotunnel.com",
		Proxied: true, Comment: cloudflare.Comment(999999)})
	foreign := b.cf.AddRecord(cftest.Record{Type: "CNAME", Name: "ops.sajet.us", Content: "example.net", Comment: "ops"})

	// First pass notes the orphan; the second removes it once its grace has passed.
	for range 2 {
		if err := p.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// A reconcile may be between its Cloudflare call and its audit row when the zone looks
	// converged (a periodic pass runs beside the ones here), so the audit is waited for too.
	testwait.For(t, 30*time.Second, func() string {
		names := map[string]bool{}
		for _, r := range b.cf.Records() {
			names[r.ID] = true
			names[r.Name] = true
		}
		var actions []string
		rows, _ := b.pool.Query(context.Background(), `SELECT action FROM audit_log WHERE actor = 'reconciler' ORDER BY id`)
		for rows.Next() {
			var a string
			_ = rows.Scan(&a)
			actions = append(actions, a)
		}
		joined := strings.Join(actions, ",")
		audited := strings.Contains(joined, "cloudflare.record.recreated") && strings.Contains(joined, "cloudflare.record.orphan_removed")
		if names["impulse-max.sajet.us"] && !names[orphan.ID] && names[foreign.ID] && audited {
			return ""
		}
		why := fmt.Sprintf("zone not converged or not audited: records %+v, audit %v", b.cf.Records(), actions)
		_ = p.Reconcile(context.Background())
		return why
	})
}

// Two control planes on one database: every record is created exactly once.
func TestTwoProcessesNeverCreateARecordTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.provisioner()
	b.provisioner()
	var ids []int64
	for i := range 20 {
		ids = append(ids, b.register(fmt.Sprintf("shop%d.impulse-max.com", i)).ID)
	}
	for _, id := range ids {
		b.waitFor(id, "configured", configured)
	}
	creates := 0
	for _, c := range b.cf.Calls() {
		if c.Method == "POST" && strings.HasSuffix(c.Path, "/dns_records") && c.Status < 300 {
			creates++
		}
	}
	if creates != 20 || len(b.cf.Records()) != 20 {
		t.Errorf("%d successful creates and %d records for 20 domains, want 20 and 20", creates, len(b.cf.Records()))
	}
}

func TestSaaSModeCreatesCustomHostnameAndFollowsItToActive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.svc = domains.New(b.store, nil, domains.Config{Zone: "sajet.us", ProviderEnabled: true, SaaSMode: true}, nil)
	b.provisioner(func(c *provisioning.Config) {
		c.SaaS = c.DNS.(provisioning.SaaS) // the provider, before New wraps it
		c.RefreshInterval = 50 * time.Millisecond
	})
	d := b.register("www.impulse-max.com")
	d = b.waitFor(d.ID, "with a custom hostname", func(d store.Domain, err error) bool { return err == nil && d.CustomHostnameID != nil })
	if d.SSLStatus == "active" {
		t.Fatalf("ssl_status active before Cloudflare said so")
	}
	var txt []string
	for _, in := range b.svc.Instructions(d) {
		if in.Type == "TXT" {
			txt = append(txt, in.Record)
		}
	}
	if !strings.Contains(strings.Join(txt, " "), "_cf-custom-hostname.www.impulse-max.com") {
		t.Errorf("instructions lack Cloudflare's ownership TXT record: %v", txt)
	}
	if st := b.svc.Steps(d); st[len(st)-2].Name != "custom_hostname" || st[len(st)-2].Status != domains.StepPending {
		t.Errorf("custom_hostname step %+v, want pending", st[len(st)-2])
	}

	b.cf.SetCustomHostnameStatus("www.impulse-max.com", "active", "active")
	d = b.waitFor(d.ID, "active in Cloudflare", func(d store.Domain, err error) bool {
		return err == nil && d.SSLStatus == "active" && d.CustomHostnameStatus != nil && *d.CustomHostnameStatus == "active"
	})
	if err := b.svc.Delete(context.Background(), "test", d); err != nil {
		t.Fatal(err)
	}
	b.waitFor(d.ID, "removed", func(_ store.Domain, err error) bool { return err == store.ErrNotFound })
	if chs := b.cf.CustomHostnames(); len(chs) != 0 {
		t.Errorf("custom hostnames left after delete: %+v", chs)
	}
}

// Without SaaS mode the domain says plainly that Cloudflare will refuse the customer's CNAME.
func TestWithoutSaaSModeTheDomainWarnsAbout1014(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.register("www.impulse-max.com")
	w := i18n.Join(" ", b.svc.Warnings(d)...).EN
	if !strings.Contains(w, "1014") || !strings.Contains(w, "1001") || !strings.Contains(w, "--cloudflare-saas") {
		t.Errorf("warnings %q do not explain the cross-account CNAME refusal", w)
	}
}
