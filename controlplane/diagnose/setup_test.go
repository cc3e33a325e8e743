package diagnose_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare"
	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/diagnose/zonetest"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const (
	host       = "www.impulse-max.com"
	platform   = "impulse-max.sajet.us"
	tunnelUUID = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
	tunnelHost = tunnelUUID + ".cfargotunnel.com"
)

// world is one test's DNS, Cloudflare and database, set up like a domain that works:
//
//	com.              127.0.0.11          delegates impulse-max.com (NS ns1, ns2 + glue, and its DS)
//	impulse-max.com.  127.0.0.12, .13     signed; www CNAME impulse-max.sajet.us.
//	sajet.us.         127.0.0.14          impulse-max.sajet.us A 192.0.2.10
//	resolver          127.0.0.53          iterates from com. and sajet.us.
//
// Cloudflare (the fake) holds our proxied CNAME to the tunnel and an active custom hostname.
type world struct {
	net      *zonetest.Network
	com      *zonetest.Zone
	child    *zonetest.Zone
	sajet    *zonetest.Zone
	resolver *zonetest.Resolver
	cf       *cftest.Server
	provider *cloudflare.Provider
	st       *store.Store
	domain   store.Domain
	cfg      diagnose.Config
	prober   diagnose.Prober
	verifier *dnsverify.Verifier
}

type option func(*world)

// withoutDS delegates the child before it is signed: DNSSEC is off.
func withoutDS(w *world) { w.child.Unsign() }

func newWorld(t testing.TB, opts ...option) *world {
	t.Helper()
	w := &world{net: zonetest.New(t)}
	w.com = w.net.Zone("com", "127.0.0.11")
	w.child = w.net.Zone("impulse-max.com", "127.0.0.12", "127.0.0.13")
	w.child.Add(host + ". 300 IN CNAME " + platform + ".")
	w.child.Sign()
	w.sajet = w.net.Zone("sajet.us", "127.0.0.14")
	w.sajet.Add(platform + ". 300 IN A 192.0.2.10")
	for _, o := range opts {
		o(w)
	}
	w.com.Delegate(w.child)
	w.resolver = w.net.Resolver("127.0.0.53", w.com, w.sajet)

	w.cf = cftest.New(t)
	p, err := cloudflare.New(cloudflare.Config{APIURL: w.cf.URL(), APIToken: w.cf.Token, ZoneID: w.cf.ZoneID, HTTPClient: w.cf.Client()})
	if err != nil {
		t.Fatal(err)
	}
	w.provider = p

	w.st = store.New(storetest.NewDB(t))
	ctx := context.Background()
	r := storetest.NewRouting(t, w.st, store.Customer{})
	w.domain, err = w.st.InsertDomain(ctx, store.NewDomain{CustomerID: r.Customer.ID, TenantDeploymentID: &r.Tenant.ID,
		ExternalDomain: host, Zone: "sajet.us", Subdomains: []string{"impulse-max"}, Token: "jeturing-verify-0123",
		CreatedBy: "t", PlanQuota: map[string]int{"basic": 10}})
	if err != nil {
		t.Fatal(err)
	}
	rec := w.cf.AddRecord(cftest.Record{Type: "CNAME", Name: platform, Content: tunnelHost, Proxied: true, TTL: 1,
		Comment: cloudflare.Comment(w.domain.ID)})
	if err := w.st.MarkCloudflareConfigured(ctx, w.domain.ID, rec.ID); err != nil {
		t.Fatal(err)
	}
	ch := w.cf.AddCustomHostname(cftest.CustomHostname{Hostname: host, Status: "active", SSLStatus: "active"})
	if err := w.st.RecordCustomHostname(ctx, w.domain.ID, store.CustomHostnameState{ID: ch.ID, Status: "active", SSLStatus: "active"}); err != nil {
		t.Fatal(err)
	}
	w.verifier, err = dnsverify.New(dnsverify.Config{Resolvers: []string{w.resolver.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = diagnose.Config{AuthPort: strconv.Itoa(w.net.Port()), SaaS: true, DomainBurst: -1}
	return w
}

// report diagnoses the world's domain in English unless lang says otherwise.
func (w *world) report(t testing.TB, lang ...i18n.Lang) diagnose.Report {
	t.Helper()
	d, err := w.st.GetDomain(context.Background(), w.domain.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cf diagnose.Cloudflare
	if w.provider != nil {
		cf = w.provider
	}
	svc := diagnose.New(w.st, w.verifier, cf, w.prober, w.cfg)
	l := i18n.EN
	if len(lang) > 0 {
		l = lang[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := svc.Diagnose(ctx, d, l)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func part(t *testing.T, r diagnose.Report, name string) diagnose.Part {
	t.Helper()
	for _, p := range r.Parts {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("the report has no part %q", name)
	return diagnose.Part{}
}

// expect checks a part's verdict and that its sentences say what they must (each want is a
// substring of the message, the fix or a detail).
func expect(t *testing.T, r diagnose.Report, name string, verdict diagnose.Verdict, want ...string) diagnose.Part {
	t.Helper()
	p := part(t, r, name)
	all := p.Message + "\n" + p.Fix + "\n" + strings.Join(p.Details, "\n")
	if p.Verdict != verdict {
		t.Errorf("%s: verdict %s, want %s\n%s", name, p.Verdict, verdict, all)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: %q is not said:\n%s", name, w, all)
		}
	}
	return p
}
