package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// send is do with extra request headers; body is sent as JSON text when not empty.
func (b *bundle) send(url, method, path, token string, hdr map[string]string, body string) response {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// follow runs the server's LISTEN loop on the test's database until the test ends, and waits
// until its first session has loaded the tokens.
func (b *bundle) follow(srv *api.Server) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.FollowTokens(ctx, b.pool.Config().ConnConfig, time.Hour)
	}()
	b.t.Cleanup(func() { cancel(); <-done })
	testwait.Until(b.t, 20*time.Second, "the token listener's first session", func() bool { return metric(b.t, srv, "sajet_api_token_listener_up", "") == 1 })
}

// another is a second replica on the same database, served over HTTP, following tokens when follow.
func (b *bundle) another(follow bool) (*api.Server, string) {
	b.t.Helper()
	srv := api.New(api.Config{Store: b.store, Domains: domains.New(b.store, nil, domains.Config{Zone: "sajet.us"}, nil)})
	hs := httptest.NewServer(srv)
	b.t.Cleanup(hs.Close)
	if follow {
		b.follow(srv)
	}
	return srv, hs.URL
}

// metric is the sum of a metric's samples whose labels include label ("name=value"; "" for all).
func metric(t testing.TB, srv *api.Server, name, label string) float64 {
	t.Helper()
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !hasLabel(m, label) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, label string) bool {
	name, value, _ := strings.Cut(label, "=")
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// newDBToken creates an admin token straight in the database, as another replica or
// `sajet-controlplane token create` would: this server has never seen it.
func (b *bundle) newDBToken() (string, int64) {
	b.t.Helper()
	secret, hash := api.NewToken()
	tok, err := b.store.CreateAPIToken(context.Background(), "test", hash, api.RoleAdmin, nil, "elsewhere")
	if err != nil {
		b.t.Fatal(err)
	}
	return secret, tok.ID
}

// block sends unknown, well-formed tokens with hdr until the answer is 429 and returns it.
func (b *bundle) block(url string, hdr map[string]string) response {
	b.t.Helper()
	guess, _ := api.NewToken()
	for range 100 {
		if r := b.send(url, "GET", "/api/domains", guess, hdr, ""); r.status == 429 {
			return r
		} else if r.status != 401 {
			b.t.Fatalf("unknown token: %d %s", r.status, r.body)
		}
	}
	b.t.Fatal("100 unknown tokens were never answered 429")
	return response{}
}

// Issue 4: bad tokens from an address no longer lock out valid tokens from it — not the ones this
// replica knows, and not one created elsewhere a moment ago that it has never seen (the barrier).
// Missing and malformed tokens never reach the database and do not count against the address.
func TestValidTokensAreNeverRefusedByTheLimiter(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) { o.authBurst = 3 })
	b.follow(b.api)

	lookups := func() float64 { return metric(t, b.api, "sajet_api_token_lookups_total", "") }
	before := lookups()
	for _, bad := range []string{"", "Basic dXNlcjpwYXNz", "Bearer", "Bearer sjt_short", "Bearer xyz_" + strings.Repeat("a", 43),
		"Bearer sjt_" + strings.Repeat("a", 42) + "!", "Bearer sjt_" + strings.Repeat("a", 44), "Bearer " + strings.Repeat("x", 5000)} {
		for range 10 { // far more than the burst of 3: these never count
			req, _ := http.NewRequest("GET", b.url+"/api/domains", nil)
			if bad != "" {
				req.Header.Set("Authorization", bad)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 401 {
				t.Fatalf("Authorization %.40q: %d, want 401", bad, res.StatusCode)
			}
		}
	}
	if n := lookups(); n != before {
		t.Errorf("missing and malformed tokens caused %v database lookups, want none", n-before)
	}
	if n := metric(t, b.api, "sajet_api_auth_refusals_total", "reason=malformed"); n != 50 {
		t.Errorf("malformed refusals counted %v, want 50", n)
	}
	if n := metric(t, b.api, "sajet_api_auth_refusals_total", "reason=missing"); n != 30 {
		t.Errorf("missing-token refusals counted %v, want 30", n)
	}

	limited := b.block(b.url, nil)
	if limited.header.Get("Retry-After") == "" || limited.json(t)["code"] != "rate_limited" {
		t.Errorf("429 without Retry-After or code rate_limited: %v %s", limited.header, limited.body)
	}
	if n := lookups(); n != before+3 {
		t.Errorf("%v lookups for unknown tokens, want the burst of 3 (the 429s look nothing up)", n-before)
	}

	// The admin token this replica knows: accepted.
	if r := b.do("GET", "/api/domains", b.admin, nil); r.status != 200 {
		t.Errorf("known valid token from a blocked address: %d %s", r.status, r.body)
	}
	// A token created elsewhere this instant, never seen here, from the blocked address: accepted
	// on the first try, without a lookup (the notification or the barrier brings it).
	fresh, _ := b.newDBToken()
	lookupsBefore := lookups()
	if r := b.do("GET", "/api/domains", fresh, nil); r.status != 200 {
		t.Errorf("a valid token created elsewhere, from a blocked address: %d %s", r.status, r.body)
	}
	if n := lookups(); n != lookupsBefore {
		t.Errorf("accepting it took %v lookups from a blocked address, want 0", n-lookupsBefore)
	}
	// Unknown tokens from the blocked address are still refused, without lookups.
	guess, _ := api.NewToken()
	if r := b.do("GET", "/api/domains", guess, nil); r.status != 429 {
		t.Errorf("unknown token from a blocked address: %d", r.status)
	}
	if n := lookups(); n != lookupsBefore {
		t.Errorf("an unknown token from a blocked address was looked up")
	}

	// A replica that does not follow the channel (its set is a cache) still accepts the tokens it
	// has confirmed, whatever the limiter says about the address.
	r2, url2 := b.another(false)
	if r := b.send(url2, "GET", "/api/domains", b.admin, nil, ""); r.status != 200 {
		t.Fatalf("replica 2: %d", r.status)
	}
	b.block(url2, nil)
	if r := b.send(url2, "GET", "/api/domains", b.admin, nil, ""); r.status != 200 {
		t.Errorf("replica 2, blocked address, confirmed token: %d", r.status)
	}
	_ = r2
}

