package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/yamux"
	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify/dnstest"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/controlplane/web"
	"github.com/jeturing/sajet-domains/internal/secret"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// The browser: Debian's chromium, driven by chromedp (pinned in go.mod). One browser per test
// process; each test has tabs of its own.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel context.CancelFunc
	browserErr    error
)

// chromium finds the browser, or skips the test saying why (fails under CI=true, where .ci/run
// installs it).
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{os.Getenv("SAJET_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH (apt-get install chromium; .ci/run installs it): browser tests not run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func browser(t testing.TB) context.Context {
	t.Helper()
	path := chromium(t)
	browserOnce.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("lang", "es"),
			chromedp.WindowSize(1280, 900),
		)
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(alloc)
		// Start the browser now, so a broken install fails here with its reason.
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			browserErr = err
		}
		browserCtx, browserCancel = ctx, func() { cancel(); cancelAlloc() }
	})
	if browserErr != nil {
		t.Fatalf("start chromium: %v", browserErr)
	}
	return browserCtx
}

// stack is the real control plane for one test: PostgreSQL, the DNS server the verifier asks,
// the API with the embedded UI, live events, and the agent gateway.
type stack struct {
	t      testing.TB
	url    string
	st     *store.Store
	dns    *dnstest.Server
	admin  string
	gwAddr string
	ctx    context.Context
}

// stackOption changes the stack of one test.
type stackOption func(*stackConfig)

type stackConfig struct {
	// diagnose builds the diagnostics service from the stack's store and agent gateway (nil: the
	// API answers 503 diagnose_unavailable, as a control plane without it).
	diagnose func(st *store.Store, prober diagnose.Prober) api.Diagnoser
}

func newStack(t testing.TB, opts ...stackOption) *stack {
	t.Helper()
	var cfg stackConfig
	for _, o := range opts {
		o(&cfg)
	}
	pool, dbURL := storetest.NewDBURL(t)
	dnsSrv := dnstest.Start(t)
	verifier, err := dnsverify.New(dnsverify.Config{Resolvers: []string{dnsSrv.Addr()}, QueryTimeout: 2 * time.Second,
		CheckTimeout: 4 * time.Second, DisableCAA: true})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(pool)
	svc := domains.New(st, verifier, domains.Config{Zone: "sajet.us"}, nil)
	gw := &gateway.Server{Store: st, AckTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	acfg := api.Config{Store: st, Domains: svc, UI: web.Handler(), Logger: slog.New(slog.DiscardHandler)}
	if cfg.diagnose != nil {
		acfg.Diagnose = cfg.diagnose(st, gw)
	}
	a := api.New(acfg)
	srv := httptest.NewServer(a)
	ctx, cancel := context.WithCancel(context.Background())
	cc, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	go a.FollowTokens(ctx, cc, time.Minute)
	go a.FollowEvents(ctx, cc)

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{gatewaytest.Certificate(t)}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gw.Serve(ctx, ln) }()
	go func() { _ = (&gateway.Listener{ConnConfig: cc, ReconcileInterval: time.Minute}).Run(ctx, gw) }()
	t.Cleanup(func() {
		a.CloseStreams()
		cancel()
		srv.Close()
	})

	token, hash := api.NewToken()
	if _, err := st.CreateAPIToken(context.Background(), "test", hash, api.RoleAdmin, nil, "admin"); err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, url: srv.URL, st: st, dns: dnsSrv, admin: token, gwAddr: ln.Addr().String(), ctx: ctx}
}

// call is an API request with a bearer token; it returns the status and the decoded body.
func (s *stack) call(method, path, token string, body any) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

func (s *stack) must(want int, method, path, token string, body any) map[string]any {
	s.t.Helper()
	code, out := s.call(method, path, token, body)
	if code != want {
		s.t.Fatalf("%s %s: %d, want %d: %v", method, path, code, want, out)
	}
	return out
}

// customer creates a customer with a tenant deployment on a tunnel, and a customer token.
type customer struct {
	id, tunnel, deployment int64
	token                  string
}

func (s *stack) customer(name, tunnel string) customer {
	s.t.Helper()
	c := s.must(201, "POST", "/api/customers", s.admin, map[string]any{"email": "ops@" + name + ".example", "company_name": name})
	id := int64(c["id"].(float64))
	tun := s.must(201, "POST", "/api/tunnels", s.admin, map[string]any{"name": tunnel,
		"cloudflare_tunnel_id": fmt.Sprintf("6ff42ae2-765d-4adf-8112-%012d", id)})
	tunID := int64(tun["id"].(float64))
	td := s.must(201, "POST", "/api/tenant-deployments", s.admin, map[string]any{"customer_id": id, "name": "odoo",
		"tunnel_id": tunID, "backend_url": "http://10.10.10.105:8069"})
	tok := s.must(201, "POST", "/api/tokens", s.admin, map[string]any{"role": "customer", "customer_id": id})
	return customer{id: id, tunnel: tunID, deployment: int64(td["id"].(float64)), token: tok["token"].(string)}
}

// agent enrols an agent for tunnel and connects it through the real gateway; answer decides the
// answer to every push (gatewaytest.ACK applies everything).
func (s *stack) agent(tunnelID int64, tunnelName, name string, answer func(protocol.Desired) protocol.Ack) {
	s.t.Helper()
	s.probingAgent(tunnelID, tunnelName, name, answer, nil)
}

