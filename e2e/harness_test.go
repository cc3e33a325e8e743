package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/agent/systemd/systemdtest"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/cloudflaredtest"
	"github.com/jeturing/sajet-domains/internal/proctest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// controlPlane is a running sajet-controlplane serve.
type controlPlane struct {
	bin, dbURL, api, agentAddr, admin string
	certFile, keyFile                 string
	// flags are extra `serve` flags; a --dns-resolver among them replaces the default one.
	flags []string
	p     *proctest.Proc
}

func startControlPlane(t testing.TB, dbURL, agentAddr, certFile, keyFile string, flags ...string) *controlPlane {
	t.Helper()
	bin, _ := proctest.Binaries(t)
	cp := &controlPlane{bin: bin, dbURL: dbURL, agentAddr: agentAddr, certFile: certFile, keyFile: keyFile, flags: flags}
	cp.start(t)
	out, err := exec.Command(bin, "token", "create", "--database-url", dbURL, "--role", "admin").Output()
	if err != nil {
		t.Fatal(err)
	}
	cp.admin = strings.TrimSpace(string(out))
	return cp
}

func (cp *controlPlane) start(t testing.TB) {
	t.Helper()
	args := []string{"serve", "--database-url", cp.dbURL, "--http-addr", "127.0.0.1:0",
		"--agent-addr", cp.agentAddr, "--agent-tls-cert", cp.certFile, "--agent-tls-key", cp.keyFile}
	if !slices.Contains(cp.flags, "--dns-resolver") {
		args = append(args, "--dns-resolver", "127.0.0.1:9")
	}
	cmd := exec.Command(cp.bin, append(args, cp.flags...)...)
	cp.p = proctest.Start(t, "cp", cmd)
	cp.api = proctest.WaitLine(t, cp.p.Lines, regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)`), 60*time.Second)
}

func (cp *controlPlane) call(t testing.TB, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, cp.api+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cp.admin)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	if res.StatusCode >= 300 && out != nil {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, data)
	}
	return res.StatusCode
}

// seed creates a customer, the tunnel and a tenant deployment, and enrols an agent; it returns
// the agent's token.
func (cp *controlPlane) seed(t testing.TB) string {
	t.Helper()
	for _, c := range []struct{ path, body string }{
		{"/api/customers", `{"email":"ops@impulse-max.com","company_name":"ImpulseMax","domain_quota":100000}`},
		{"/api/tunnels", `{"name":"tcs-sajet-tunnel","cloudflare_tunnel_id":"6ff42ae2-765d-4adf-8112-31c55c1551ef"}`},
		{"/api/tenant-deployments", `{"customer_id":1,"name":"odoo","tunnel_id":1,"backend_url":"http://10.10.10.105:8069"}`},
	} {
		var v map[string]any
		cp.call(t, "POST", c.path, c.body, &v)
	}
	return cp.enrol(t, "pct-105")
}

func (cp *controlPlane) enrol(t testing.TB, name string) string {
	t.Helper()
	var created struct {
		Token string `json:"token"`
	}
	cp.call(t, "POST", "/api/agents", `{"tunnel_id":1,"name":"`+name+`"}`, &created)
	return created.Token
}

type domain struct {
	ID                      int64   `json:"id"`
	ExternalDomain          string  `json:"external_domain"`
	SajetFullDomain         string  `json:"sajet_full_domain"`
	TunnelIngressConfigured bool    `json:"tunnel_ingress_configured"`
	LastError               *string `json:"last_error"`
}

func (cp *controlPlane) createDomain(t testing.TB, host string) domain {
	t.Helper()
	var d domain
	cp.call(t, "POST", "/api/domains", `{"external_domain":"`+host+`","customer_id":1,"tenant_deployment_id":1}`, &d)
	return d
}

func (cp *controlPlane) getDomain(t testing.TB, host string) domain {
	t.Helper()
	var d domain
	cp.call(t, "GET", "/api/domains/"+host, "", &d)
	return d
}

// node is one tunnel host: a private system bus with a fake systemd, a base file, and an agent.
type node struct {
	dir, configPath, basePath, stateDir string
	bus                                 *systemdtest.Bus
	systemd                             *systemdtest.Manager
	cfg                                 map[string]any
	agent                               *proctest.Proc
	health                              string
}

const baseFile = `tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /etc/cloudflared/6ff42ae2-765d-4adf-8112-31c55c1551ef.json
ingress:
  - hostname: ops.sajet.us
    service: http://127.0.0.1:9000
  - service: http_status:404
`

func newNode(t testing.TB, cp *controlPlane, token string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{dir: dir, configPath: filepath.Join(dir, "cloudflared", "config.yml"),
		basePath: filepath.Join(dir, "base.yml"), stateDir: filepath.Join(dir, "state")}
	if err := os.MkdirAll(filepath.Dir(n.configPath), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.basePath, baseFile)
	writeFile(t, n.configPath, baseFile) // the operator's file before the agent took over
	n.bus = systemdtest.StartBus(t)
	n.systemd = systemdtest.NewManager(t, n.bus, "cloudflared.service")
	n.cfg = map[string]any{
		"control_plane": cp.agentAddr, "token": token, "tunnel": "tcs-sajet-tunnel", "name": "pct-105",
		"fingerprint": certFingerprint(t, cp.certFile), "base_config": n.basePath, "config_path": n.configPath,
		"unit": "cloudflared.service", "health_addr": "127.0.0.1:0", "state_dir": n.stateDir,
		"min_restart_interval": "1ms", "keepalive": "1s", "status_interval": "1s", "rescan_interval": "2s",
		"restart_timeout": "2s", "ready_timeout": "2s", "start_grace": "1ms",
		// The real cloudflared judges every config, as on a tunnel host.
		"cloudflared_bin": cloudflaredtest.Path(t),
	}
	return n
}

func (n *node) startAgent(t testing.TB, env ...string) *proctest.Proc {
	t.Helper()
	_, bin := proctest.Binaries(t)
	data, err := json.Marshal(n.cfg) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(n.dir, "agent.yml")
	writeFile(t, cfgPath, string(data))
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = append(os.Environ(), append([]string{"DBUS_SYSTEM_BUS_ADDRESS=" + n.bus.Address}, env...)...)
	n.agent = proctest.Start(t, "agent", cmd)
	n.health = proctest.WaitLine(t, n.agent.Lines, regexp.MustCompile(`health endpoint listening" addr=(127\.0\.0\.1:\d+)`), 30*time.Second)
	return n.agent
}

func (n *node) config(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(n.configPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// status reads the agent's /status.
func (n *node) status(t testing.TB) agentStatus {
	t.Helper()
	var s agentStatus
	res, err := http.Get("http://" + n.health + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

type agentStatus struct {
	Status       string `json:"status"`
	ControlPlane struct {
		Connected  bool  `json:"connected"`
		Epoch      int64 `json:"epoch"`
		Reconnects int64 `json:"reconnects"`
	} `json:"control_plane"`
	Config struct {
		AppliedVersion int64  `json:"applied_version"`
		AppliedHash    string `json:"applied_hash"`
		Drift          int64  `json:"drift"`
		LastError      *struct {
			Stage string `json:"stage"`
			Msg   string `json:"msg"`
		} `json:"last_error"`
	} `json:"config"`
	Cloudflared struct {
		ActiveState     string `json:"active_state"`
		RestartsByAgent int64  `json:"restarts_by_agent"`
		Replicas        []struct {
			Unit        string `json:"unit"`
			ActiveState string `json:"active_state"`
		} `json:"replicas"`
	} `json:"cloudflared"`
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func certFingerprint(t testing.TB, certFile string) string {
	t.Helper()
	return gatewaytest.Fingerprint(t, certFile)
}