// A valid token whose notification has not been processed yet, from a blocked address: the
// request waits for the barrier (its own notification, delivered after the token's) instead of
// being refused. The token's notification is held up by a lock on api_tokens, which the listener
// needs to read the row.
func TestBarrierAcceptsATokenWhoseNotificationIsLate(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) { o.authBurst = 2 })
	b.follow(b.api)
	b.block(b.url, nil)

	// A token the listener has not heard of: inserted with the trigger off.
	b.exec(`ALTER TABLE api_tokens DISABLE TRIGGER api_token_change`)
	late, lateID := b.newDBToken()
	b.exec(`ALTER TABLE api_tokens ENABLE TRIGGER api_token_change`)

	tx, err := b.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck
	if _, err := tx.Exec(t.Context(), `LOCK TABLE api_tokens IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	b.exec(`SELECT pg_notify('sajet_api_token', $1::bigint::text)`, lateID) // the listener blocks reading it
	testwait.Until(t, 20*time.Second, "the listener to wait for the lock", func() bool {
		var n int
		_ = b.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%FROM api_tokens WHERE id =%'`).Scan(&n)
		return n == 1
	})
	barriers := metric(t, b.api, "sajet_api_token_barriers_total", "ok=true") // block's 429 waited for one too
	got := make(chan response, 1)
	go func() { got <- b.send(b.url, "GET", "/api/domains", late, nil, "") }()
	testwait.Until(t, 20*time.Second, "the request to wait for a barrier", func() bool { return api.BarrierWaiters(b.api) == 1 })
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.status != 200 {
		t.Errorf("a valid token announced late, from a blocked address: %d %s", r.status, r.body)
	}
	if n := metric(t, b.api, "sajet_api_token_barriers_total", "ok=true"); n != barriers+1 {
		t.Errorf("%v barriers completed for the request, want 1", n-barriers)
	}
}