// probingAgent is agent that also answers the control plane's backend probes with probe (nil:
// probes go unanswered).
func (s *stack) probingAgent(tunnelID int64, tunnelName, name string, answer func(protocol.Desired) protocol.Ack,
	probe func(protocol.ProbeRequest) protocol.ProbeResult) {
	s.t.Helper()
	m := s.must(201, "POST", "/api/agents", s.admin, map[string]any{"tunnel_id": tunnelID, "name": name})
	sess, reply, err := gatewaytest.Connect(s.gwAddr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: name,
		Token: m["token"].(string), Tunnel: tunnelName, Build: "test"})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, ok := reply.(protocol.Welcome); !ok {
		s.t.Fatalf("hello answered with %#v", reply)
	}
	s.t.Cleanup(func() { sess.Close() })
	go serveAgent(sess, answer, probe)
}

// serveAgent answers every push (and, with probe, every probe) on sess until it closes.
func serveAgent(sess *yamux.Session, answer func(protocol.Desired) protocol.Ack, probe func(protocol.ProbeRequest) protocol.ProbeResult) {
	for {
		stream, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer stream.Close()
			_ = stream.SetDeadline(time.Now().Add(15 * time.Second))
			m, err := protocol.ReadMessage(stream, protocol.MaxFrameSize)
			if err != nil {
				return
			}
			switch m := m.(type) {
			case protocol.Desired:
				_ = protocol.WriteMessage(stream, answer(m))
			case protocol.ProbeRequest:
				if probe != nil {
					_ = protocol.WriteMessage(stream, probe(m))
				}
			}
		}()
	}
}

// signinLink returns a one-time sign-in link for token (as `make run` prints one).
func (s *stack) signinLink(token string) string {
	s.t.Helper()
	t, err := s.st.LookupAPIToken(context.Background(), secret.Hash(token))
	if err != nil {
		s.t.Fatal(err)
	}
	code, err := api.NewSigninCode(context.Background(), s.st, t.ID)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.url + "/ui/signin#code=" + code
}

// page is one browser tab with a console watcher.
type page struct {
	t   testing.TB
	ctx context.Context
	s   *stack

	mu       sync.Mutex
	problems []string
	expected []string // console messages a test provokes on purpose (allowConsole)
}

// allowConsole accepts console errors containing fragment: a test that makes the API refuse on
// purpose with a 5xx (the browser logs it) and checks the sentence the page shows instead.
func (p *page) allowConsole(fragment string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expected = append(p.expected, fragment)
}

// consoleProblem says whether a console message is a real problem. A refused API request is
// logged by the browser ("Failed to load resource: … 4xx") although the page handles it (it shows
// the sentence, which the tests check); everything else counts: exceptions, CSP violations,
// errors, a failed asset, any 5xx.
func consoleProblem(m chromedp.ConsoleMessage) bool {
	if m.Type != chromedp.ConsoleError && !m.IsException() {
		return false
	}
	text := m.String()
	if strings.Contains(text, "Failed to load resource: the server responded with a status of 4") && strings.Contains(m.URL, "/api/") {
		return false
	}
	return true
}

func (s *stack) newPage(t testing.TB) *page {
	t.Helper()
	// A browser context of its own: cookies and storage are not shared with other tests (all
	// servers are on 127.0.0.1, and cookies do not tell ports apart).
	ctx, cancel := chromedp.NewContext(browser(t), chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	p := &page{t: t, ctx: ctx, s: s}
	msgs := chromedp.Console(ctx)
	// Open the tab, so the console subscription has a target.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if consoleProblem(m) {
				text := fmt.Sprintf("%s (%s)", m.String(), m.URL)
				p.mu.Lock()
				if !slices.ContainsFunc(p.expected, func(f string) bool { return strings.Contains(text, f) }) {
					p.problems = append(p.problems, text)
				}
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		// Give messages of the last action a moment to arrive.
		_ = chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`0`))
		cancelTimeout()
		cancel()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pr := range p.problems {
			t.Errorf("browser console: %s", pr)
		}
	})
	return p
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("browser: %v\npage text: %s", err, p.textOrEmpty())
	}
}

func (p *page) textOrEmpty() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return s
}

// eval runs a JavaScript expression and returns its value.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true (30 s: the machine is shared).
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			return
		}
		// A navigation replaced the document while the poll ran in it: poll the new one.
		if ctx.Err() == nil && (strings.Contains(err.Error(), "Cannot find context") || strings.Contains(err.Error(), "context was destroyed")) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		p.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, cond, err, p.textOrEmpty())
	}
}

func (p *page) open(path string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.s.url + path))
}

// signIn opens a session for token through the sign-in form, as a person would.
func (p *page) signIn(token string) {
	p.t.Helper()
	p.open("/ui/")
	p.waitFor("the sign-in form", `!!document.querySelector('#signin-token')`)
	p.do(chromedp.SendKeys(chromedp.ID("signin-token"), token), chromedp.Click(chromedp.CSS(`form button[type=submit]`)))
	p.waitFor("the signed-in page", `!!document.querySelector('[data-live]')`)
}

func (p *page) text() string {
	p.t.Helper()
	return eval[string](p, `document.body.innerText`)
}

// axe runs axe-core (the version in ui/package-lock.json) on the page and fails on every serious or
// critical violation of WCAG 2 A and AA.
func (p *page) axe(where string) {
	p.t.Helper()
	src, err := os.ReadFile(filepath.Join("ui", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		msg := "axe-core is not installed (make ui runs npm ci): " + err.Error()
		if os.Getenv("CI") == "true" {
			p.t.Fatal(msg)
		}
		p.t.Log(msg + "; accessibility not checked")
		return
	}
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[chromedp.Void](string(src))); err != nil {
		p.t.Fatalf("inject axe-core: %v", err)
	}
	found, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']}).then(r =>
		r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
		 .map(v => v.impact + ' ' + v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(' | ')))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("axe-core: %v", err)
	}
	for _, v := range found {
		p.t.Errorf("accessibility (%s): %s", where, v)
	}
}
