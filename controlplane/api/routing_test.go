package api_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/ingress"
)

const (
	uuid1    = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
	uuid2    = "0b1f6a8e-2c39-4a47-9d1e-5b2f7c3d4e5f"
	backend1 = "http://10.10.10.105:8069"
	backend2 = "http://10.10.10.106:8069"
)

func id(m map[string]any) int64 { return int64(m["id"].(float64)) }

func (b *bundle) tunnel(name, uuid string) int64 {
	b.t.Helper()
	return id(b.must(201, "POST", "/api/tunnels", b.admin, map[string]any{"name": name, "cloudflare_tunnel_id": uuid}))
}

// deployment creates a tenant deployment; tunnel 0 and backend "" leave those unset.
func (b *bundle) deployment(customer int64, name string, tunnel int64, backend string) int64 {
	b.t.Helper()
	body := map[string]any{"customer_id": customer, "name": name}
	if tunnel != 0 {
		body["tunnel_id"] = tunnel
	}
	if backend != "" {
		body["backend_url"] = backend
	}
	return id(b.must(201, "POST", "/api/tenant-deployments", b.admin, body))
}

func (b *bundle) domainOn(customer, deployment int64, host string) int64 {
	b.t.Helper()
	body := map[string]any{"external_domain": host, "customer_id": customer}
	if deployment != 0 {
		body["tenant_deployment_id"] = deployment
	}
	return id(b.must(201, "POST", "/api/domains", b.admin, body))
}

func (b *bundle) exec(sql string, args ...any) {
	b.t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bundle) version(tunnel int64) int64 {
	b.t.Helper()
	var v int64
	if err := b.pool.QueryRow(context.Background(), `SELECT config_version FROM tunnels WHERE id = $1`, tunnel).Scan(&v); err != nil {
		b.t.Fatal(err)
	}
	return v
}

// ingressOf returns a domain's ingress_version and tunnel_ingress_configured.
func (b *bundle) ingressOf(domain int64) (*int64, bool) {
	b.t.Helper()
	var v *int64
	var configured bool
	if err := b.pool.QueryRow(context.Background(), `SELECT ingress_version, tunnel_ingress_configured FROM custom_domains WHERE id = $1`,
		domain).Scan(&v, &configured); err != nil {
		b.t.Fatal(err)
	}
	return v, configured
}

// wantIngress fails unless the domain is recorded in version want (0: in no tunnel) and waits
// for the agents' ACK.
func (b *bundle) wantIngress(domain, want int64) {
	b.t.Helper()
	v, configured := b.ingressOf(domain)
	switch {
	case want == 0 && v != nil:
		b.t.Errorf("domain %d: ingress_version %d, want NULL (in no tunnel)", domain, *v)
	case want != 0 && (v == nil || *v != want):
		b.t.Errorf("domain %d: ingress_version %v, want %d", domain, fmtPtr(v), want)
	}
	if configured {
		b.t.Errorf("domain %d: tunnel_ingress_configured is true, want false until the agents ACK", domain)
	}
}

func fmtPtr(v *int64) string {
	if v == nil {
		return "NULL"
	}
	return strconv.FormatInt(*v, 10)
}

// desired returns the hostnames → services of a tunnel's desired ingress and its version.
func (b *bundle) desired(tunnel int64) (map[string]string, int64) {
	b.t.Helper()
	d, err := b.store.GetDesiredIngress(context.Background(), tunnel)
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range d.Rules {
		out[r.Hostname] = r.Service
	}
	return out, d.Version
}

// audits returns the details of the audit rows of one action on one object, oldest first.
func (b *bundle) audits(action, entity string, entityID int64) []map[string]any {
	b.t.Helper()
	rows, _ := b.pool.Query(context.Background(), `SELECT detail FROM audit_log WHERE action = $1 AND entity = $2 AND entity_id = $3 ORDER BY id`,
		action, entity, entityID)
	details, err := pgx.CollectRows(rows, pgx.RowTo[map[string]any])
	if err != nil {
		b.t.Fatal(err)
	}
	return details
}

// change returns detail.changes[field] as (old, new).
func change(t *testing.T, detail map[string]any, field string) (any, any) {
	t.Helper()
	ch, _ := detail["changes"].(map[string]any)
	f, ok := ch[field].(map[string]any)
	if !ok {
		t.Fatalf("audit detail %v has no change of %s", detail, field)
	}
	return f["old"], f["new"]
}

// listener is a connection of its own that LISTENs on the tunnel channel.
type listener struct {
	t    *testing.T
	conn *pgx.Conn
}

func (b *bundle) listen(t *testing.T) *listener {
	t.Helper()
	c, err := b.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Hijack()
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), "LISTEN "+store.TunnelChannel); err != nil {
		t.Fatal(err)
	}
	return &listener{t: t, conn: conn}
}

// expect waits for one notification per tunnel (in any order) and fails on another payload.
func (l *listener) expect(tunnels ...int64) {
	l.t.Helper()
	var want, got []string
	for _, tun := range tunnels {
		want = append(want, strconv.FormatInt(tun, 10))
	}
	for range tunnels {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := l.conn.WaitForNotification(ctx)
		cancel()
		if err != nil {
			l.t.Fatalf("notifications %v received, waiting for %v: %v", got, want, err)
		}
		if n.Channel != store.TunnelChannel {
			l.t.Fatalf("notification on channel %q, want %q", n.Channel, store.TunnelChannel)
		}
		got = append(got, n.Payload)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		l.t.Fatalf("notified tunnels %v, want %v", got, want)
	}
}

func (b *bundle) problem(want int, method, path, token string, body any) map[string]any {
	b.t.Helper()
	r := b.do(method, path, token, body)
	if r.status != want {
		b.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		b.t.Errorf("%s %s: Content-Type %q, want application/problem+json", method, path, ct)
	}
	return r.json(b.t)
}