// Issue 4: behind a trusted proxy, clients are told apart by X-Forwarded-For (the right-most
// address that is not a trusted proxy); IPv6 clients by their /64. Without the option, the header
// is ignored, so a client cannot pick its own address.
func TestTrustedProxyClientsAreLimitedSeparately(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) {
		o.authBurst = 3
		o.configure = func(c *api.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
		}
	})
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }
	guess, _ := api.NewToken()

	b.block(b.url, xff("198.51.100.1"))
	for _, h := range []string{
		"198.51.100.1",
		"203.0.113.50, 198.51.100.1", // a client-written entry on the left changes nothing
		"198.51.100.1, 10.1.2.3",     // a second trusted proxy on the right is skipped
		"[::ffff:198.51.100.1]:4711", // mapped, with a port
	} {
		if r := b.send(b.url, "GET", "/api/domains", guess, xff(h), ""); r.status != 429 {
			t.Errorf("X-Forwarded-For %q (client 198.51.100.1): %d, want 429", h, r.status)
		}
	}
	for _, h := range []string{"198.51.100.2", "198.51.100.1, 198.51.100.2"} {
		if r := b.send(b.url, "GET", "/api/domains", guess, xff(h), ""); r.status != 401 {
			t.Errorf("X-Forwarded-For %q (client 198.51.100.2): %d, want 401 (its own budget)", h, r.status)
		}
	}
	// The proxy itself (no header) has its own budget too.
	if r := b.send(b.url, "GET", "/api/domains", guess, nil, ""); r.status != 401 {
		t.Errorf("the proxy's own address: %d, want 401", r.status)
	}

	// IPv6: one budget per /64.
	b.block(b.url, xff("2001:db8:1:2::1"))
	if r := b.send(b.url, "GET", "/api/domains", guess, xff("2001:db8:1:2:ffff::9"), ""); r.status != 429 {
		t.Errorf("another address of the same /64: %d, want 429", r.status)
	}
	if r := b.send(b.url, "GET", "/api/domains", guess, xff("2001:db8:1:3::1"), ""); r.status != 401 {
		t.Errorf("the next /64: %d, want 401", r.status)
	}

	// A trusted proxy's request id is kept; a sane one only.
	if r := b.send(b.url, "GET", "/healthz", "", map[string]string{"X-Request-Id": "edge-42.a:b"}, ""); r.header.Get("X-Request-Id") != "edge-42.a:b" {
		t.Errorf("a trusted proxy's X-Request-Id was replaced by %q", r.header.Get("X-Request-Id"))
	}
	if r := b.send(b.url, "GET", "/healthz", "", map[string]string{"X-Request-Id": "bad id\twith spaces"}, ""); strings.Contains(r.header.Get("X-Request-Id"), " ") {
		t.Errorf("an insane X-Request-Id was kept: %q", r.header.Get("X-Request-Id"))
	}

	// Not trusted: the header is ignored, every client is the peer.
	plain := setup(t, func(o *options) { o.authBurst = 3 })
	plain.block(plain.url, xff("198.51.100.1"))
	if r := plain.send(plain.url, "GET", "/api/domains", guess, xff("198.51.100.2"), ""); r.status != 429 {
		t.Errorf("without --trusted-proxy, X-Forwarded-For chose a fresh budget: %d", r.status)
	}
	if r := plain.send(plain.url, "GET", "/healthz", "", map[string]string{"X-Request-Id": "chosen-by-client"}, ""); r.header.Get("X-Request-Id") == "chosen-by-client" {
		t.Error("an untrusted client chose its request id")
	}
}

