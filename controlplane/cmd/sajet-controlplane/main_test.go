package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// The control-plane binary carries only itself: dev runs bin/sajet-agent as a child process
// instead of linking the agent (its D-Bus client, file watcher and apply pipeline).
func TestControlPlaneLinksNoAgent(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/jeturing/sajet-domains/agent") || strings.HasPrefix(pkg, "github.com/godbus/") ||
			strings.HasPrefix(pkg, "github.com/fsnotify/") || strings.HasPrefix(pkg, "github.com/coreos/go-systemd/v22/dbus") {
			t.Errorf("sajet-controlplane links %s", pkg)
		}
	}
}

func TestMigrateTokenServe(t *testing.T) {
	t.Parallel()
	bin, _ := proctest.Binaries(t)
	_, dbURL := storetest.NewDBURL(t)

	out, err := exec.Command(bin, "migrate", "--database-url", dbURL).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "up to date") {
		t.Fatalf("migrate on a migrated database: %v: %s", err, out)
	}

	cmd := exec.Command(bin, "token", "create", "--role", "admin")
	cmd.Env = append(os.Environ(), "SAJET_DATABASE_URL="+dbURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	tokOut, err := cmd.Output()
	if err != nil {
		t.Fatalf("token create: %v: %s", err, stderr.String())
	}
	token := strings.TrimSpace(string(tokOut))
	if !regexp.MustCompile(`^sjt_[A-Za-z0-9_-]{43}$`).MatchString(token) || strings.Count(string(tokOut), "\n") != 1 {
		t.Fatalf("token create printed %q, want the token alone on one line", tokOut)
	}
	if out, err := exec.Command(bin, "token", "create", "--database-url", dbURL, "--role", "customer").CombinedOutput(); err == nil {
		t.Errorf("a customer token without --customer-id was created: %s", out)
	}
	for _, bad := range [][]string{{"--cloudflare-concurrency", "0"}, {"--job-rescue-after", "1ms"}, {"--zone-typo", "x"},
		{"--http-max-conns", "0"}, {"--trusted-proxy", "10.0.0.0/33"}, {"--trusted-proxy", "proxy.local"}} {
		out, err := exec.Command(bin, append([]string{"serve", "--database-url", dbURL}, bad...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("serve %v: err=%v output %q, want a refusal naming the flag", bad, err, out)
		}
	}

	srv := exec.Command(bin, "serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0", "--dns-resolver", "127.0.0.1:9")
	p := proctest.Start(t, "serve", srv)
	apiURL := proctest.WaitLine(t, p.Lines, regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)`), 60*time.Second)
	res := call(t, "GET", apiURL+"/api/domains", token, "")
	if res.StatusCode != 200 {
		t.Fatalf("GET /api/domains with the CLI's token: %d", res.StatusCode)
	}
	stop(t, p)
}

// `dev` on a bare directory: private PostgreSQL, banner with URL and token, state kept across
// restarts, and Ctrl-C stops PostgreSQL too.
func TestDevKeepsStateAndStopsPostgres(t *testing.T) {
	t.Parallel()
	bin, _ := proctest.Binaries(t) // sajet-agent beside it: dev runs the agent it finds there
	// Not t.TempDir(): as root, PostgreSQL runs as the postgres user, who cannot enter a 0700
	// directory of root's.
	base, err := os.MkdirTemp("", "sajet-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "dev")
	t.Cleanup(func() {
		// If the test failed with dev killed, its PostgreSQL is still running: stop it.
		if b, err := os.ReadFile(filepath.Join(dir, "postgres", "data", "postmaster.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil {
				_ = syscall.Kill(pid, syscall.SIGQUIT)
			}
		}
		os.RemoveAll(base)
	})
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}

	run := func() (apiURL, token string, p *proctest.Proc) {
		p = proctest.Start(t, "dev", exec.Command(bin, "dev", "--dir", dir, "--http-addr", "127.0.0.1:0"))
		banner := proctest.WaitLines(t, p.Lines, 90*time.Second,
			regexp.MustCompile(`^\s*API:\s+(http://\S+)`), regexp.MustCompile(`Admin token:\s+(sjt_\S+)`),
			regexp.MustCompile(`Emails:\s+(recorded, not sent)`)) // a newcomer is told where notifications are
		return banner[0], banner[1], p
	}

	apiURL, token, cmd := run()
	res := call(t, "POST", apiURL+"/api/customers", token, `{"email":"ops@impulse-max.com","company_name":"ImpulseMax"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create customer in dev: %d", res.StatusCode)
	}
	// The local agent renders a created domain into ./.dev/cloudflared/config.yml.
	for _, c := range []struct{ path, body string }{
		{"/api/tenant-deployments", `{"customer_id":1,"name":"odoo","tunnel_id":1,"backend_url":"http://127.0.0.1:8069"}`},
		{"/api/domains", `{"external_domain":"www.impulse-max.com","customer_id":1,"tenant_deployment_id":1}`},
	} {
		if res := call(t, "POST", apiURL+c.path, token, c.body); res.StatusCode != 201 {
			t.Fatalf("POST %s in dev: %d", c.path, res.StatusCode)
		}
	}
	// Webhooks work in dev (a key of the state directory's own); notifications are listed.
	if res := call(t, "POST", apiURL+"/api/webhook-endpoints", token, `{"customer_id":1,"url":"https://93.184.216.34/hooks"}`); res.StatusCode != 201 {
		t.Errorf("create a webhook endpoint in dev: %d", res.StatusCode)
	}
	if res := call(t, "GET", apiURL+"/api/notifications", token, ""); res.StatusCode != 200 {
		t.Errorf("GET /api/notifications in dev: %d", res.StatusCode)
	}
	// The attack on `make run`: a trust-auth PostgreSQL on a loopback port made every
	// local user its superuser. Only the private socket is open now, and the dev state is the
	// owner's alone.
	port, err := os.ReadFile(filepath.Join(dir, "postgres", "port"))
	if err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strings.TrimSpace(string(port)), 2*time.Second); err == nil {
		conn.Close()
		t.Errorf("dev's PostgreSQL accepts TCP connections on 127.0.0.1:%s", strings.TrimSpace(string(port)))
	}
	wantDir := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		wantDir = 0o711 // the postgres user must traverse it; nobody else may list it
	}
	for path, want := range map[string]os.FileMode{dir: wantDir, filepath.Join(dir, "cloudflared"): 0o700, filepath.Join(dir, "tls"): 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (err %v), want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	configPath := filepath.Join(dir, "cloudflared", "config.yml")
	var rendered string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(configPath)
		if rendered = string(b); strings.Contains(rendered, "hostname: www.impulse-max.com") && strings.Contains(rendered, "hostname: impulse-max.sajet.us") {
			break
		}
	}
	if !strings.Contains(rendered, "hostname: www.impulse-max.com\n    service: http://127.0.0.1:8069") ||
		!strings.Contains(rendered, "hostname: impulse-max.sajet.us") || !strings.Contains(rendered, "http_status:404") {
		t.Errorf("dev's local agent did not render the domain into %s:\n%s", configPath, rendered)
	}
	if procsMentioning(dir+"/agent-state") == 0 {
		t.Error("dev runs no sajet-agent process")
	}
	stop(t, cmd)
	if n := procsMentioning(dir + "/agent-state"); n != 0 {
		t.Errorf("%d sajet-agent processes outlive dev", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres", "data", "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("postmaster.pid still present after Ctrl-C (err=%v): PostgreSQL was not stopped", err)
	}

	apiURL2, token2, cmd2 := run()
	if token2 == token {
		t.Error("dev reused the previous run's token; it must issue a new one")
	}
	if res := call(t, "GET", apiURL2+"/api/domains", token, ""); res.StatusCode != 401 {
		t.Errorf("the previous dev token still works after restart: %d", res.StatusCode)
	}
	res = call(t, "GET", apiURL2+"/api/customers", token2, "")
	var body struct {
		Items []struct {
			CompanyName string `json:"company_name"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Items) != 1 || body.Items[0].CompanyName != "ImpulseMax" {
		t.Errorf("after restart customers = %+v (%v), want the ImpulseMax created before", body.Items, err)
	}
	stop(t, cmd2)
}