// A backend_url is judged by the agent's own rule validator: the refusal's detail is the
// sentence the agent would NACK with, the hint carries an example, and nothing is written.
func TestBackendURLIsJudgedByTheAgentsValidator(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lang = "en" // the sentences asserted below are the English ones
	c := b.customer("ImpulseMax", "basic")
	tun := b.tunnel("tcs-sajet-tunnel", uuid1)
	td := b.deployment(c, "odoo", tun, backend1)
	b.domainOn(c, td, "www.impulse-max.com")
	version := b.version(tun)

	r := b.problem(422, "POST", "/api/tenant-deployments", b.admin, map[string]any{"customer_id": c, "name": "x", "backend_url": "http://admin@h:8069"})
	if r["code"] != "invalid_backend_url" || r["detail"] != `service "http://admin@h:8069": only scheme://host[:port] is allowed` {
		t.Errorf("user info in backend_url: %v %q", r["code"], r["detail"])
	}
	for _, bad := range []string{"http://admin@h:8069", "http://h:99999", "10.10.10.105:8069", "http://10.10.10.105:8069/",
		"ftp://10.10.10.105", "http://h:8069?debug=1", "http_status:404", ""} {
		var re *ingress.RuleError
		if !errors.As(ingress.CheckManagedService(bad), &re) {
			t.Fatalf("the agent's validator accepts %q; the test needs URLs it refuses", bad)
		}
		for _, req := range []struct{ method, path string }{
			{"POST", "/api/tenant-deployments"}, {"PATCH", fmt.Sprintf("/api/tenant-deployments/%d", td)},
		} {
			body := map[string]any{"backend_url": bad}
			if req.method == "POST" {
				body["customer_id"], body["name"] = c, "other"
			}
			p := b.problem(422, req.method, req.path, b.admin, body)
			if p["code"] != "invalid_backend_url" || p["detail"] != re.Msg {
				t.Errorf("%s %q: code %v detail %q, want invalid_backend_url and the agent's %q", req.method, bad, p["code"], p["detail"], re.Msg)
			}
			errs, _ := p["errors"].([]any)
			if len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["message"].(string), "e.g. http://10.10.10.105:8069") ||
				errs[0].(map[string]any)["location"] != "body.backend_url" {
				t.Errorf("%s %q: errors %v, want one hint at body.backend_url with an example", req.method, bad, p["errors"])
			}
		}
	}
	// A NUL byte is refused before any handler, like in every text field (validation_failed).
	for _, req := range []struct{ method, path string }{
		{"POST", "/api/tenant-deployments"}, {"PATCH", fmt.Sprintf("/api/tenant-deployments/%d", td)},
	} {
		body := map[string]any{"backend_url": "http://h\x00:8069"}
		if req.method == "POST" {
			body["customer_id"], body["name"] = c, "other"
		}
		p := b.problem(422, req.method, req.path, b.admin, body)
		errs, _ := p["errors"].([]any)
		if p["code"] != "validation_failed" || len(errs) != 1 || errs[0].(map[string]any)["location"] != "body.backend_url" {
			t.Errorf("%s backend_url with NUL: %v, want validation_failed at body.backend_url", req.method, p)
		}
	}
	var n int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM tenant_deployments`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d tenant deployments after refused creates (%v), want 1", n, err)
	}
	got := b.must(200, "GET", fmt.Sprintf("/api/tenant-deployments/%d", td), b.admin, nil)
	if got["backend_url"] != backend1 {
		t.Errorf("backend_url %v after refused patches, want %s", got["backend_url"], backend1)
	}
	if v := b.version(tun); v != version {
		t.Errorf("tunnel version %d after refused patches, want %d", v, version)
	}
	if a := b.audits("tenant_deployment.update", "tenant_deployment", td); len(a) != 0 {
		t.Errorf("refused patches wrote audit rows: %v", a)
	}
}

// A new backend re-pushes the tunnel: a new config version, a NOTIFY with the tunnel's id, and
// the domains wait for the agents' ACK of the new backend.
func TestBackendChangeRepushesTheTunnel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	tun := b.tunnel("tcs-sajet-tunnel", uuid1)
	td := b.deployment(c, "odoo", tun, backend1)
	d1 := b.domainOn(c, td, "www.impulse-max.com")
	d2 := b.domainOn(c, td, "shop.impulse-max.com")
	pending := b.domainOn(c, 0, "other.impulse-max.com")                                                   // on no deployment: not in any tunnel
	b.exec(`UPDATE custom_domains SET tunnel_ingress_configured = true WHERE ingress_version IS NOT NULL`) // the agents ACKed
	v0 := b.version(tun)

	l := b.listen(t)
	got := b.must(200, "PATCH", fmt.Sprintf("/api/tenant-deployments/%d", td), b.admin, map[string]any{"backend_url": backend2})
	if got["backend_url"] != backend2 || got["name"] != "odoo" || got["tunnel_id"].(float64) != float64(tun) {
		t.Errorf("patched deployment %v", got)
	}
	l.expect(tun)
	v1 := b.version(tun)
	if v1 != v0+1 {
		t.Fatalf("config_version %d → %d, want one bump", v0, v1)
	}
	b.wantIngress(d1, v1)
	b.wantIngress(d2, v1)
	if v, _ := b.ingressOf(pending); v != nil {
		t.Errorf("a domain outside the deployment got ingress_version %d", *v)
	}
	rules, version := b.desired(tun)
	if version != v1 || len(rules) != 4 {
		t.Fatalf("desired ingress version %d rules %v, want version %d and 4 rules", version, rules, v1)
	}
	for host, service := range rules {
		if service != backend2 {
			t.Errorf("desired rule %s → %s, want %s", host, service, backend2)
		}
	}
	steps := b.must(200, "GET", fmt.Sprintf("/api/domains/%d", d1), b.admin, nil)["steps"].([]any)
	for _, s := range steps {
		if st := s.(map[string]any); st["name"] == "tunnel_ingress" && st["status"] != "pending" {
			t.Errorf("tunnel_ingress step %v after a backend change, want pending", st)
		}
	}
	audit := b.audits("tenant_deployment.update", "tenant_deployment", td)
	if len(audit) != 1 {
		t.Fatalf("%d audit rows, want 1", len(audit))
	}
	if old, new := change(t, audit[0], "backend_url"); old != backend1 || new != backend2 {
		t.Errorf("audited backend_url %v → %v", old, new)
	}
	if tunnels := audit[0]["rerouted"].(map[string]any)["tunnels"].(map[string]any); tunnels[strconv.FormatInt(tun, 10)] != float64(v1) {
		t.Errorf("audited tunnels %v, want %d → %d", tunnels, tun, v1)
	}

	// The same backend again and a rename change no rule: no new version.
	b.must(200, "PATCH", fmt.Sprintf("/api/tenant-deployments/%d", td), b.admin, map[string]any{"backend_url": backend2})
	renamed := b.must(200, "PATCH", fmt.Sprintf("/api/tenant-deployments/%d", td), b.admin, map[string]any{"name": "odoo-17"})
	if renamed["name"] != "odoo-17" || renamed["backend_url"] != backend2 {
		t.Errorf("renamed deployment %v", renamed)
	}
	if v := b.version(tun); v != v1 {
		t.Errorf("config_version %d after changes that change no rule, want %d", v, v1)
	}
	audit = b.audits("tenant_deployment.update", "tenant_deployment", td)
	if len(audit) != 2 {
		t.Fatalf("%d audit rows after a no-op and a rename, want 2", len(audit))
	}
	if old, new := change(t, audit[1], "name"); old != "odoo" || new != "odoo-17" {
		t.Errorf("audited name %v → %v", old, new)
	}
}

// Moving a deployment to another tunnel bumps both in one transaction; taking it out of any
// tunnel (tunnel or backend null) removes its domains, and putting it back adds them again with a
// new version.
func TestMovingADeploymentBetweenTunnels(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	t1 := b.tunnel("tunnel-one", uuid1)
	t2 := b.tunnel("tunnel-two", uuid2)
	td := b.deployment(c, "odoo", t1, backend1)
	d := b.domainOn(c, td, "www.impulse-max.com")
	path := fmt.Sprintf("/api/tenant-deployments/%d", td)
	v1, v2 := b.version(t1), b.version(t2)

	l := b.listen(t)
	b.must(200, "PATCH", path, b.admin, map[string]any{"tunnel_id": t2})
	l.expect(t1, t2)
	if b.version(t1) != v1+1 || b.version(t2) != v2+1 {
		t.Fatalf("versions after the move: %d→%d and %d→%d, want both bumped once", v1, b.version(t1), v2, b.version(t2))
	}
	b.wantIngress(d, v2+1)
	if rules, _ := b.desired(t1); len(rules) != 0 {
		t.Errorf("old tunnel still routes %v", rules)
	}
	if rules, _ := b.desired(t2); rules["www.impulse-max.com"] != backend1 || rules["impulse-max.sajet.us"] != backend1 {
		t.Errorf("new tunnel routes %v, want both hostnames → %s", rules, backend1)
	}
	a := b.audits("tenant_deployment.update", "tenant_deployment", td)
	if old, new := change(t, a[0], "tunnel_id"); old != float64(t1) || new != float64(t2) {
		t.Errorf("audited tunnel_id %v → %v", old, new)
	}

	// Out of any tunnel: the old one drops the rules; ingress_version no longer means anything.
	b.must(200, "PATCH", path, b.admin, map[string]any{"tunnel_id": nil})
	l.expect(t2)
	b.wantIngress(d, 0)
	if rules, _ := b.desired(t2); len(rules) != 0 {
		t.Errorf("tunnel two still routes %v after tunnel_id null", rules)
	}
	if b.version(t1) != v1+1 {
		t.Errorf("tunnel one bumped by a change that does not concern it")
	}

	// Back on a tunnel: added again, in a new version.
	b.must(200, "PATCH", path, b.admin, map[string]any{"tunnel_id": t1})
	l.expect(t1)
	b.wantIngress(d, b.version(t1))
	if rules, _ := b.desired(t1); len(rules) != 2 {
		t.Errorf("tunnel one routes %v after the move back, want the domain's 2 rules", rules)
	}

	// The same with the backend.
	b.must(200, "PATCH", path, b.admin, map[string]any{"backend_url": nil})
	l.expect(t1)
	b.wantIngress(d, 0)
	b.must(200, "PATCH", path, b.admin, map[string]any{"backend_url": backend2})
	l.expect(t1)
	b.wantIngress(d, b.version(t1))
	if rules, _ := b.desired(t1); rules["www.impulse-max.com"] != backend2 {
		t.Errorf("tunnel one routes %v, want → %s", rules, backend2)
	}

	// An unknown tunnel changes nothing.
	before := b.version(t1)
	if p := b.problem(404, "PATCH", path, b.admin, map[string]any{"tunnel_id": 99999}); p["code"] != "tunnel_not_found" {
		t.Errorf("unknown tunnel: %v", p)
	}
	if b.version(t1) != before {
		t.Errorf("a refused move bumped the tunnel")
	}
}

// A domain moves between its customer's deployments (the rules follow it), keeps one primary
// per deployment, and never reaches another customer's deployment.
func TestDomainPatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.customer("A", "basic")
	other := b.customer("B", "basic")
	tokA, tokB := b.customerToken(a), b.customerToken(other)
	t1 := b.tunnel("tunnel-one", uuid1)
	t2 := b.tunnel("tunnel-two", uuid2)
	td1 := b.deployment(a, "one", t1, backend1)
	td2 := b.deployment(a, "two", t2, backend2)
	tdB := b.deployment(other, "theirs", t1, backend1)
	x := id(b.must(201, "POST", "/api/domains", tokA, map[string]any{"external_domain": "www.alpha.com", "tenant_deployment_id": td1, "is_primary": true}))
	y := id(b.must(201, "POST", "/api/domains", tokA, map[string]any{"external_domain": "shop.alpha.com", "tenant_deployment_id": td2, "is_primary": true}))
	v1, v2 := b.version(t1), b.version(t2)

	// Moving the primary x onto td2, which has a primary: refused, nothing changes.
	if p := b.problem(409, "PATCH", "/api/domains/www.alpha.com", tokA, map[string]any{"tenant_deployment_id": td2}); p["code"] != "primary_exists" {
		t.Errorf("move of a primary onto a deployment with one: %v", p)
	}
	if b.version(t1) != v1 || b.version(t2) != v2 {
		t.Errorf("a refused move bumped a tunnel")
	}

	l := b.listen(t)
	moved := b.must(200, "PATCH", "/api/domains/www.alpha.com", tokA, map[string]any{"tenant_deployment_id": td2, "is_primary": false})
	if moved["tenant_deployment_id"].(float64) != float64(td2) || moved["is_primary"] != false || moved["tunnel_ingress_configured"] != false {
		t.Errorf("moved domain %v", moved)
	}
	l.expect(t1, t2)
	if b.version(t1) != v1+1 || b.version(t2) != v2+1 {
		t.Errorf("versions after the move %d, %d; want %d, %d", b.version(t1), b.version(t2), v1+1, v2+1)
	}
	b.wantIngress(x, v2+1)
	if rules, _ := b.desired(t2); rules["www.alpha.com"] != backend2 || rules["shop.alpha.com"] != backend2 {
		t.Errorf("tunnel two routes %v", rules)
	}
	if rules, _ := b.desired(t1); rules["www.alpha.com"] != "" {
		t.Errorf("tunnel one still routes www.alpha.com: %v", rules)
	}
	audit := b.audits("domain.update", "domain", x)
	if len(audit) != 1 {
		t.Fatalf("%d domain.update rows, want 1 (the refused move writes none)", len(audit))
	}
	if old, new := change(t, audit[0], "tenant_deployment_id"); old != float64(td1) || new != float64(td2) {
		t.Errorf("audited tenant_deployment_id %v → %v", old, new)
	}

	// One primary per deployment.
	if p := b.problem(409, "PATCH", fmt.Sprintf("/api/domains/%d", x), b.admin, map[string]any{"is_primary": true}); p["code"] != "primary_exists" {
		t.Errorf("second primary: %v", p)
	}
	b.must(200, "PATCH", fmt.Sprintf("/api/domains/%d", y), tokA, map[string]any{"is_primary": false})
	if got := b.must(200, "PATCH", fmt.Sprintf("/api/domains/%d", x), tokA, map[string]any{"is_primary": true}); got["is_primary"] != true {
		t.Errorf("is_primary %v after the old primary stepped down", got["is_primary"])
	}

	// Another customer's deployment does not exist for this domain, whoever asks.
	vs := []int64{b.version(t1), b.version(t2)}
	for _, tok := range []string{tokA, b.admin} {
		if p := b.problem(404, "PATCH", "/api/domains/www.alpha.com", tok, map[string]any{"tenant_deployment_id": tdB}); p["code"] != "tenant_deployment_not_found" {
			t.Errorf("move to another customer's deployment: %v", p)
		}
	}
	b.problem(404, "PATCH", "/api/domains/www.alpha.com", tokA, map[string]any{"tenant_deployment_id": 99999})
	// Another customer's domain does not exist for B.
	b.problem(404, "PATCH", "/api/domains/www.alpha.com", tokB, map[string]any{"is_primary": false})
	b.problem(404, "PATCH", fmt.Sprintf("/api/domains/%d", x), tokB, map[string]any{"tenant_deployment_id": tdB})
	if b.version(t1) != vs[0] || b.version(t2) != vs[1] {
		t.Errorf("refused moves bumped a tunnel")
	}
	if got := b.must(200, "GET", fmt.Sprintf("/api/domains/%d", x), b.admin, nil); got["tenant_deployment_id"].(float64) != float64(td2) {
		t.Errorf("domain moved by a refused request: %v", got["tenant_deployment_id"])
	}

	// Detached: out of every tunnel.
	b.must(200, "PATCH", fmt.Sprintf("/api/domains/%d", x), tokA, map[string]any{"tenant_deployment_id": nil})
	b.wantIngress(x, 0)
	if rules, _ := b.desired(t2); rules["www.alpha.com"] != "" {
		t.Errorf("tunnel two still routes a detached domain: %v", rules)
	}
	b.problem(422, "PATCH", fmt.Sprintf("/api/domains/%d", x), tokA, map[string]any{})
	b.problem(422, "PATCH", fmt.Sprintf("/api/domains/%d", x), tokA, map[string]any{"is_primary": nil})
	b.problem(422, "PATCH", fmt.Sprintf("/api/domains/%d", x), tokA, map[string]any{"customer_id": other})
}

// Deletes are refused while something uses the object, naming what (a few, then "and N more");
// once nothing does, they answer 204 and are audited.
func TestDeletesAreRefusedWhileInUse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lang = "en" // the sentences asserted below are the English ones
	c := b.customer("ImpulseMax", "basic")
	tok := b.must(201, "POST", "/api/tokens", b.admin, map[string]any{"role": "customer", "customer_id": c, "name": "erp"})
	tun := b.tunnel("tcs-sajet-tunnel", uuid1)
	td := b.deployment(c, "odoo", tun, backend1)
	agent := b.must(201, "POST", "/api/agents", b.admin, map[string]any{"tunnel_id": tun, "name": "pct-105"})
	var hosts []string
	for i := range 7 {
		h := fmt.Sprintf("s%d.impulse-max.com", i)
		hosts = append(hosts, h)
		b.domainOn(c, td, h)
	}
	tunPath, tdPath, cPath := fmt.Sprintf("/api/tunnels/%d", tun), fmt.Sprintf("/api/tenant-deployments/%d", td), fmt.Sprintf("/api/customers/%d", c)

	p := b.problem(409, "DELETE", tunPath, b.admin, nil)
	if p["code"] != "tunnel_in_use" || !strings.Contains(p["detail"].(string), fmt.Sprintf("1 tenant deployment (odoo #%d)", td)) ||
		!strings.Contains(p["detail"].(string), fmt.Sprintf("1 enrolled agent (pct-105 #%d)", id(agent))) {
		t.Errorf("tunnel in use: %v %q", p["code"], p["detail"])
	}
	p = b.problem(409, "DELETE", tdPath, b.admin, nil)
	want := fmt.Sprintf("7 live domains (%s and 2 more)", strings.Join(hosts[:5], ", "))
	if p["code"] != "tenant_deployment_in_use" || !strings.Contains(p["detail"].(string), want) {
		t.Errorf("deployment in use: %v %q, want it to name %q", p["code"], p["detail"], want)
	}
	p = b.problem(409, "DELETE", cPath, b.admin, nil)
	for _, part := range []string{"7 live domains (s0.impulse-max.com", fmt.Sprintf("1 tenant deployment (odoo #%d)", td),
		fmt.Sprintf("1 API token (erp #%d)", id(tok))} {
		if p["code"] != "customer_in_use" || !strings.Contains(p["detail"].(string), part) {
			t.Errorf("customer in use: %v %q, want it to name %q", p["code"], p["detail"], part)
		}
	}
	for _, path := range []string{tunPath, tdPath, cPath} {
		b.must(200, "GET", path, b.admin, nil) // still there
	}

	// Take the uses away one by one.
	for _, h := range hosts {
		b.must(204, "DELETE", "/api/domains/"+h, b.admin, nil)
	}
	if r := b.do("DELETE", tdPath, b.admin, nil); r.status != 204 || len(r.body) != 0 {
		t.Fatalf("delete unused deployment: %d %s", r.status, r.body)
	}
	b.problem(404, "GET", tdPath, b.admin, nil)
	p = b.problem(409, "DELETE", tunPath, b.admin, nil)
	if strings.Contains(p["detail"].(string), "tenant deployment") || !strings.Contains(p["detail"].(string), "pct-105") {
		t.Errorf("tunnel with only an agent: %q", p["detail"])
	}
	b.exec(`UPDATE agents SET revoked_at = now() WHERE id = $1`, id(agent))
	b.must(204, "DELETE", tunPath, b.admin, nil)
	b.problem(404, "GET", tunPath, b.admin, nil)

	p = b.problem(409, "DELETE", cPath, b.admin, nil)
	if p["code"] != "customer_in_use" || !strings.Contains(p["detail"].(string), "1 API token (erp") || strings.Contains(p["detail"].(string), "domain") {
		t.Errorf("customer with only a token: %q", p["detail"])
	}
	b.must(204, "DELETE", fmt.Sprintf("/api/tokens/%d", id(tok)), b.admin, nil)
	b.must(204, "DELETE", cPath, b.admin, nil)
	b.problem(404, "GET", cPath, b.admin, nil)
	b.problem(404, "DELETE", cPath, b.admin, nil)

	for _, a := range []struct {
		action, entity string
		id             int64
		field, want    string
	}{
		{"tenant_deployment.delete", "tenant_deployment", td, "name", "odoo"},
		{"tunnel.delete", "tunnel", tun, "name", "tcs-sajet-tunnel"},
		{"customer.delete", "customer", c, "company_name", "ImpulseMax"},
	} {
		rows := b.audits(a.action, a.entity, a.id)
		if len(rows) != 1 || rows[0][a.field] != a.want {
			t.Errorf("%s audit rows %v, want one with %s %q", a.action, rows, a.field, a.want)
		}
	}
}

// A plan or quota change that leaves a customer below its live domains is refused with the numbers.
func TestQuotaCannotDropBelowUsage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.lang = "en" // the sentences asserted below are the English ones
	c := id(b.must(201, "POST", "/api/customers", b.admin, map[string]any{"email": "ops@x-example.com", "company_name": "X", "domain_quota": 12}))
	for i := range 12 {
		b.domainOn(c, 0, fmt.Sprintf("s%d.x-example.com", i))
	}
	path := fmt.Sprintf("/api/customers/%d", c)
	p := b.problem(409, "PATCH", path, b.admin, map[string]any{"domain_quota": nil})
	if want := fmt.Sprintf("customer %d has 12 live domains; plan basic allows 10: delete 2 domains or set domain_quota", c); p["code"] != "quota_below_usage" || p["detail"] != want {
		t.Errorf("back to the plan's quota: %v %q, want quota_below_usage %q", p["code"], p["detail"], want)
	}
	p = b.problem(409, "PATCH", path, b.admin, map[string]any{"domain_quota": 11})
	if want := fmt.Sprintf("customer %d has 12 live domains; domain_quota allows 11: delete 1 domain or set a domain_quota of at least 12", c); p["detail"] != want {
		t.Errorf("lower override: %q, want %q", p["detail"], want)
	}
	got := b.must(200, "PATCH", path, b.admin, map[string]any{"plan": "enterprise", "domain_quota": nil})
	if got["plan"] != "enterprise" || got["domain_quota"].(float64) != 50 || got["quota_is_plan_default"] != true {
		t.Errorf("enterprise without override: %v", got)
	}
	p = b.problem(409, "PATCH", path, b.admin, map[string]any{"plan": "basic"})
	if p["code"] != "quota_below_usage" || !strings.Contains(p["detail"].(string), "plan basic allows 10") {
		t.Errorf("down to basic: %v %q", p["code"], p["detail"])
	}
	if got := b.must(200, "GET", path, b.admin, nil); got["plan"] != "enterprise" {
		t.Errorf("plan %v after a refused downgrade", got["plan"])
	}
	// Enough room: fine; deleting domains makes room.
	b.must(200, "PATCH", path, b.admin, map[string]any{"plan": "basic", "domain_quota": 12})
	b.must(204, "DELETE", "/api/domains/s0.x-example.com", b.admin, nil)
	b.must(204, "DELETE", "/api/domains/s1.x-example.com", b.admin, nil)
	got = b.must(200, "PATCH", path, b.admin, map[string]any{"domain_quota": nil})
	if got["domain_quota"].(float64) != 10 || got["domain_count"].(float64) != 10 {
		t.Errorf("after making room: %v", got)
	}
	a := b.audits("customer.update", "customer", c)
	if len(a) != 3 {
		t.Fatalf("%d customer.update rows, want 3 (refusals write none)", len(a))
	}
	if old, new := change(t, a[0], "plan"); old != "basic" || new != "enterprise" {
		t.Errorf("audited plan %v → %v", old, new)
	}
	if old, new := change(t, a[0], "domain_quota"); old != float64(12) || new != nil {
		t.Errorf("audited domain_quota %v → %v", old, new)
	}
	// Registrations still respect the quota.
	if p := b.problem(409, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "one-more.x-example.com", "customer_id": c}); p["code"] != "quota_exceeded" {
		t.Errorf("registration over the new quota: %v", p)
	}
}

// require_txt decides whether unproven domains are routed: changing it re-routes them.
func TestRequireTXTChangeReroutesTheCustomersDomains(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	tun := b.tunnel("tcs-sajet-tunnel", uuid1)
	td := b.deployment(c, "odoo", tun, backend1)
	d := b.domainOn(c, td, "www.impulse-max.com")
	path := fmt.Sprintf("/api/customers/%d", c)
	v := b.version(tun)

	l := b.listen(t)
	if got := b.must(200, "PATCH", path, b.admin, map[string]any{"require_txt": true}); got["require_txt"] != true {
		t.Fatalf("require_txt %v", got["require_txt"])
	}
	l.expect(tun)
	b.wantIngress(d, 0)
	if rules, version := b.desired(tun); len(rules) != 0 || version != v+1 {
		t.Errorf("after require_txt: version %d rules %v, want %d and none (no TXT proof)", version, rules, v+1)
	}
	b.must(200, "PATCH", path, b.admin, map[string]any{"require_txt": false})
	l.expect(tun)
	b.wantIngress(d, v+2)
	if rules, _ := b.desired(tun); len(rules) != 2 {
		t.Errorf("after require_txt false: rules %v, want the domain's 2", rules)
	}
	if a := b.audits("customer.update", "customer", c); len(a) != 2 {
		t.Errorf("%d customer.update rows, want 2", len(a))
	}
	// Email and name are not routing: no new version.
	got := b.must(200, "PATCH", path, b.admin, map[string]any{"email": " billing@impulse-max.com ", "company_name": "Impulse Max"})
	if got["email"] != "billing@impulse-max.com" || got["company_name"] != "Impulse Max" {
		t.Errorf("patched customer %v", got)
	}
	if b.version(tun) != v+2 {
		t.Errorf("a change of email bumped the tunnel")
	}
}

func TestTunnelPatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t1 := b.tunnel("tunnel-one", uuid1)
	b.tunnel("tunnel-two", uuid2)
	path := fmt.Sprintf("/api/tunnels/%d", t1)
	got := b.must(200, "PATCH", path, b.admin, map[string]any{"name": "tcs-sajet-tunnel"})
	if got["name"] != "tcs-sajet-tunnel" || got["cloudflare_tunnel_id"] != uuid1 {
		t.Errorf("renamed tunnel %v", got)
	}
	for _, body := range []map[string]any{{"name": "tunnel-two"}, {"cloudflare_tunnel_id": strings.ToUpper(uuid2)}} {
		if p := b.problem(409, "PATCH", path, b.admin, body); p["code"] != "tunnel_exists" {
			t.Errorf("%v: %v", body, p)
		}
	}
	newUUID := "3d5e0c1a-8f4b-4c2d-9e6f-7a8b9c0d1e2f"
	got = b.must(200, "PATCH", path, b.admin, map[string]any{"cloudflare_tunnel_id": strings.ToUpper(newUUID)})
	if got["cloudflare_tunnel_id"] != newUUID || got["name"] != "tcs-sajet-tunnel" {
		t.Errorf("tunnel after a new id %v", got)
	}
	if got := b.must(200, "GET", path, b.admin, nil); got["cloudflare_tunnel_id"] != newUUID {
		t.Errorf("GET after patch: %v", got)
	}
	a := b.audits("tunnel.update", "tunnel", t1)
	if len(a) != 2 {
		t.Fatalf("%d tunnel.update rows, want 2", len(a))
	}
	if old, new := change(t, a[0], "name"); old != "tunnel-one" || new != "tcs-sajet-tunnel" {
		t.Errorf("audited name %v → %v", old, new)
	}
	if old, new := change(t, a[1], "cloudflare_tunnel_id"); old != uuid1 || new != newUUID {
		t.Errorf("audited id %v → %v", old, new)
	}
	b.problem(404, "PATCH", "/api/tunnels/99999", b.admin, map[string]any{"name": "x"})
	b.problem(404, "GET", "/api/tunnels/99999", b.admin, nil)
	b.problem(404, "DELETE", "/api/tunnels/99999", b.admin, nil)
}

// Bad PATCH bodies are refused with 422 before anything is written.
func TestPatchValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	tun := b.tunnel("tcs-sajet-tunnel", uuid1)
	td := b.deployment(c, "odoo", tun, backend1)
	d := b.domainOn(c, td, "www.impulse-max.com")
	cPath, tPath, tdPath, dPath := fmt.Sprintf("/api/customers/%d", c), fmt.Sprintf("/api/tunnels/%d", tun),
		fmt.Sprintf("/api/tenant-deployments/%d", td), fmt.Sprintf("/api/domains/%d", d)
	long := strings.Repeat("a", 201)
	tests := []struct {
		name, path string
		body       any
		code       string
	}{
		{"empty customer patch", cPath, `{}`, "nothing_to_change"},
		{"empty tunnel patch", tPath, `{}`, "nothing_to_change"},
		{"empty deployment patch", tdPath, `{}`, "nothing_to_change"},
		{"empty domain patch", dPath, `{}`, "nothing_to_change"},
		{"unknown field", cPath, `{"company_name":"X","owner":"me"}`, "validation_failed"},
		{"unknown deployment field", tdPath, `{"customer_id":2}`, "validation_failed"},
		{"NUL in a name", cPath, `{"company_name":"Impulse\u0000Max"}`, "validation_failed"},
		{"NUL in a deployment name", tdPath, `{"name":"odoo\u0000"}`, "validation_failed"},
		{"invalid UTF-8", cPath, []byte("{\"company_name\":\"Impulse\xffMax\"}"), "validation_failed"},
		{"control character", cPath, `{"company_name":"Impulse\nMax"}`, "validation_failed"},
		{"name too long", cPath, `{"company_name":"` + long + `"}`, "validation_failed"},
		{"blank name", cPath, `{"company_name":"   "}`, "validation_failed"},
		{"email too long", cPath, `{"email":"` + strings.Repeat("a", 250) + `@x.com"}`, "validation_failed"},
		{"not an email", cPath, `{"email":"nobody"}`, "validation_failed"},
		{"null email", cPath, `{"email":null}`, "validation_failed"},
		{"unknown plan", cPath, `{"plan":"gold"}`, "validation_failed"},
		{"negative quota", cPath, `{"domain_quota":-1}`, "validation_failed"},
		{"quota too large", cPath, `{"domain_quota":100001}`, "validation_failed"},
		{"quota of the wrong type", cPath, `{"domain_quota":"10"}`, "validation_failed"},
		{"tunnel name pattern", tPath, `{"name":"bad name!"}`, "validation_failed"},
		{"tunnel id not a uuid", tPath, `{"cloudflare_tunnel_id":"not-a-uuid"}`, "validation_failed"},
		{"null tunnel name", tPath, `{"name":null}`, "validation_failed"},
		{"deployment name too long", tdPath, `{"name":"` + long + `"}`, "validation_failed"},
		{"backend too long", tdPath, `{"backend_url":"http://` + strings.Repeat("a", 2048) + `"}`, "validation_failed"},
		{"tunnel id zero", tdPath, `{"tunnel_id":0}`, "validation_failed"},
		{"domain deployment zero", dPath, `{"tenant_deployment_id":0}`, "validation_failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.do("PATCH", tc.path, b.admin, tc.body)
			if r.status != 422 {
				t.Fatalf("status %d, want 422: %s", r.status, r.body)
			}
			if p := r.json(t); p["code"] != tc.code {
				t.Errorf("code %v, want %s: %v", p["code"], tc.code, p["detail"])
			}
		})
	}
	var audits int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_log WHERE action LIKE '%.update'`).Scan(&audits); err != nil || audits != 0 {
		t.Errorf("refused patches wrote %d audit rows (%v)", audits, err)
	}
	if got := b.must(200, "GET", cPath, b.admin, nil); got["company_name"] != "ImpulseMax" || got["email"] != "ops@ImpulseMax.example" {
		t.Errorf("customer changed by refused patches: %v", got)
	}
	// Create bodies get the same text checks (PostgreSQL refuses NUL: never a 500).
	for _, body := range []string{`{"email":"ops@x.com","company_name":"A\u0000B"}`, `{"email":"ops@x.com","company_name":"A\u0007B"}`} {
		if r := b.do("POST", "/api/customers", b.admin, body); r.status != 422 {
			t.Errorf("create customer %s: %d %s, want 422", body, r.status, r.body)
		}
	}
	if r := b.do("POST", "/api/tenant-deployments", b.admin, fmt.Sprintf(`{"customer_id":%d,"name":"a\u0000b"}`, c)); r.status != 422 {
		t.Errorf("create deployment with NUL: %d %s, want 422", r.status, r.body)
	}
}