// Issue 6: a revocation on one replica reaches the others through NOTIFY, not after their 10 s
// cache; so does one written in SQL by hand, and one missed while the listener was disconnected
// (the reconnect reloads every token).
func TestRevocationReachesEveryReplica(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.follow(b.api)
	_, urlB := b.another(true)

	m := b.must(201, "POST", "/api/tokens", b.admin, map[string]any{"role": "admin", "name": "temp"})
	token := m["token"].(string)
	if r := b.send(urlB, "GET", "/api/domains", token, nil, ""); r.status != 200 {
		t.Fatalf("replica B before the revocation: %d", r.status) // B now holds it (old code: cached 10 s)
	}
	b.must(204, "DELETE", fmt.Sprintf("/api/tokens/%d", id(m)), b.admin, nil)
	// The notification is sent at commit and delivered asynchronously, so B may answer one request
	// that raced it; allow 2 s (a bound for a loaded machine, five times under the old cache's
	// 10 s, which made B answer 200 for that long).
	refusedWithin(t, b, urlB, token, 2*time.Second)

	// By hand in psql: the trigger announces it as well.
	token2, id2 := b.newDBToken()
	if r := b.send(urlB, "GET", "/api/domains", token2, nil, ""); r.status != 200 {
		t.Fatalf("replica B, token 2: %d", r.status)
	}
	b.exec(`UPDATE api_tokens SET revoked_at = now() WHERE id = $1`, id2)
	refusedWithin(t, b, urlB, token2, 2*time.Second)

	// Missed while disconnected: kill the listeners' connections, revoke once they are gone, and
	// the new sessions' reload drops the token.
	token3, id3 := b.newDBToken()
	if r := b.send(b.url, "GET", "/api/domains", token3, nil, ""); r.status != 200 {
		t.Fatalf("token 3: %d", r.status)
	}
	sessions := metric(t, b.api, "sajet_api_token_listener_sessions_total", "")
	listeners := func() int {
		var n int
		if err := b.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN sajet_api_token'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	b.exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN sajet_api_token'`)
	testwait.Until(t, 20*time.Second, "the listeners' connections to end", func() bool { return listeners() < 2 || metric(t, b.api, "sajet_api_token_listener_up", "") == 0 })
	b.exec(`UPDATE api_tokens SET revoked_at = now() WHERE id = $1`, id3)
	testwait.Until(t, 20*time.Second, "a new listener session", func() bool { return metric(t, b.api, "sajet_api_token_listener_sessions_total", "") > sessions })
	if r := b.do("GET", "/api/domains", token3, nil); r.status != 401 {
		t.Errorf("a token revoked while the listener was away works after it reconnected: %d", r.status)
	}
}

func refusedWithin(t *testing.T, b *bundle, url, token string, bound time.Duration) {
	t.Helper()
	tries := 0
	for deadline := time.Now().Add(bound); ; time.Sleep(10 * time.Millisecond) {
		tries++
		r := b.send(url, "GET", "/api/domains", token, nil, "")
		if r.status == 401 {
			t.Logf("revoked token refused on try %d", tries)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked token still accepted after %s (%d tries): %d", bound, tries, r.status)
		}
	}
}

// syncBuffer is a log sink for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Issue 7: a 5xx shows a generic message and the request id (body and X-Request-Id); the error
// itself is logged with that id. Nothing of SQL reaches a client.
func TestInternalErrorsAreLoggedNotShown(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setup(t, func(o *options) {
		o.configure = func(c *api.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }
	})
	b.must(200, "GET", "/api/domains", b.admin, nil)
	b.exec(`ALTER TABLE custom_domains RENAME TO custom_domains_gone`)
	r := b.do("GET", "/api/domains", b.admin, nil)
	rid := r.header.Get("X-Request-Id")
	body := r.json(t)
	if r.status != 500 || body["code"] != "internal_error" || rid == "" || body["request_id"] != rid ||
		!strings.Contains(body["detail"].(string), rid) {
		t.Fatalf("forced 500: %d X-Request-Id=%q %s", r.status, rid, r.body)
	}
	if regexp.MustCompile(`(?i)sqlstate|custom_domains|relation|select`).Match(r.body) {
		t.Errorf("the 500 shows internals: %s", r.body)
	}
	logged := logs.String()
	if !regexp.MustCompile(`request_id=` + regexp.QuoteMeta(rid) + `.*SQLSTATE 42P01`).MatchString(logged) {
		t.Errorf("the error is not logged with request id %s:\n%s", rid, logged)
	}

	// The database unreachable while a token must be looked up: 503, generic, logged.
	b.exec(`ALTER TABLE custom_domains_gone RENAME TO custom_domains`)
	b.exec(`ALTER TABLE api_tokens RENAME TO api_tokens_gone`)
	unknown, _ := api.NewToken()
	r = b.do("GET", "/api/domains", unknown, nil)
	rid = r.header.Get("X-Request-Id")
	if r.status != 503 || r.json(t)["request_id"] != rid || strings.Contains(string(r.body), "SQLSTATE") {
		t.Errorf("lookup failure: %d %s", r.status, r.body)
	}
	if !strings.Contains(logs.String(), "request_id="+rid) {
		t.Errorf("the lookup failure is not logged with its request id %s", rid)
	}
}

// Issue 7: NUL bytes and invalid UTF-8 anywhere in the input are a 422 before any query; a body
// that does not parse is not echoed back.
func TestNULAndInvalidUTF8AreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	for _, path := range []string{
		"/api/domains?q=%00", "/api/domains?q=www%00.x.com", "/api/domains?q=%ff%fe", "/api/domains?%00=1",
		"/api/domains/www.x%00.com", "/api/domains/%c3%28", "/api/customers?after=1&q=%00",
	} {
		r := b.do("GET", path, b.admin, nil)
		if r.status != 422 || r.json(t)["code"] != "validation_failed" {
			t.Errorf("GET %s: %d %s, want 422 validation_failed", path, r.status, r.body)
		}
		if strings.Contains(string(r.body), "SQLSTATE") {
			t.Errorf("GET %s: %s", path, r.body)
		}
	}
	for _, tc := range []struct {
		path, body, field string
	}{
		{"/api/tokens", `{"role":"admin","name":"ci\u0000"}`, "body.name"},
		{"/api/tokens", `{"role":"admin","name":"ci\ud800"}`, "body.name"},
		{"/api/tokens", `{"role":"admin","name":"ci\udc00x"}`, "body.name"},
		{"/api/tokens", "{\"role\":\"admin\",\"name\":\"ci\xff\"}", "body.name"},
		{"/api/domains", `{"external_domain":"www.a\u0000b.com","customer_id":` + fmt.Sprint(c) + `}`, "body.external_domain"},
		{"/api/customers", `{"email":"a@b.co","company_name":"\u0000"}`, "body.company_name"},
	} {
		r := b.send(b.url, "POST", tc.path, b.admin, nil, tc.body)
		var p struct {
			Code   string `json:"code"`
			Errors []struct {
				Location string `json:"location"`
			} `json:"errors"`
		}
		_ = json.Unmarshal(r.body, &p)
		if r.status != 422 || p.Code != "validation_failed" || len(p.Errors) != 1 || p.Errors[0].Location != tc.field {
			t.Errorf("POST %s %q: %d %s, want 422 validation_failed at %s", tc.path, tc.body, r.status, r.body, tc.field)
		}
		if strings.Contains(string(r.body), "SQLSTATE") {
			t.Errorf("POST %s: %s", tc.path, r.body)
		}
	}
	// Real text passes: escapes, a surrogate pair, a literal backslash-u.
	b.must(201, "POST", "/api/tokens", b.admin, map[string]any{"role": "admin", "name": `ñandú 😀 \u0000 "q"`})
	if r := b.send(b.url, "POST", "/api/tokens", b.admin, nil, `{"role":"admin","name":"emoji \ud83d\ude00 \\u0000"}`); r.status != 201 {
		t.Errorf("a surrogate pair and an escaped backslash: %d %s", r.status, r.body)
	}

	// A body that does not parse is not repeated back.
	secret := "do-not-echo-" + strings.Repeat("x", 300)
	r := b.send(b.url, "POST", "/api/tokens", b.admin, nil, `{"role":"admin","name":"`+secret)
	if r.status < 400 || r.status >= 500 || strings.Contains(string(r.body), "do-not-echo") {
		t.Errorf("malformed JSON: %d %s", r.status, r.body)
	}
	r = b.send(b.url, "POST", "/api/tokens", b.admin, nil, `{"role":"admin","name":"`+secret+`"}`)
	if r.status != 422 || strings.Contains(string(r.body), "do-not-echo") {
		t.Errorf("a too-long name: %d %s, want 422 without the value", r.status, r.body)
	}
}

// Issue 10: secrets are never cacheable; every response says nosniff and carries a request id.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.customer("ImpulseMax", "basic")
	other := b.customer("Other", "basic")
	check := func(what string, r response, noStore bool) {
		t.Helper()
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: X-Content-Type-Options=%q X-Request-Id=%q", what, r.header.Get("X-Content-Type-Options"), r.header.Get("X-Request-Id"))
		}
		if noStore && r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", what, r.header.Get("Cache-Control"))
		}
	}
	r := b.do("POST", "/api/tokens", b.admin, map[string]any{"role": "admin"})
	check("POST /api/tokens", r, r.status == 201)
	tun := b.must(201, "POST", "/api/tunnels", b.admin, map[string]any{"name": "t1", "cloudflare_tunnel_id": "6ff42ae2-765d-4adf-8112-31c55c1551ef"})
	r = b.do("POST", "/api/agents", b.admin, map[string]any{"tunnel_id": id(tun), "name": "pct-105"})
	check("POST /api/agents", r, r.status == 201)
	r = b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": c})
	check("POST /api/domains", r, r.status == 201)
	r = b.do("GET", "/api/domains/www.impulse-max.com", b.admin, nil)
	check("GET /api/domains/{d}", r, r.status == 200)
	r = b.do("POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.impulse-max.com", "customer_id": other})
	if r.status != 409 || r.json(t)["claim"] == nil {
		t.Fatalf("domain_taken with a claim expected: %d %s", r.status, r.body)
	}
	check("domain_taken", r, true)
	check("401", b.do("GET", "/api/domains", "", nil), true)
	check("/healthz", b.do("GET", "/healthz", "", nil), false)
	check("/openapi.json", b.do("GET", "/openapi.json", "", nil), false)
}

