package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/automation"
	"github.com/jeturing/sajet-domains/controlplane/jobs"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/internal/clock"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// withAutomation gives the API the automation on a running River client, with webhooks on (a
// fresh key) and loopback receivers allowed by the guard's test switch unless noKey.
func withAutomation(noKey bool) func(*options) {
	return func(o *options) {
		o.configure = func(c *api.Config) {
			ac := automation.Config{Store: c.Store, Domains: c.Domains,
				Guard:         webhooks.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
				RetrySchedule: []time.Duration{20 * time.Millisecond}, SweepInterval: time.Hour, AlertInterval: time.Hour}
			if !noKey {
				key, _ := webhooks.ParseKey(webhooks.NewKey())
				ac.Sealer, _ = webhooks.NewSealer(key)
			}
			c.Automation = automation.New(ac)
			c.Store.UseAutomation(c.Automation)
		}
	}
}

// startJobs starts the River client of b's automation.
func startJobs(t *testing.T, b *bundle, a *automation.Automation) {
	t.Helper()
	client, err := jobs.New(b.pool, jobs.Config{FetchCooldown: 5 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond}, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
}

func setupAutomation(t *testing.T, noKey bool) (*bundle, *automation.Automation) {
	t.Helper()
	var a *automation.Automation
	b := setup(t, withAutomation(noKey), func(o *options) {
		inner := o.configure
		o.configure = func(c *api.Config) { inner(c); a = c.Automation }
	})
	startJobs(t, b, a)
	return b, a
}

// hook is a receiver on loopback that records what it gets.
type hook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.reqs, h.body = append(h.reqs, r), append(h.body, b)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() ([]*http.Request, [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.reqs...), append([][]byte(nil), h.body...)
}

// A customer's endpoints: the secret shown once, signed deliveries in the log, rotation, retry and
// recovery, deletion; another customer sees none of it.
func TestWebhookEndpointsThroughTheAPI(t *testing.T) {
	t.Parallel()
	b, _ := setupAutomation(t, false)
	alice, bob := b.customer("alice", "basic"), b.customer("bob", "basic")
	aliceTok, bobTok := b.customerToken(alice), b.customerToken(bob)
	h := newHook(t)

	ep := b.must(201, "POST", "/api/webhook-endpoints", aliceTok, map[string]any{"url": h.srv.URL + "/in",
		"event_types": []string{"domain.misconfigured", "webhook.test"}, "description": "ERP"})
	secret, _ := ep["secret"].(string)
	if !strings.HasPrefix(secret, webhooks.SecretPrefix) || ep["customer_id"].(float64) != float64(alice) || ep["enabled"] != true {
		t.Fatalf("created %v", ep)
	}
	path := fmt.Sprintf("/api/webhook-endpoints/%d", int64(ep["id"].(float64)))
	if got := b.must(200, "GET", path, aliceTok, nil); got["secret"] != nil {
		t.Errorf("the secret was shown again: %v", got)
	}
	// Another customer: 404 everywhere, an empty list.
	for _, r := range []struct{ method, path string }{{"GET", path}, {"DELETE", path}, {"POST", path + "/test"},
		{"GET", path + "/deliveries"}, {"POST", path + "/rotate-secret"}} {
		var body any
		if r.method == "POST" {
			body = map[string]any{}
		}
		if res := b.do(r.method, r.path, bobTok, body); res.status != 404 {
			t.Errorf("bob %s %s: %d %s", r.method, r.path, res.status, res.body)
		}
	}
	if res := b.do("PATCH", path, bobTok, map[string]any{"enabled": false}); res.status != 404 {
		t.Errorf("bob PATCH: %d", res.status)
	}
	if l := b.must(200, "GET", "/api/webhook-endpoints", bobTok, nil); len(l["items"].([]any)) != 0 {
		t.Errorf("bob lists %v", l)
	}
	if l := b.must(200, "GET", "/api/webhook-endpoints", b.admin, nil); len(l["items"].([]any)) != 1 {
		t.Errorf("admin lists %v", l)
	}

	// A test event arrives signed with the secret; its delivery and attempt are in the log.
	test := b.must(202, "POST", path+"/test", aliceTok, nil)
	key, _ := webhooks.ParseSecret(secret)
	testwait.Until(t, 20*time.Second, "the test event", func() bool { r, _ := h.got(); return len(r) == 1 })
	reqs, bodies := h.got()
	if err := webhooks.Verify(key, reqs[0].Header, bodies[0], time.Now()); err != nil || reqs[0].Header.Get("webhook-id") != test["webhook_id"] {
		t.Fatalf("test event not signed with the secret (%v) or id %q != %v", err, reqs[0].Header.Get("webhook-id"), test["webhook_id"])
	}
	var dpath string
	testwait.For(t, 20*time.Second, func() string {
		l := b.must(200, "GET", path+"/deliveries", aliceTok, nil)
		items := l["items"].([]any)
		if len(items) == 1 && items[0].(map[string]any)["status"] == "succeeded" {
			dpath = fmt.Sprintf("/api/webhook-deliveries/%d", int64(items[0].(map[string]any)["id"].(float64)))
			return ""
		}
		return fmt.Sprintf("deliveries %v", items)
	})
	d := b.must(200, "GET", dpath, aliceTok, nil)
	log := d["attempt_log"].([]any)
	if len(log) != 1 || log[0].(map[string]any)["status_code"].(float64) != 204 || d["webhook_id"] != test["webhook_id"] {
		t.Errorf("delivery %v", d)
	}
	if res := b.do("GET", dpath, bobTok, nil); res.status != 404 {
		t.Errorf("bob reads alice's delivery: %d", res.status)
	}
	b.must(202, "POST", dpath+"/retry", aliceTok, nil)
	testwait.Until(t, 20*time.Second, "the retried delivery", func() bool { r, _ := h.got(); return len(r) == 2 })
	if reqs, _ := h.got(); reqs[1].Header.Get("webhook-id") != test["webhook_id"] {
		t.Error("a retry changed the webhook-id")
	}
	rec := b.must(200, "POST", path+"/recover", aliceTok, map[string]any{"since": time.Now().Add(-time.Hour)})
	if rec["recovered"].(float64) != 0 {
		t.Errorf("recovered %v with nothing failed", rec)
	}

	// Rotation: a new secret, shown once; both sign during the grace.
	rot := b.must(200, "POST", path+"/rotate-secret", aliceTok, map[string]any{"grace_period_seconds": 3600})
	if rot["secret"] == secret || !strings.HasPrefix(rot["secret"].(string), webhooks.SecretPrefix) || rot["signing_secrets"].(float64) != 2 {
		t.Errorf("rotated %v", rot)
	}
	upd := b.must(200, "PATCH", path, aliceTok, map[string]any{"enabled": false, "event_types": nil})
	if upd["enabled"] != false || upd["disabled_reason"] != "manual" || len(upd["event_types"].([]any)) != 0 {
		t.Errorf("patched %v", upd)
	}
	b.must(204, "DELETE", path, aliceTok, nil)
	if res := b.do("GET", path, aliceTok, nil); res.status != 404 {
		t.Errorf("after delete: %d", res.status)
	}
}

// Bad input is refused with a problem in the caller's language and changes nothing.
func TestWebhookEndpointInputIsRefused(t *testing.T) {
	t.Parallel()
	b, _ := setupAutomation(t, false)
	alice := b.customer("alice", "basic")
	tok := b.customerToken(alice)
	h := newHook(t)
	for _, c := range []struct {
		body   any
		status int
		code   string
	}{
		{map[string]any{"url": "https://10.1.2.3/hook"}, 422, "invalid_url"},
		{map[string]any{"url": "https://[::ffff:169.254.169.254]/x"}, 422, "invalid_url"},
		{map[string]any{"url": "ftp://hooks.example.com/"}, 422, "invalid_url"},
		{map[string]any{"url": h.srv.URL, "event_types": []string{"domain.exploded"}}, 422, "invalid_event_types"},
		{map[string]any{"url": h.srv.URL, "description": strings.Repeat("x", 501)}, 422, ""},
		{map[string]any{"url": h.srv.URL, "colour": "red"}, 422, ""},
		{map[string]any{"url": h.srv.URL, "customer_id": alice + 100}, 404, "customer_not_found"},
		{`{"url":"` + strings.Repeat("a", 20<<10) + `"}`, 413, ""},
	} {
		res := b.do("POST", "/api/webhook-endpoints", tok, c.body)
		if res.status != c.status || !strings.HasPrefix(res.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("POST %.80v: %d %s, want %d problem", c.body, res.status, res.body, c.status)
			continue
		}
		if m := res.json(t); c.code != "" && m["code"] != c.code {
			t.Errorf("POST %.80v: code %v, want %s", c.body, m["code"], c.code)
		}
	}
	b.lang = "en"
	m := b.do("POST", "/api/webhook-endpoints", tok, map[string]any{"url": "https://10.1.2.3/x"}).json(t)
	b.lang = ""
	es := b.do("POST", "/api/webhook-endpoints", tok, map[string]any{"url": "https://10.1.2.3/x"}).json(t)
	if !strings.Contains(m["detail"].(string), "not accepted") || !strings.Contains(es["detail"].(string), "no se acepta") {
		t.Errorf("sentences: en %q, es %q", m["detail"], es["detail"])
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_endpoints`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d endpoints stored after refusals (%v)", n, err)
	}
	ep := b.must(201, "POST", "/api/webhook-endpoints", tok, map[string]any{"url": h.srv.URL})
	path := fmt.Sprintf("/api/webhook-endpoints/%d", int64(ep["id"].(float64)))
	for _, body := range []map[string]any{{}, {"url": nil}, {"url": "https://192.168.1.1/"}, {"event_types": []string{"nope"}}} {
		if res := b.do("PATCH", path, tok, body); res.status != 422 {
			t.Errorf("PATCH %v: %d %s", body, res.status, res.body)
		}
	}
	for _, body := range []map[string]any{{"grace_period_seconds": 8 * 24 * 3600}, {"grace_period_seconds": -1}} {
		if res := b.do("POST", path+"/rotate-secret", tok, body); res.status != 422 {
			t.Errorf("rotate %v: %d", body, res.status)
		}
	}
	if res := b.do("POST", path+"/recover", tok, map[string]any{"since": time.Now().Add(-40 * 24 * time.Hour)}); res.status != 422 {
		t.Errorf("recover over 30 days: %d", res.status)
	}
	if got := b.must(200, "GET", path, tok, nil); got["url"] != h.srv.URL {
		t.Errorf("a refused PATCH changed the endpoint: %v", got)
	}
	// A customer cannot see or make admin-wide endpoints; an admin can.
	adm := b.must(201, "POST", "/api/webhook-endpoints", b.admin, map[string]any{"url": h.srv.URL})
	if adm["customer_id"] != nil {
		t.Errorf("admin endpoint %v", adm)
	}
	if res := b.do("GET", fmt.Sprintf("/api/webhook-endpoints/%d", int64(adm["id"].(float64))), tok, nil); res.status != 404 {
		t.Errorf("a customer reads an admin-wide endpoint: %d", res.status)
	}
	if l := b.must(200, "GET", "/api/webhook-endpoints?admin_wide=true", tok, nil); len(l["items"].([]any)) != 0 {
		t.Errorf("a customer lists admin-wide endpoints: %v", l)
	}
}

// Without --webhook-secret-key, webhooks answer 503 with a sentence saying what to give.
func TestWebhooksOffWithoutAKey(t *testing.T) {
	t.Parallel()
	b, _ := setupAutomation(t, true)
	res := b.do("POST", "/api/webhook-endpoints", b.admin, map[string]any{"url": "https://hooks.example.com/"})
	if res.status != 503 || res.json(t)["code"] != "webhooks_disabled" || !strings.Contains(string(res.body), "--webhook-secret-key") {
		t.Errorf("%d %s", res.status, res.body)
	}
}

// Alerts: a customer sees its own (not another's, not platform-wide ones), with filters and
// pagination; they are on the domain and counted in the stats.
func TestAlertsAreListedPerCustomer(t *testing.T) {
	t.Parallel()
	b, _ := setupAutomation(t, false)
	alice, bob := b.customer("alice", "basic"), b.customer("bob", "basic")
	aliceTok, bobTok := b.customerToken(alice), b.customerToken(bob)
	d := b.must(201, "POST", "/api/domains", aliceTok, map[string]any{"external_domain": "www.alice-shop.com"})
	did := int64(d["id"].(float64))
	ctx := context.Background()
	msg := `{"es":"el DNS ya no apunta a la plataforma","en":"the DNS no longer points to the platform"}`
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO alerts (kind, severity, domain_id, customer_id, hostname, message, opened_at, last_seen_at)
			VALUES ('domain_misconfigured', 'warning', %d, %d, 'www.alice-shop.com', '%s', now(), now())`, did, alice, msg),
		fmt.Sprintf(`INSERT INTO alerts (kind, severity, domain_id, customer_id, hostname, message, opened_at, last_seen_at, resolved_at)
			VALUES ('dns_propagation_error', 'warning', %d, %d, 'www.alice-shop.com', '%s', now(), now(), now())`, did, alice, msg),
		fmt.Sprintf(`INSERT INTO alerts (kind, severity, message, opened_at, last_seen_at) VALUES ('checks_stalled', 'critical', '%s', now(), now())`, msg),
	} {
		if _, err := b.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	items := func(tok, q string) []any {
		return b.must(200, "GET", "/api/alerts"+q, tok, nil)["items"].([]any)
	}
	if got := items(aliceTok, ""); len(got) != 2 {
		t.Errorf("alice sees %v", got)
	}
	if got := items(aliceTok, "?status=open"); len(got) != 1 || got[0].(map[string]any)["kind"] != "domain_misconfigured" ||
		got[0].(map[string]any)["message"] != "el DNS ya no apunta a la plataforma" {
		t.Errorf("alice's open alerts %v", got)
	}
	if got := items(bobTok, ""); len(got) != 0 {
		t.Errorf("bob sees %v", got)
	}
	if got := items(bobTok, fmt.Sprintf("?customer_id=%d", alice)); len(got) != 0 {
		t.Errorf("bob sees alice's through the filter: %v", got)
	}
	if res := b.do("GET", fmt.Sprintf("/api/alerts?domain=%d", did), bobTok, nil); res.status != 404 {
		t.Errorf("bob filters by alice's domain: %d", res.status)
	}
	if got := items(b.admin, "?kind=checks_stalled"); len(got) != 1 {
		t.Errorf("admin checks_stalled %v", got)
	}
	first := b.must(200, "GET", "/api/alerts?limit=2", b.admin, nil)
	second := items(b.admin, "?limit=2&cursor="+first["next_cursor"].(string))
	if len(first["items"].([]any)) != 2 || len(second) != 1 {
		t.Errorf("pages %v / %v", first, second)
	}
	if res := b.do("GET", "/api/alerts?cursor=nope", b.admin, nil); res.status != 422 {
		t.Errorf("bad cursor: %d", res.status)
	}
	if res := b.do("GET", "/api/alerts?kind=boom", b.admin, nil); res.status != 422 {
		t.Errorf("bad kind: %d", res.status)
	}
	dom := b.must(200, "GET", fmt.Sprintf("/api/domains/%d", did), aliceTok, nil)
	if a := dom["alerts"].([]any); len(a) != 1 || a[0].(map[string]any)["kind"] != "domain_misconfigured" {
		t.Errorf("domain alerts %v", dom["alerts"])
	}
	l := b.must(200, "GET", "/api/domains", aliceTok, nil)["items"].([]any)
	if len(l[0].(map[string]any)["alerts"].([]any)) != 1 {
		t.Errorf("listed domain alerts %v", l[0])
	}
	st := b.must(200, "GET", "/api/domains/stats", aliceTok, nil)
	if st["alerts_open"].(float64) != 1 || st["alerts_by_kind"].(map[string]any)["domain_misconfigured"].(float64) != 1 {
		t.Errorf("alice's stats %v", st)
	}
	if st := b.must(200, "GET", "/api/domains/stats", b.admin, nil); st["alerts_open"].(float64) != 2 {
		t.Errorf("admin stats %v", st)
	}
}

// Notifications recorded without SMTP are shown to their customer only; a domain's recorded
// checks carry every resolver's answer.
func TestNotificationsAndChecksAreShown(t *testing.T) {
	t.Parallel()
	b, _ := setupAutomation(t, false)
	alice, bob := b.customer("alice", "basic"), b.customer("bob", "basic")
	aliceTok, bobTok := b.customerToken(alice), b.customerToken(bob)
	d := b.must(201, "POST", "/api/domains", aliceTok, map[string]any{"external_domain": "www.alice-shop.com"})
	did := int64(d["id"].(float64))
	if res := b.do("POST", fmt.Sprintf("/api/domains/%d/verify", did), aliceTok, nil); res.status != 400 {
		t.Fatalf("verify without DNS: %d", res.status)
	}
	checks := b.must(200, "GET", fmt.Sprintf("/api/domains/%d/checks", did), aliceTok, nil)["items"].([]any)
	if len(checks) == 0 || len(checks[0].(map[string]any)["resolvers"].([]any)) == 0 || checks[0].(map[string]any)["automatic"] != false {
		t.Errorf("checks %v", checks)
	}
	if res := b.do("GET", fmt.Sprintf("/api/domains/%d/checks", did), bobTok, nil); res.status != 404 {
		t.Errorf("bob reads alice's checks: %d", res.status)
	}
	if dom := b.must(200, "GET", fmt.Sprintf("/api/domains/%d", did), aliceTok, nil); dom["next_check_at"] == nil {
		t.Errorf("a pending domain has no next check: %v", dom)
	}
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO notifications (kind, customer_id, domain_id, dedupe_key, data, status, to_address, lang, created_at)
		VALUES ('domain_misconfigured', $1, $2, 'k1', '{"hostname":"www.alice-shop.com","problem":{"es":"apunta a otro sitio","en":"points elsewhere"},"fix":{"es":"","en":""},"next":{"es":"","en":""}}',
		'recorded', 'ops@alice.example', 'es', now())`, alice, did); err != nil {
		t.Fatal(err)
	}
	ns := b.must(200, "GET", "/api/notifications", aliceTok, nil)["items"].([]any)
	if len(ns) != 1 || ns[0].(map[string]any)["status"] != "recorded" || !strings.Contains(ns[0].(map[string]any)["text"].(string), "www.alice-shop.com") {
		t.Errorf("alice's notifications %v", ns)
	}
	if ns := b.must(200, "GET", "/api/notifications", bobTok, nil)["items"].([]any); len(ns) != 0 {
		t.Errorf("bob sees %v", ns)
	}
}

// A customer's emails are in Spanish unless it chose English; only es and en are accepted.
func TestCustomerLanguage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.must(201, "POST", "/api/customers", b.admin, map[string]any{"email": "ops@alice-shop.com", "company_name": "Alice"})
	if c["language"] != "es" {
		t.Errorf("default language %v", c["language"])
	}
	path := fmt.Sprintf("/api/customers/%d", int64(c["id"].(float64)))
	if got := b.must(200, "PATCH", path, b.admin, map[string]any{"language": "en"}); got["language"] != "en" {
		t.Errorf("after PATCH %v", got)
	}
	for _, body := range []map[string]any{{"language": "fr"}, {"language": nil}} {
		if res := b.do("PATCH", path, b.admin, body); res.status != 422 {
			t.Errorf("PATCH %v: %d", body, res.status)
		}
	}
	if res := b.do("POST", "/api/customers", b.admin, map[string]any{"email": "a@b-shop.com", "company_name": "B", "language": "de"}); res.status != 422 {
		t.Errorf("create with language de: %d", res.status)
	}
	if got := b.must(200, "GET", path, b.admin, nil); got["language"] != "en" {
		t.Errorf("refused changes changed it: %v", got)
	}
}

// The test clock exists only behind its switch, and only for admins.
func TestTestClockIsASwitch(t *testing.T) {
	t.Parallel()
	b, _ := setupAutomation(t, false)
	if res := b.do("POST", "/api/test/clock", b.admin, map[string]any{"advance_seconds": 60}); res.status != 404 && res.status != 405 {
		t.Errorf("without --test-clock: %d", res.status)
	}
	var a *automation.Automation
	on := setup(t, withAutomation(false), func(o *options) {
		inner := o.configure
		o.configure = func(c *api.Config) { inner(c); a, c.TestClock = c.Automation, &clock.Offset{} }
	})
	startJobs(t, on, a)
	cust := on.customerToken(on.customer("alice", "basic"))
	if res := on.do("POST", "/api/test/clock", cust, map[string]any{"advance_seconds": 60}); res.status != 403 {
		t.Errorf("a customer moved the clock: %d", res.status)
	}
	var got struct {
		Now time.Time `json:"now"`
	}
	res := on.do("POST", "/api/test/clock", on.admin, map[string]any{"advance_seconds": 86400})
	if res.status != 200 || json.Unmarshal(res.body, &got) != nil || time.Until(got.Now) < 23*time.Hour {
		t.Errorf("admin: %d %s", res.status, res.body)
	}
	if res := on.do("POST", "/api/test/clock", on.admin, map[string]any{"advance_seconds": -5}); res.status != 422 {
		t.Errorf("moving back: %d", res.status)
	}
}