// Customer tokens see their own customer and deployments; another customer's object is a 404,
// a change of their own a 403; tunnels are admin-only.
func TestRoutingObjectsAuthorization(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.customer("A", "basic")
	other := b.customer("B", "basic")
	tokA := b.customerToken(a)
	tun := b.tunnel("tcs-sajet-tunnel", uuid1)
	tdA := b.deployment(a, "mine", tun, backend1)
	tdB := b.deployment(other, "theirs", tun, backend1)
	ca, cb := fmt.Sprintf("/api/customers/%d", a), fmt.Sprintf("/api/customers/%d", other)
	da, db := fmt.Sprintf("/api/tenant-deployments/%d", tdA), fmt.Sprintf("/api/tenant-deployments/%d", tdB)
	tp := fmt.Sprintf("/api/tunnels/%d", tun)

	b.must(200, "GET", ca, tokA, nil)
	b.must(200, "GET", da, tokA, nil)
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", cb, nil, 404},
		{"PATCH", cb, map[string]any{"company_name": "mine now"}, 404},
		{"DELETE", cb, nil, 404},
		{"PATCH", ca, map[string]any{"domain_quota": 1000}, 403},
		{"DELETE", ca, nil, 403},
		{"GET", db, nil, 404},
		{"PATCH", db, map[string]any{"backend_url": backend2}, 404},
		{"DELETE", db, nil, 404},
		{"PATCH", da, map[string]any{"backend_url": backend2}, 403},
		{"DELETE", da, nil, 403},
		{"GET", tp, nil, 403},
		{"PATCH", tp, map[string]any{"name": "mine"}, 403},
		{"DELETE", tp, nil, 403},
		{"GET", "/api/tenant-deployments/99999", nil, 404},
	} {
		p := b.problem(tc.want, tc.method, tc.path, tokA, tc.body)
		if tc.want == 403 && p["code"] != "admin_required" {
			t.Errorf("%s %s: code %v, want admin_required", tc.method, tc.path, p["code"])
		}
	}
	// Nothing changed.
	if got := b.must(200, "GET", cb, b.admin, nil); got["company_name"] != "B" {
		t.Errorf("B's customer changed: %v", got)
	}
	if got := b.must(200, "GET", da, b.admin, nil); got["backend_url"] != backend1 {
		t.Errorf("A's deployment changed: %v", got)
	}
	var n int
	if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM audit_log WHERE action LIKE '%.update' OR action LIKE '%.delete'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("refused requests wrote %d audit rows (%v)", n, err)
	}
	spec := b.must(200, "GET", "/openapi.json", "", nil)
	for _, path := range []string{"/api/customers/{id}", "/api/tunnels/{id}", "/api/tenant-deployments/{id}", "/api/domains/{d}"} {
		if _, ok := spec["paths"].(map[string]any)[path].(map[string]any)["patch"]; !ok {
			t.Errorf("openapi.json lacks PATCH %s", path)
		}
	}
}

