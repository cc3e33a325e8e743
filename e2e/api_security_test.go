package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
)

// The REST API's security properties, each shown by the attack against `sajet-controlplane serve`.

// apiServer is a running `sajet-controlplane serve` without the agent gateway.
type apiServer struct {
	url string
	p   *proctest.Proc
}

// serveAPI starts serve on dbURL with extra flags and environment variables.
func serveAPI(t *testing.T, dbURL string, env []string, flags ...string) *apiServer {
	t.Helper()
	bin, _ := proctest.Binaries(t)
	cmd := exec.Command(bin, append([]string{"serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0",
		"--dns-resolver", "127.0.0.1:9"}, flags...)...)
	cmd.Env = append(os.Environ(), env...)
	p := proctest.Start(t, "cp", cmd)
	url := proctest.WaitLine(t, p.Lines, regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)`), 60*time.Second)
	return &apiServer{url: url, p: p}
}

// newToken runs `token create` and returns the token.
func newToken(t *testing.T, dbURL string, args ...string) string {
	t.Helper()
	bin, _ := proctest.Binaries(t)
	out, err := exec.Command(bin, append([]string{"token", "create", "--database-url", dbURL}, args...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) field(t *testing.T, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("not a JSON object (%d): %s", a.status, a.body)
	}
	return m[name]
}

// request sends one request; hdr may carry Authorization as a whole value under "auth".
func request(t *testing.T, method, url, token, body string, hdr ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: string(data)}
}

// metricSum adds up every sample of a metric on /metrics.
func metricSum(t *testing.T, url, name string) float64 {
	t.Helper()
	a := request(t, "GET", url+"/metrics", "", "")
	sum := 0.0
	for _, line := range strings.Split(a.body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q", line)
		}
		sum += v
	}
	return sum
}

// wellFormedUnknown is a token of the right shape that no one holds.
const wellFormedUnknown = "sjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// floodUntil429 sends unknown tokens (with hdr) until the answer is 429.
func floodUntil429(t *testing.T, url string, hdr ...string) answer {
	t.Helper()
	for range 200 {
		a := request(t, "GET", url+"/api/domains", wellFormedUnknown, "", hdr...)
		if a.status == 429 {
			return a
		}
		if a.status != 401 {
			t.Fatalf("unknown token: %d %s", a.status, a.body)
		}
	}
	t.Fatal("200 unknown tokens were never refused with 429")
	return answer{}
}

// Issue 4. Before: ten bad or missing tokens from an address made every request from it a 429,
// the real admin's too. Now missing and malformed tokens are refused without a lookup and do not
// count; unknown ones do, and only they are refused once the address is over its budget.
func TestBadTokensDoNotLockOutTheAdmin(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	s := serveAPI(t, dbURL, nil)
	admin := newToken(t, dbURL, "--role", "admin")
	if a := request(t, "GET", s.url+"/api/domains", admin, ""); a.status != 200 {
		t.Fatalf("admin: %d", a.status)
	}

	lookups := metricSum(t, s.url, "sajet_api_token_lookups_total")
	for range 30 {
		for _, bad := range []string{"", "sjt_short", "xyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "sjt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$"} {
			if a := request(t, "GET", s.url+"/api/domains", bad, ""); a.status != 401 {
				t.Fatalf("token %q: %d, want 401", bad, a.status)
			}
		}
	}
	if n := metricSum(t, s.url, "sajet_api_token_lookups_total"); n != lookups {
		t.Errorf("120 missing or malformed tokens caused %v database lookups, want 0", n-lookups)
	}
	if a := request(t, "GET", s.url+"/api/domains", wellFormedUnknown, ""); a.status != 401 {
		t.Fatalf("unknown token: %d", a.status)
	}
	if n := metricSum(t, s.url, "sajet_api_token_lookups_total"); n != lookups+1 {
		t.Errorf("a well-formed unknown token caused %v lookups, want 1", n-lookups)
	}

	limited := floodUntil429(t, s.url)
	if limited.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if a := request(t, "GET", s.url+"/api/domains", admin, ""); a.status != 200 {
		t.Errorf("the admin token from the flooded address: %d %s, want 200", a.status, a.body)
	}
	// A token created a moment ago by another process, never used on this server.
	fresh := newToken(t, dbURL, "--role", "admin")
	if a := request(t, "GET", s.url+"/api/domains", fresh, ""); a.status != 200 {
		t.Errorf("a new valid token from the flooded address: %d %s, want 200", a.status, a.body)
	}
	// Without --trusted-proxy a client cannot pick another address with X-Forwarded-For.
	if a := request(t, "GET", s.url+"/api/domains", wellFormedUnknown, "", "X-Forwarded-For", "198.51.100.77"); a.status != 429 {
		t.Errorf("X-Forwarded-For from an untrusted peer bought a fresh budget: %d", a.status)
	}
}

// Issue 4. Behind the reverse proxy every client shares its address; with --trusted-proxy (here
// through its environment twin) each client is limited by the address X-Forwarded-For gives.
func TestClientsBehindATrustedProxyAreLimitedSeparately(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	s := serveAPI(t, dbURL, []string{"SAJET_TRUSTED_PROXY=127.0.0.0/8"})
	admin := newToken(t, dbURL, "--role", "admin")

	floodUntil429(t, s.url, "X-Forwarded-For", "198.51.100.1")
	if a := request(t, "GET", s.url+"/api/domains", wellFormedUnknown, "", "X-Forwarded-For", "198.51.100.2"); a.status != 401 {
		t.Errorf("a second client behind the proxy: %d, want 401 (its own budget)", a.status)
	}
	if a := request(t, "GET", s.url+"/api/domains", wellFormedUnknown, "", "X-Forwarded-For", "198.51.100.2, 198.51.100.1"); a.status != 429 {
		t.Errorf("client 1 naming client 2 on the left of its own address: %d, want 429", a.status)
	}
	if a := request(t, "GET", s.url+"/api/domains", admin, "", "X-Forwarded-For", "198.51.100.1"); a.status != 200 {
		t.Errorf("the admin behind the proxy, from the flooded client's address: %d", a.status)
	}
	if a := request(t, "GET", s.url+"/healthz", "", "", "X-Request-Id", "edge-7f3a"); a.header.Get("X-Request-Id") != "edge-7f3a" {
		t.Errorf("the trusted proxy's X-Request-Id was replaced by %q", a.header.Get("X-Request-Id"))
	}
}

// Issue 6. Two replicas on one database: a token revoked through replica A stops working on
// replica B at once, where B held it as valid (the old code cached it for 10 s).
func TestRevocationReachesTheOtherReplicaAtOnce(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	a := serveAPI(t, dbURL, nil)
	b := serveAPI(t, dbURL, nil)
	admin := newToken(t, dbURL, "--role", "admin")

	created := request(t, "POST", a.url+"/api/tokens", admin, `{"role":"admin","name":"temp"}`)
	if created.status != 201 {
		t.Fatalf("create token: %d %s", created.status, created.body)
	}
	token, id := created.field(t, "token").(string), int64(created.field(t, "id").(float64))
	if r := request(t, "GET", b.url+"/api/domains", token, ""); r.status != 200 {
		t.Fatalf("replica B before the revocation: %d", r.status)
	}
	if r := request(t, "DELETE", fmt.Sprintf("%s/api/tokens/%d", a.url, id), admin, ""); r.status != 204 {
		t.Fatalf("revoke on A: %d", r.status)
	}
	// B learns it from PostgreSQL's notification, sent at commit and delivered asynchronously: the
	// DELETE's answer can overtake it by milliseconds, so B gets up to 2 s (a bound for a loaded
	// machine; the old cache answered 200 for 10 s).
	tries := 0
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		tries++
		if r := request(t, "GET", b.url+"/api/domains", token, ""); r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica B still accepts the revoked token after 2 s (%d tries)", tries)
		}
	}
	t.Logf("replica B refused the revoked token on try %d", tries)
}

// Issue 7. Before: a NUL in q= or in a name reached PostgreSQL and came back as a 500 carrying
// "invalid byte sequence … SQLSTATE 22021". Now it is a 422; and a real 500 shows only a request
// id, under which the error is logged.
func TestNULIsRefusedAndInternalErrorsAreHidden(t *testing.T) {
	t.Parallel()
	pool, dbURL := storetest.NewDBURL(t)
	s := serveAPI(t, dbURL, nil)
	admin := newToken(t, dbURL, "--role", "admin")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/domains?q=%00", ""},
		{"GET", "/api/domains?q=impulse%00max", ""},
		{"GET", "/api/domains?q=%ff", ""},
		{"GET", "/api/domains/www.x%00.com", ""},
		{"POST", "/api/tokens", `{"role":"admin","name":"ci\u0000"}`},
		{"POST", "/api/customers", `{"email":"ops@x.com","company_name":"Impulse\u0000Max"}`},
		{"POST", "/api/domains", `{"external_domain":"www.impulse\u0000max.com","customer_id":1}`},
	} {
		a := request(t, c.method, s.url+c.path, admin, c.body)
		if a.status != 422 || strings.Contains(a.body, "SQLSTATE") {
			t.Errorf("%s %s %s: %d %s, want 422 without SQL", c.method, c.path, c.body, a.status, a.body)
		}
	}

	// Force a 500: the table is gone.
	if _, err := pool.Exec(context.Background(), `ALTER TABLE custom_domains RENAME TO custom_domains_away`); err != nil {
		t.Fatal(err)
	}
	lines := s.p.Watch()
	a := request(t, "GET", s.url+"/api/domains", admin, "")
	rid := a.header.Get("X-Request-Id")
	if a.status != 500 || rid == "" || a.field(t, "request_id") != rid || a.field(t, "code") != "internal_error" {
		t.Fatalf("forced 500: %d X-Request-Id=%q %s", a.status, rid, a.body)
	}
	if strings.Contains(a.body, "SQLSTATE") || strings.Contains(a.body, "custom_domains") {
		t.Errorf("the 500 shows internals: %s", a.body)
	}
	proctest.WaitLine(t, lines, regexp.MustCompile(`request_id=`+regexp.QuoteMeta(rid)+`.*SQLSTATE 42P01`), 10*time.Second)
}

// Issue 10. Answers with secrets are never cacheable; every answer says nosniff.
func TestSecretsAreNotCacheable(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	s := serveAPI(t, dbURL, nil)
	admin := newToken(t, dbURL, "--role", "admin")
	must := func(status int, method, path, body string) answer {
		t.Helper()
		a := request(t, method, s.url+path, admin, body)
		if a.status != status {
			t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
		}
		return a
	}
	must(201, "POST", "/api/customers", `{"email":"ops@a.com","company_name":"A"}`)
	must(201, "POST", "/api/customers", `{"email":"ops@b.com","company_name":"B"}`)
	must(201, "POST", "/api/tunnels", `{"name":"t1","cloudflare_tunnel_id":"6ff42ae2-765d-4adf-8112-31c55c1551ef"}`)
	secrets := map[string]answer{
		"POST /api/tokens":          must(201, "POST", "/api/tokens", `{"role":"admin"}`),
		"POST /api/agents":          must(201, "POST", "/api/agents", `{"tunnel_id":1,"name":"pct-105"}`),
		"POST /api/domains":         must(201, "POST", "/api/domains", `{"external_domain":"www.impulse-max.com","customer_id":1}`),
		"GET /api/domains/{d}":      must(200, "GET", "/api/domains/www.impulse-max.com", ""),
		"domain_taken with a claim": must(409, "POST", "/api/domains", `{"external_domain":"www.impulse-max.com","customer_id":2}`),
		"GET /api/domains (a list)": must(200, "GET", "/api/domains", ""),
		"401":                       request(t, "GET", s.url+"/api/domains", "", ""),
	}
	if !strings.Contains(secrets["domain_taken with a claim"].body, `"claim"`) {
		t.Fatalf("domain_taken without a claim: %s", secrets["domain_taken with a claim"].body)
	}
	for what, a := range secrets {
		if a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: Cache-Control=%q X-Content-Type-Options=%q", what, a.header.Get("Cache-Control"), a.header.Get("X-Content-Type-Options"))
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		if a := request(t, "GET", s.url+path, "", ""); a.header.Get("X-Content-Type-Options") != "nosniff" || a.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: X-Content-Type-Options=%q X-Request-Id=%q", path, a.header.Get("X-Content-Type-Options"), a.header.Get("X-Request-Id"))
		}
	}
}

// Issue 11. With --http-max-conns 3, three open connections keep working and a fourth waits
// (unanswered) until one of them closes.
func TestConnectionCap(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	s := serveAPI(t, dbURL, nil, "--http-max-conns", "3")
	addr := strings.TrimPrefix(s.url, "http://")
	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	dial := func() conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return conn{c, bufio.NewReader(c)}
	}
	ask := func(c conn) { // one keep-alive request
		t.Helper()
		if _, err := io.WriteString(c.c, "GET /healthz HTTP/1.1\r\nHost: sajet\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(c conn, within time.Duration) (int, error) {
		_ = c.c.SetReadDeadline(time.Now().Add(within))
		res, err := http.ReadResponse(c.r, nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	held := []conn{dial(), dial(), dial()}
	for i, c := range held {
		ask(c)
		if code, err := answer(c, 30*time.Second); err != nil || code != 200 {
			t.Fatalf("connection %d: %d %v", i, code, err)
		}
	}
	extra := dial() // the kernel completes the handshake; the server does not accept it
	ask(extra)
	if code, err := answer(extra, 500*time.Millisecond); err == nil {
		t.Fatalf("a fourth connection was served (%d) with three open and a cap of 3", code)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("the fourth connection failed instead of waiting: %v", err)
	}
	ask(held[0])
	if code, err := answer(held[0], 30*time.Second); err != nil || code != 200 {
		t.Fatalf("an open connection stopped working at the cap: %d %v", code, err)
	}
	held[1].c.Close()
	if code, err := answer(extra, 30*time.Second); err != nil || code != 200 {
		t.Errorf("the waiting connection was not served after one closed: %d %v", code, err)
	}
}

// Issue 11. One customer repeating verify gets 429 verify_rate_limited (with Retry-After), admins
// asking for its domain too, while another customer's verification still runs.
func TestVerifyFloodIsLimitedToItsCustomer(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	s := serveAPI(t, dbURL, nil)
	admin := newToken(t, dbURL, "--role", "admin")
	for _, body := range []string{`{"email":"ops@a.com","company_name":"A"}`, `{"email":"ops@b.com","company_name":"B"}`} {
		if a := request(t, "POST", s.url+"/api/customers", admin, body); a.status != 201 {
			t.Fatal(a.body)
		}
	}
	tokA, tokB := newToken(t, dbURL, "--role", "customer", "--customer-id", "1"), newToken(t, dbURL, "--role", "customer", "--customer-id", "2")
	for tok, host := range map[string]string{tokA: "www.alpha.com", tokB: "www.beta.com"} {
		if a := request(t, "POST", s.url+"/api/domains", tok, `{"external_domain":"`+host+`"}`); a.status != 201 {
			t.Fatal(a.body)
		}
	}
	var limited answer
	for range 100 {
		a := request(t, "POST", s.url+"/api/domains/www.alpha.com/verify", tokA, "")
		if a.status == 429 {
			limited = a
			break
		}
		if a.status != 400 {
			t.Fatalf("verify: %d %s", a.status, a.body)
		}
	}
	if limited.status != 429 || limited.field(t, "code") != "verify_rate_limited" || limited.header.Get("Retry-After") == "" {
		t.Fatalf("a verify flood was never limited: %d %s", limited.status, limited.body)
	}
	if a := request(t, "POST", s.url+"/api/domains/www.alpha.com/verify", admin, ""); a.status != 429 {
		t.Errorf("an admin verifying the flooded domain: %d, want 429 (the customer's budget)", a.status)
	}
	if a := request(t, "POST", s.url+"/api/domains/www.beta.com/verify", tokB, ""); a.status != 400 || a.field(t, "status") != "failed" {
		t.Errorf("another customer's verification during the flood: %d %s, want the DNS verdict", a.status, a.body)
	}
}
