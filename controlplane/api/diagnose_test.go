package api_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
)

// withDiagnose gives the API a real diagnostics service (its DNS on a loopback resolver; no
// Cloudflare, no gateway) with the given limits.
func withDiagnose(t *testing.T, cfg diagnose.Config) func(*options) {
	return func(o *options) {
		o.configure = func(c *api.Config) {
			srv := dnstest.Start(t)
			v, err := dnsverify.New(dnsverify.Config{Resolvers: []string{srv.Addr()}, QueryTimeout: 300 * time.Millisecond, CheckTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			cfg.QueryTimeout, cfg.AuthPort = 300*time.Millisecond, "9"
			c.Diagnose = diagnose.New(c.Store, v, nil, nil, cfg)
		}
	}
}

// Diagnosing a domain is allowed exactly to whoever may read it: a customer token for its own
// domains, an admin for any; another customer's domain is a 404 like every other route.
func TestDiagnoseIsAllowedToWhoMayReadTheDomain(t *testing.T) {
	t.Parallel()
	b := setup(t, withDiagnose(t, diagnose.Config{DomainBurst: -1}))
	a, c := b.customer("A", "basic"), b.customer("B", "basic")
	tokA, tokB := b.customerToken(a), b.customerToken(c)
	b.must(201, "POST", "/api/domains", tokA, map[string]any{"external_domain": "www.alpha.com"})

	if r := b.do("GET", "/api/domains/www.alpha.com/diagnose", tokB, nil); r.status != 404 {
		t.Errorf("another customer: %d %s, want 404", r.status, r.body)
	}
	if r := b.do("GET", "/api/domains/www.alpha.com/diagnose", "", nil); r.status != 401 {
		t.Errorf("no token: %d, want 401", r.status)
	}
	for _, tok := range []string{tokA, b.admin} {
		m := b.must(200, "GET", "/api/domains/www.alpha.com/diagnose", tok, nil)
		if m["domain"] != "www.alpha.com" || m["language"] != "es" || m["works"] != false || len(m["parts"].([]any)) != 8 {
			t.Errorf("report %v", m)
		}
	}
	b.lang = "en-GB,en;q=0.9"
	m := b.must(200, "GET", "/api/domains/www.alpha.com/diagnose", tokA, nil)
	if m["language"] != "en" || !strings.Contains(m["summary"].(string), "does not work") {
		t.Errorf("an English report: %v", m["summary"])
	}
}

// A domain diagnosed too often gets 429 with Retry-After; the budget is per domain.
func TestDiagnoseIsRateLimitedPerDomain(t *testing.T) {
	t.Parallel()
	b := setup(t, withDiagnose(t, diagnose.Config{DomainBurst: 1, DomainInterval: time.Hour}))
	id := b.customer("A", "basic")
	for _, h := range []string{"www.alpha.com", "shop.alpha.com"} {
		b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": h, "customer_id": id})
	}
	b.must(200, "GET", "/api/domains/www.alpha.com/diagnose", b.admin, nil)
	r := b.do("GET", "/api/domains/www.alpha.com/diagnose", b.admin, nil)
	if r.status != 429 || r.json(t)["code"] != "diagnose_rate_limited" || r.header.Get("Retry-After") == "" {
		t.Errorf("a second report: %d %s (Retry-After %q), want 429 diagnose_rate_limited", r.status, r.body, r.header.Get("Retry-After"))
	}
	b.must(200, "GET", "/api/domains/shop.alpha.com/diagnose", b.admin, nil)
}

func TestDiagnoseWithoutTheServiceIsUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.customer("A", "basic")
	b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.alpha.com", "customer_id": id})
	if r := b.do("GET", "/api/domains/www.alpha.com/diagnose", b.admin, nil); r.status != 503 || r.json(t)["code"] != "diagnose_unavailable" {
		t.Errorf("%d %s, want 503 diagnose_unavailable", r.status, r.body)
	}
}

// /readyz checks the database and whatever else the control plane depends on, and names the part
// that is not ready.
func TestReadyzNamesThePartThatIsNotReady(t *testing.T) {
	t.Parallel()
	var gatewayErr error
	b := setup(t, func(o *options) {
		o.configure = func(c *api.Config) {
			c.Ready = map[string]func() error{"agent_gateway": func() error { return gatewayErr }}
		}
	})
	m := b.must(200, "GET", "/readyz", "", nil)
	checks := m["checks"].(map[string]any)
	if m["status"] != "pass" || checks["database"] != "ok" || checks["agent_gateway"] != "ok" {
		t.Errorf("ready: %v", m)
	}
	gatewayErr = errors.New("not accepting agent connections")
	m = b.must(503, "GET", "/readyz", "", nil)
	checks = m["checks"].(map[string]any)
	if m["status"] != "fail" || checks["database"] != "ok" || checks["agent_gateway"] != "not accepting agent connections" ||
		len(m["failing"].([]any)) != 1 || m["failing"].([]any)[0] != "agent_gateway" {
		t.Errorf("not ready: %v", m)
	}
	b.pool.Close() // the database is gone
	m = b.must(503, "GET", "/readyz", "", nil)
	if checks := m["checks"].(map[string]any); checks["database"] != "unreachable" {
		t.Errorf("without the database: %v", m)
	}
}