func call(t *testing.T, method, url, token, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// procsMentioning counts the processes whose command line contains s.
func procsMentioning(s string) int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(cmdline), s) {
			n++
		}
	}
	return n
}

// stop sends SIGINT (Ctrl-C) and waits for a clean exit.
func stop(t *testing.T, p *proctest.Proc) {
	t.Helper()
	if err := p.Stop(t, syscall.SIGINT, 60*time.Second); err != nil {
		t.Errorf("%s exited with %v after SIGINT", p.Cmd.Path, err)
	}
}

// A control plane SIGKILLed while it is creating a domain's record (between "domain inserted" and
// "record created") finishes the work after a restart, with exactly one record.
func TestKilledControlPlaneFinishesProvisioningAfterRestart(t *testing.T) {
	t.Parallel()
	bin, _ := proctest.Binaries(t)
	pool, dbURL := storetest.NewDBURL(t)
	cf := cftest.New(t)
	cf.SetLatency(2 * time.Second) // the create is in flight when we kill the process

	args := []string{"serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0", "--dns-resolver", "127.0.0.1:9",
		"--cloudflare-api-url", cf.URL(), "--cloudflare-api-token", cf.Token, "--cloudflare-zone-id", cf.ZoneID,
		"--job-rescue-after", "3s", "--reconcile-interval", "1h"}
	apiRe := regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)`)
	first := proctest.Start(t, "first", exec.Command(bin, args...))
	apiURL := proctest.WaitLine(t, first.Lines, apiRe, 60*time.Second)

	secret := adminToken(t, bin, dbURL)
	cust := call(t, "POST", apiURL+"/api/customers", secret, `{"email":"ops@impulse-max.com","company_name":"ImpulseMax"}`)
	tun := call(t, "POST", apiURL+"/api/tunnels", secret, `{"name":"tcs-sajet-tunnel","cloudflare_tunnel_id":"6ff42ae2-765d-4adf-8112-31c55c1551ef"}`)
	if cust.StatusCode != 201 || tun.StatusCode != 201 {
		t.Fatalf("setup: customer %d tunnel %d", cust.StatusCode, tun.StatusCode)
	}
	td := call(t, "POST", apiURL+"/api/tenant-deployments", secret, `{"customer_id":1,"name":"odoo","tunnel_id":1,"backend_url":"http://10.10.10.105:8069"}`)
	dom := call(t, "POST", apiURL+"/api/domains", secret, `{"external_domain":"www.impulse-max.com","customer_id":1,"tenant_deployment_id":1}`)
	if td.StatusCode != 201 || dom.StatusCode != 201 {
		t.Fatalf("setup: tenant deployment %d domain %d", td.StatusCode, dom.StatusCode)
	}
	// Wait until the create call is in flight, then kill the process without any chance to clean up.
	testwait.Until(t, 30*time.Second, "the control plane to call Cloudflare", func() bool { return cf.InFlight() > 0 })
	if err := first.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.Done()

	cf.SetLatency(0)
	second := proctest.Start(t, "second", exec.Command(bin, args...))
	proctest.WaitLine(t, second.Lines, apiRe, 60*time.Second)
	defer stop(t, second)
	testwait.For(t, 60*time.Second, func() string {
		var configured bool
		if err := pool.QueryRow(t.Context(), `SELECT cloudflare_configured FROM custom_domains WHERE external_domain = 'www.impulse-max.com'`).Scan(&configured); err != nil {
			t.Fatal(err)
		}
		if !configured {
			return fmt.Sprintf("the restarted control plane did not finish provisioning; records: %+v", cf.Records())
		}
		return ""
	})
	n := 0
	for _, r := range cf.Records() {
		if r.Name == "impulse-max.sajet.us" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d records for impulse-max.sajet.us after kill and restart, want 1", n)
	}
}

func adminToken(t *testing.T, bin, dbURL string) string {
	t.Helper()
	out, err := exec.Command(bin, "token", "create", "--database-url", dbURL, "--role", "admin").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