// Concurrent backend changes, moves and registrations leave every tunnel consistent: each routed
// domain recorded at a version its tunnel has reached, its rules in its current tunnel only.
func TestConcurrentRoutingChangesStayConsistent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := id(b.must(201, "POST", "/api/customers", b.admin, map[string]any{"email": "ops@impulse-max.com", "company_name": "ImpulseMax",
		"plan": "enterprise", "require_txt": false}))
	t1 := b.tunnel("tunnel-one", uuid1)
	t2 := b.tunnel("tunnel-two", uuid2)
	td1 := b.deployment(c, "one", t1, backend1)
	td2 := b.deployment(c, "two", t2, backend2)
	var domains []int64
	for i := range 6 {
		domains = append(domains, b.domainOn(c, []int64{td1, td2}[i%2], fmt.Sprintf("pre%d.impulse-max.com", i)))
	}
	statuses := b.concurrently(40, func(i int) response {
		switch i % 4 {
		case 0:
			return b.do("PATCH", fmt.Sprintf("/api/tenant-deployments/%d", []int64{td1, td2}[i%8/4]), b.admin,
				map[string]any{"backend_url": fmt.Sprintf("http://10.10.10.%d:8069", 100+i)})
		case 1:
			return b.do("PATCH", fmt.Sprintf("/api/tenant-deployments/%d", td1), b.admin, map[string]any{"tunnel_id": []int64{t1, t2}[i%8/4]})
		case 2:
			return b.do("PATCH", fmt.Sprintf("/api/domains/%d", domains[i%len(domains)]), b.admin,
				map[string]any{"tenant_deployment_id": []int64{td1, td2}[i%8/4]})
		default:
			return b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": fmt.Sprintf("new%d.impulse-max.com", i),
				"customer_id": c, "tenant_deployment_id": []int64{td1, td2}[i%8/4]})
		}
	})
	if statuses[200]+statuses[201] != 40 {
		t.Fatalf("statuses %v, want every request to succeed (no deadlock, no 500)", statuses)
	}
	rows, _ := b.pool.Query(t.Context(), `SELECT d.id, d.external_domain, d.ingress_version, td.tunnel_id, t.config_version, td.backend_url
		FROM custom_domains d JOIN tenant_deployments td ON td.id = d.tenant_deployment_id JOIN tunnels t ON t.id = td.tunnel_id`)
	type row struct {
		id      int64
		host    string
		version *int64
		tunnel  int64
		current int64
		service string
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.host, &x.version, &x.tunnel, &x.current, &x.service)
		return x, err
	})
	if err != nil || len(got) != 16 {
		t.Fatalf("%d routed domains (%v), want 16", len(got), err)
	}
	desired := map[int64]map[string]string{}
	for _, tun := range []int64{t1, t2} {
		desired[tun], _ = b.desired(tun)
	}
	for _, d := range got {
		if d.version == nil || *d.version > d.current {
			t.Errorf("domain %s: ingress_version %s, tunnel %d at %d", d.host, fmtPtr(d.version), d.tunnel, d.current)
		}
		for tun, rules := range desired {
			if svc, ok := rules[d.host]; ok != (tun == d.tunnel) || (ok && svc != d.service) {
				t.Errorf("domain %s on tunnel %d → %s: tunnel %d routes it to %q (present %v)", d.host, d.tunnel, d.service, tun, svc, ok)
			}
		}
	}
}