// Issue 11: one customer's verifications cannot crowd out another's: at most two run at once per
// customer (admins asking count for the domain's customer), and each domain and customer has a
// budget of checks.
func TestVerifyIsLimitedPerCustomer(t *testing.T) {
	t.Parallel()
	// Dropped queries hold a check until the verifier's timeout (a cancelled request does not end
	// a DNS exchange in flight): long enough for the test's requests on a loaded machine.
	b := setup(t, func(o *options) { o.verifyTimeout = 10 * time.Second })
	a, other := b.customer("Alpha", "basic"), b.customer("Beta", "basic")
	tokA := b.customerToken(a)
	for i := range 3 {
		b.must(201, "POST", "/api/domains", tokA, map[string]any{"external_domain": fmt.Sprintf("www.slow%d.com", i)})
		b.dns.SetNameDrop(fmt.Sprintf("www.slow%d.com", i), true) // the checks hang until the timeout
	}
	b.must(201, "POST", "/api/domains", b.admin, map[string]any{"external_domain": "www.beta.com", "customer_id": other})

	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range 2 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/domains/www.slow%d.com/verify", b.url, i), nil)
			req.Header.Set("Authorization", "Bearer "+tokA)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		})
	}
	testwait.Until(t, 20*time.Second, "two verifications in flight", func() bool {
		return b.dns.QueriesFor("www.slow0.com") > 0 && b.dns.QueriesFor("www.slow1.com") > 0
	})
	for _, tok := range []string{tokA, b.admin} {
		r := b.do("POST", "/api/domains/www.slow2.com/verify", tok, nil)
		if r.status != 429 || r.json(t)["code"] != "verify_rate_limited" || r.header.Get("Retry-After") == "" {
			t.Errorf("third concurrent verification of Alpha's domains: %d %v %s", r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if r := b.do("POST", "/api/domains/www.beta.com/verify", b.admin, nil); r.status != 400 || r.json(t)["status"] != "failed" {
		t.Errorf("Beta's verification while Alpha's two hang: %d %s, want the DNS verdict (400 failed)", r.status, r.body)
	}
	wg.Wait()
	// Both done: Alpha may verify again.
	b.dns.SetNameDrop("www.slow2.com", false)
	if r := b.do("POST", "/api/domains/www.slow2.com/verify", tokA, nil); r.status == 429 {
		t.Errorf("Alpha's verification after its two finished: 429 %s", r.body)
	}

	// Repeated checks of one domain: the burst of 5, then 429 until the bucket refills.
	statuses := []int{}
	for range 6 {
		statuses = append(statuses, b.do("POST", "/api/domains/www.beta.com/verify", b.admin, nil).status)
	}
	if statuses[len(statuses)-1] != 429 {
		t.Errorf("six quick checks of one domain: %v, want the last refused", statuses)
	}
}
