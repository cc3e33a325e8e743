package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/cloudflaredtest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// The system test (make test-system, packaging/test-system.sh) runs the sajet-agent package on a
// booted Debian: real systemd as PID 1, real D-Bus and polkit, the real cloudflared 2026.8.2, and
// for replicas a stand-in that serves /ready (internal/cloudflaredtest/standin). The control
// plane runs on the host; the container shares the host's network, so everything talks over
// 127.0.0.1 and nothing leaves the machine.
//
// Environment (set by packaging/test-system.sh):
//
//	SAJET_SYSTEM_TEST=1                 run it (plain `go test ./...` skips it)
//	SAJET_SYSTEM_AGENT_DEB=F            the sajet-agent .deb to install
//	SAJET_SYSTEM_AGENT_DEB_UPGRADE=F    the same binaries with a higher version (the upgrade)
const (
	tunnelUUID   = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
	failMarker   = "fail-start" // the wrapper and the stand-in exit on a config containing it
	readyDelay   = 300 * time.Millisecond
	operatorBase = `tunnel: ` + tunnelUUID + `
credentials-file: /etc/cloudflared/` + tunnelUUID + `.json
ingress:
  - hostname: ops.sajet.us
    service: http://127.0.0.1:9000
  - service: http_status:404
`
)

// sysEnv is the running system test: the container, the control plane and the agent's ports.
type sysEnv struct {
	c           *container
	cp          *controlPlane
	pool        *pgxpool.Pool
	token       string
	fingerprint string
	health      string // the agent's health endpoint (host and container loopback alike)
	metrics     string // cloudflared.service's --metrics address
	replicas    [2]string
	edge        string // where cloudflared looks for Cloudflare's edge: silentEdge
}

// silentEdge listens on loopback, accepts connections and never answers, so cloudflared's edge
// dials hang until its own timeout instead of being refused: refused at once, cloudflared retries
// in a tight loop that floods the journal and takes a core of this 2-core machine.
func silentEdge(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestSystem(t *testing.T) {
	if os.Getenv("SAJET_SYSTEM_TEST") != "1" {
		t.Skip("run by make test-system (packaging/test-system.sh builds the packages and sets SAJET_SYSTEM_TEST=1)")
	}
	debs := [2]string{os.Getenv("SAJET_SYSTEM_AGENT_DEB"), os.Getenv("SAJET_SYSTEM_AGENT_DEB_UPGRADE")}
	for _, d := range debs {
		if fi, err := os.Stat(d); err != nil || fi.IsDir() {
			t.Fatalf("SAJET_SYSTEM_AGENT_DEB and SAJET_SYSTEM_AGENT_DEB_UPGRADE must name the .deb files (got %q)", debs)
		}
	}
	cloudflared := cloudflaredtest.Path(t)
	s := &sysEnv{health: proctest.FreeAddr(t), metrics: proctest.FreeAddr(t),
		replicas: [2]string{proctest.FreeAddr(t), proctest.FreeAddr(t)}, edge: silentEdge(t)}
	s.c = bootContainer(t)
	t.Cleanup(func() {
		// Runs before the container stops: what the units said, for a failed run.
		if t.Failed() {
			out, _ := s.c.exec(time.Minute, "journalctl", "--no-pager", "-o", "short-precise", "-n", "300",
				"-u", "sajet-agent.service", "-u", "cloudflared@1.service", "-u", "cloudflared@2.service", "-u", "polkit.service")
			cf, _ := s.c.exec(time.Minute, "journalctl", "--no-pager", "-o", "short-precise", "-n", "40", "-u", "cloudflared.service")
			t.Logf("journal of the container:\n%s\ncloudflared.service:\n%s", out, cf)
		}
	})
	s.prepareHost(t, cloudflared, debs)

	steps := []struct {
		name string
		f    func(*testing.T)
	}{
		{"install", s.install},
		{"enrol and connect under the hardened unit", s.enrol},
		{"polkit allows exactly the restart of the listed unit", s.polkit},
		{"a domain change restarts cloudflared through polkit and is ACKed", s.domainChange},
		{"a start failure is rolled back and NACKed", s.startFailure},
		{"a unit polkit does not allow is NACKed and restarts nothing", s.refusedUnit},
		{"a frozen agent is restarted by the watchdog", s.watchdog},
		{"replicas: 100 changes with a replica always ready", s.replicasZeroDowntime},
		{"replicas: a failing replica is rolled back before the other is touched", s.replicaRollback},
		{"one replica: the not-ready window of each apply", s.oneReplicaWindow},
		{"upgrade with the agent running keeps config and state", func(t *testing.T) { s.upgrade(t, debs[1]) }},
		{"commit to ACK with the real cloudflared restart", s.commitToAck},
		{"remove stops the agent; purge leaves /etc/cloudflared", s.removeAndPurge},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.f) {
			t.Fatalf("step %q failed; the later steps build on it", st.name)
		}
	}
}

// prepareHost puts cloudflared (Cloudflare's unit, offline), the replicas' stand-in and the
// operator's existing tunnel config into the container, and starts the control plane.
func (s *sysEnv) prepareHost(t *testing.T, cloudflared string, debs [2]string) {
	c := s.c
	c.copyIn(t, cloudflared, "/usr/bin/cloudflared", 0o755)
	standin := filepath.Join(t.TempDir(), "cloudflared-standin")
	build := exec.Command("go", "build", "-o", standin, "github.com/jeturing/sajet-domains/internal/cloudflaredtest/standin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the container has its own libc
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in: %v\n%s", err, out)
	}
	c.copyIn(t, standin, "/usr/local/bin/cloudflared-standin", 0o755)
	for i, d := range debs {
		c.copyIn(t, d, fmt.Sprintf("/var/tmp/pkgs/%d/%s", i, filepath.Base(d)), 0o644)
	}
	// The operator's tunnel, as before the agent: the package imports config.yml as base.yml.
	c.write(t, "/etc/cloudflared/config.yml", operatorBase, 0o644)
	c.write(t, "/etc/cloudflared/"+tunnelUUID+".json",
		`{"AccountTag":"sajet-test","TunnelSecret":"c2FqZXQtc3lzdGVtLXRlc3Qtc2VjcmV0LTMyLWJ5dGVz","TunnelID":"`+tunnelUUID+`"}`, 0o400)
	// A wrapper that exits for a marked config, as cloudflared does on a config it refuses; the
	// agent's validation accepts the marked hostname, so only the start fails.
	c.write(t, "/usr/local/bin/cloudflared-wrapper", `#!/bin/sh
if grep -q '`+failMarker+`' /etc/cloudflared/config.yml; then
	echo "cloudflared-wrapper: config.yml routes a `+failMarker+` hostname: exiting as cloudflared does on a config it refuses" >&2
	exit 1
fi
exec /usr/bin/cloudflared "$@"
`, 0o755)
	// The unit `cloudflared service install` writes (its template in cloudflared 2026.8.2), with
	// the wrapper as its binary and the tunnel flags of an offline host: --edge on loopback keeps
	// it retrying instead of exiting for want of the edge's SRV record (the 7844 is refused
	// at once on these hosts; silentEdge holds the dials instead).
	c.write(t, "/etc/systemd/system/cloudflared.service", `[Unit]
Description=Cloudflare Tunnel client
After=network-online.target
Wants=network-online.target
[Service]
TimeoutStartSec=15
Type=notify
ExecStart=/usr/local/bin/cloudflared-wrapper --no-autoupdate tunnel --config /etc/cloudflared/config.yml --edge `+s.edge+` --protocol http2 --metrics `+s.metrics+` run
Restart=on-failure
RestartSec=5s
[Install]
WantedBy=multi-user.target
`, 0o644)
	// Offline, cloudflared never sends READY=1 (it does once connected to the edge), so as
	// Type=notify it never becomes active: Type=simple here, and the agent's start_grace catches
	// a process that exits at once.
	c.write(t, "/etc/systemd/system/cloudflared.service.d/offline.conf", "[Service]\nType=simple\n", 0o644)
	// The test applies changes back to back (min_restart_interval 1ms), faster than systemd's
	// default start limit (5 starts in 10 s, then "start-limit-hit"); the agent's default of 5 s
	// stays under it. Lifted here, for cloudflared.service and the replicas.
	for _, unit := range []string{"cloudflared.service", "cloudflared@.service"} {
		c.write(t, "/etc/systemd/system/"+unit+".d/test-pace.conf", "[Unit]\nStartLimitIntervalSec=0\n", 0o644)
	}
	// Replicas of the tunnel's connector: the stand-in, one --metrics address each.
	c.write(t, "/etc/systemd/system/cloudflared@.service", `[Unit]
Description=Cloudflare Tunnel client, replica %i (test stand-in)
[Service]
Type=simple
EnvironmentFile=/etc/cloudflared/replica-%i.env
ExecStart=/usr/local/bin/cloudflared-standin tunnel --config /etc/cloudflared/config.yml --metrics ${METRICS} --ready-delay ${READY_DELAY} --fail-marker `+failMarker+` run
Restart=on-failure
RestartSec=5s
`, 0o644)
	for i, addr := range s.replicas {
		c.write(t, fmt.Sprintf("/etc/cloudflared/replica-%d.env", i+1), fmt.Sprintf("METRICS=%s\nREADY_DELAY=%s\n", addr, readyDelay), 0o644)
	}
	c.sh(t, "systemctl daemon-reload && systemctl enable --now cloudflared.service")
	testwait.For(t, 30*time.Second, func() string {
		if p := c.unitProps(t, "cloudflared.service", "ActiveState"); p["ActiveState"] != "active" {
			return "cloudflared.service is " + p["ActiveState"]
		}
		return ""
	})
	// Offline the real cloudflared answers /ready with 503 and readyConnections 0 (once its
	// metrics server listens).
	testwait.For(t, 30*time.Second, func() string {
		if code, body := httpGet(t, "http://"+s.metrics+"/ready"); code != 503 || !strings.Contains(body, `"readyConnections":0`) {
			return fmt.Sprintf("cloudflared /ready = %d %s, want 503 with readyConnections 0 (no edge offline)", code, body)
		}
		return ""
	})

	var dbURL string
	s.pool, dbURL = storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	s.cp = startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile)
	s.token = s.cp.seed(t)
	s.fingerprint = certFingerprint(t, certFile)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	res, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(body)
}

// figure prints one measured figure as a JSON line (the closing note quotes them).
func figure(t *testing.T, v map[string]any) {
	t.Helper()
	data, _ := json.Marshal(v)
	fmt.Println(string(data))
	t.Log(string(data))
}

func (s *sysEnv) install(t *testing.T) {
	c := s.c
	out, err := c.exec(5*time.Minute, "sh", "-c", "apt-get install -y --no-install-recommends /var/tmp/pkgs/0/*.deb")
	if err != nil {
		t.Fatalf("apt install of the package: %v", err)
	}
	t.Log(out)
	if got := c.read(t, "/etc/sajet-agent/base.yml"); got != operatorBase {
		t.Errorf("base.yml is not the imported operator config:\n%s", got)
	}
	if got := c.sh(t, "stat -c '%a %U:%G' /etc/polkit-1/rules.d/50-sajet-agent.rules /etc/sajet-agent/agent.yml /etc/cloudflared"); got != "644 root:root\n640 root:sajet-agent\n775 root:sajet-agent" {
		t.Errorf("installed modes and owners:\n%s", got)
	}
	if p := c.unitProps(t, "sajet-agent.service", "LoadState", "UnitFileState"); p["LoadState"] != "loaded" || p["UnitFileState"] != "disabled" {
		t.Errorf("sajet-agent.service after install: %v, want loaded and not enabled (no token yet)", p)
	}
}

// agentConfig writes /etc/sajet-agent/agent.yml in place (dpkg's statoverride keeps it 0640
// root:sajet-agent) with units, a YAML fragment naming what to restart.
func (s *sysEnv) agentConfig(t *testing.T, units string) {
	t.Helper()
	cfg := fmt.Sprintf(`control_plane: %s
token: %s
tunnel: tcs-sajet-tunnel
name: system-test
fingerprint: %s
base_config: /etc/sajet-agent/base.yml
config_path: /etc/cloudflared/config.yml
cloudflared_bin: /usr/bin/cloudflared
health_addr: %s
state_dir: /var/lib/sajet-agent
status_interval: 1s
keepalive: 2s
rescan_interval: 5s
min_restart_interval: 1ms
ready_timeout: 20s
%s`, s.cp.agentAddr, s.token, s.fingerprint, s.health, units)
	if err := os.WriteFile(s.c.path("/etc/sajet-agent/agent.yml"), []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
}

// polkitUnits sets the list line of the installed polkit rule, as the ops guide says.
func (s *sysEnv) polkitUnits(t *testing.T, units ...string) {
	t.Helper()
	list, _ := json.Marshal(units)
	s.c.sh(t, fmt.Sprintf(`sed -i 's|^    var units = .*|    var units = %s;|' /etc/polkit-1/rules.d/50-sajet-agent.rules`,
		strings.ReplaceAll(string(list), `","`, `", "`)))
}

// restartAgent restarts sajet-agent and waits until it is connected again.
func (s *sysEnv) restartAgent(t *testing.T) {
	t.Helper()
	s.c.sh(t, "systemctl restart sajet-agent.service")
	s.waitConnected(t)
}

func (s *sysEnv) waitConnected(t *testing.T) {
	t.Helper()
	testwait.For(t, 60*time.Second, func() string {
		st, err := s.status()
		if err != nil {
			return err.Error()
		}
		if !st.ControlPlane.Connected {
			return "the agent is not connected"
		}
		return ""
	})
}

// status reads the agent's /status from the host.
func (s *sysEnv) status() (agentStatus, error) {
	var st agentStatus
	client := http.Client{Timeout: 5 * time.Second}
	res, err := client.Get("http://" + s.health + "/status")
	if err != nil {
		return st, err
	}
	defer res.Body.Close()
	return st, json.NewDecoder(res.Body).Decode(&st)
}

// waitPass waits for /status to say pass: it reads the units' state every status_interval.
func (s *sysEnv) waitPass(t *testing.T) {
	t.Helper()
	testwait.For(t, 10*time.Second, func() string {
		if st := s.mustStatus(t); st.Status != "pass" {
			return fmt.Sprintf("/status = %+v, want pass", st)
		}
		return ""
	})
}

func (s *sysEnv) mustStatus(t *testing.T) agentStatus {
	t.Helper()
	st, err := s.status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// version is the tunnel's desired config version.
func (s *sysEnv) version(t *testing.T) int64 {
	t.Helper()
	var v int64
	if err := s.pool.QueryRow(context.Background(), `SELECT config_version FROM tunnels WHERE id = 1`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// change creates a domain and waits for the agent's ACK of the version it made.
func (s *sysEnv) change(t *testing.T, host string) {
	t.Helper()
	before := s.version(t)
	s.cp.createDomain(t, host)
	waitApplied(t, s.pool, before)
}

func (s *sysEnv) deleteDomain(t *testing.T, host string) {
	t.Helper()
	before := s.version(t)
	if code := s.cp.call(t, "DELETE", "/api/domains/"+host, "", nil); code != 204 {
		t.Fatalf("delete %s: %d", host, code)
	}
	waitApplied(t, s.pool, before)
}

func (s *sysEnv) enrol(t *testing.T) {
	c := s.c
	s.agentConfig(t, "unit: cloudflared.service\n")
	if out, err := c.exec(time.Minute, "sajet-agent", "--check"); err != nil || !strings.Contains(out, "units: cloudflared.service, restarted in this order; /etc/polkit-1/rules.d/50-sajet-agent.rules allows exactly these") {
		t.Errorf("sajet-agent --check = %v\n%s", err, out)
	}
	c.sh(t, "systemctl enable --now sajet-agent.service")
	s.waitConnected(t)
	p := c.unitProps(t, "sajet-agent.service", "MainPID", "ActiveState", "User", "NoNewPrivileges", "ProtectSystem", "WatchdogUSec", "Type")
	if p["ActiveState"] != "active" || p["User"] != "sajet-agent" || p["NoNewPrivileges"] != "yes" || p["ProtectSystem"] != "strict" || p["WatchdogUSec"] != "30s" || p["Type"] != "notify" {
		t.Errorf("sajet-agent.service = %v, want active, hardened, as sajet-agent, with its watchdog", p)
	}
	// The process itself, as the kernel sees it.
	uid := c.sh(t, "id -u sajet-agent")
	proc := c.sh(t, "grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/"+p["MainPID"]+"/status")
	for _, want := range []string{"Uid:\t" + uid + "\t" + uid, "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(proc, want) {
			t.Errorf("the agent's process lacks %q:\n%s", want, proc)
		}
	}
	var agents struct {
		Items []struct {
			Connected bool `json:"connected"`
		} `json:"items"`
	}
	s.cp.call(t, "GET", "/api/agents", "", &agents)
	if len(agents.Items) != 1 || !agents.Items[0].Connected {
		t.Errorf("GET /api/agents = %+v, want the agent connected", agents.Items)
	}
}

// polkit: the package's rule is what lets sajet-agent restart cloudflared.service, and only that.
func (s *sysEnv) polkit(t *testing.T) {
	c := s.c
	if _, err := c.asAgent("systemctl", "restart", "cloudflared.service"); err != nil {
		t.Errorf("as sajet-agent, systemctl restart cloudflared.service: %v", err)
	}
	for _, args := range [][]string{{"stop", "cloudflared.service"}, {"start", "cloudflared.service"}, {"restart", "dbus.service"}, {"restart", "cloudflared@1.service"}} {
		out, err := c.asAgent(append([]string{"systemctl"}, args...)...)
		if err == nil || !strings.Contains(out, "Interactive authentication required") {
			t.Errorf("as sajet-agent, systemctl %s = %v %q, want it refused by polkit", strings.Join(args, " "), err, out)
		}
	}
	// Without the rule the same restart is refused: the grant is the rule's, nobody else's.
	c.sh(t, "mv /etc/polkit-1/rules.d/50-sajet-agent.rules /root/")
	testwait.For(t, 30*time.Second, func() string {
		if out, err := c.asAgent("systemctl", "restart", "cloudflared.service"); err == nil || !strings.Contains(out, "Interactive authentication required") {
			return "restart still allowed without the rule"
		}
		return ""
	})
	c.sh(t, "mv /root/50-sajet-agent.rules /etc/polkit-1/rules.d/")
	testwait.For(t, 30*time.Second, func() string {
		if _, err := c.asAgent("systemctl", "restart", "cloudflared.service"); err != nil {
			return "restart still refused with the rule back: " + err.Error()
		}
		return ""
	})
}

func (s *sysEnv) domainChange(t *testing.T) {
	c := s.c
	before := c.unitProps(t, "cloudflared.service", "MainPID", "ActiveEnterTimestampMonotonic")
	restartsBefore := s.mustStatus(t).Cloudflared.RestartsByAgent
	d := s.cp.createDomain(t, "www.impulse-max.com")
	testwait.For(t, 60*time.Second, func() string {
		if !s.cp.getDomain(t, "www.impulse-max.com").TunnelIngressConfigured {
			return "tunnel_ingress_configured is still false"
		}
		return ""
	})
	cfg := c.read(t, "/etc/cloudflared/config.yml")
	for _, host := range []string{"www.impulse-max.com", d.SajetFullDomain, "ops.sajet.us"} {
		if !strings.Contains(cfg, "hostname: "+host) {
			t.Errorf("config.yml lacks %s:\n%s", host, cfg)
		}
	}
	after := c.unitProps(t, "cloudflared.service", "MainPID", "ActiveEnterTimestampMonotonic", "ActiveState")
	b, _ := strconv.ParseInt(before["ActiveEnterTimestampMonotonic"], 10, 64)
	a, _ := strconv.ParseInt(after["ActiveEnterTimestampMonotonic"], 10, 64)
	if after["ActiveState"] != "active" || after["MainPID"] == before["MainPID"] || a <= b {
		t.Errorf("cloudflared.service before %v, after %v: want it restarted (new pid, later start) and active", before, after)
	}
	// cloudflared runs the new file: its process started after the file was written.
	if st := s.mustStatus(t); st.Cloudflared.RestartsByAgent <= restartsBefore || st.Config.LastError != nil {
		t.Errorf("/status = %+v, want a restart by the agent and no error", st)
	}
	s.waitPass(t)
	if j := c.sh(t, "journalctl -u sajet-agent.service -o cat --no-pager | grep -c 'msg=applied' || true"); j == "0" {
		t.Error("journalctl -u sajet-agent has no applied line")
	}
}

func (s *sysEnv) startFailure(t *testing.T) {
	c := s.c
	good := c.read(t, "/etc/cloudflared/config.yml")
	host := "www." + failMarker + ".com"
	s.cp.createDomain(t, host)
	testwait.For(t, 90*time.Second, func() string {
		if d := s.cp.getDomain(t, host); d.LastError == nil || !strings.Contains(*d.LastError, "verify") {
			return host + ": no NACK at verify shown on the domain yet"
		}
		return ""
	})
	if got := c.read(t, "/etc/cloudflared/config.yml"); got != good {
		t.Errorf("config.yml after the rollback is not the last good one:\n%s", got)
	}
	if p := c.unitProps(t, "cloudflared.service", "ActiveState", "SubState"); p["ActiveState"] != "active" {
		t.Errorf("cloudflared.service after the rollback: %v, want active", p)
	}
	var agents struct {
		Items []struct {
			LastError *string `json:"last_error"`
		} `json:"items"`
	}
	s.cp.call(t, "GET", "/api/agents", "", &agents)
	if len(agents.Items) != 1 || agents.Items[0].LastError == nil || !strings.HasPrefix(*agents.Items[0].LastError, "verify:") ||
		!strings.Contains(*agents.Items[0].LastError, "cloudflared.service") {
		t.Errorf("GET /api/agents last_error = %+v, want the NACK at verify", agents.Items)
	}
	st := s.mustStatus(t)
	if st.Config.LastError == nil || st.Config.LastError.Stage != "verify" || st.Status != "warn" {
		t.Errorf("/status = %+v, want warn with last_error at verify", st)
	}
	// systemd's own line (the wrapper's message may be rate-limited away among cloudflared's).
	if j := c.sh(t, "journalctl -u cloudflared.service -o cat --no-pager | grep -c 'Main process exited, code=exited, status=1/FAILURE' || true"); j == "0" {
		t.Error("the journal does not show cloudflared.service exiting with status 1")
	}
	s.deleteDomain(t, host)
	s.waitPass(t)
}

func (s *sysEnv) refusedUnit(t *testing.T) {
	c := s.c
	s.agentConfig(t, "unit: cloudflared@1.service\n")
	out, err := c.exec(time.Minute, "sajet-agent", "--check")
	if err == nil || !strings.Contains(out, "it does not allow cloudflared@1.service (restarts would be refused)") {
		t.Errorf("sajet-agent --check with a unit the rule does not list = %v\n%s", err, out)
	}
	s.restartAgent(t)
	good := c.read(t, "/etc/cloudflared/config.yml")
	before := c.unitProps(t, "cloudflared.service", "MainPID")
	host := "www.refused-unit.com"
	s.cp.createDomain(t, host)
	const fix = "polkit does not let the agent's user restart cloudflared@1.service: list it in the units of /etc/polkit-1/rules.d/50-sajet-agent.rules"
	testwait.For(t, 60*time.Second, func() string {
		var agents struct {
			Items []struct {
				LastError *string `json:"last_error"`
			} `json:"items"`
		}
		s.cp.call(t, "GET", "/api/agents", "", &agents)
		if len(agents.Items) != 1 || agents.Items[0].LastError == nil || !strings.HasPrefix(*agents.Items[0].LastError, "restart:") ||
			!strings.Contains(*agents.Items[0].LastError, fix) {
			return "GET /api/agents does not show the NACK at restart naming the fix"
		}
		return ""
	})
	if code, body := httpGet(t, "http://"+s.health+"/readyz"); code != 503 || !strings.Contains(body, fix) {
		t.Errorf("/readyz = %d %q, want 503 saying %q", code, body, fix)
	}
	if p := c.unitProps(t, "cloudflared@1.service", "ActiveState"); p["ActiveState"] != "inactive" {
		t.Errorf("cloudflared@1.service = %v: a refused restart must start nothing", p)
	}
	if p := c.unitProps(t, "cloudflared.service", "MainPID"); p["MainPID"] != before["MainPID"] {
		t.Errorf("cloudflared.service restarted (%v → %v): nothing may restart", before, p)
	}
	if got := c.read(t, "/etc/cloudflared/config.yml"); got != good {
		t.Errorf("config.yml is not the last good one after the refused restart:\n%s", got)
	}
	if j := c.sh(t, "journalctl -u sajet-agent.service -o cat --no-pager | grep -c 'Interactive authentication required' || true"); j == "0" {
		t.Error("the agent's journal does not show polkit's refusal")
	}
	// Put it right: back to cloudflared.service, the domain goes out with the next change.
	s.agentConfig(t, "unit: cloudflared.service\n")
	s.restartAgent(t)
	s.deleteDomain(t, host)
}

func (s *sysEnv) watchdog(t *testing.T) {
	c := s.c
	before := c.unitProps(t, "sajet-agent.service", "MainPID", "NRestarts")
	start := time.Now()
	c.sh(t, "kill -STOP "+before["MainPID"])
	var after map[string]string
	testwait.For(t, 120*time.Second, func() string {
		after = c.unitProps(t, "sajet-agent.service", "MainPID", "NRestarts", "ActiveState")
		if after["MainPID"] == before["MainPID"] || after["MainPID"] == "0" || after["ActiveState"] != "active" {
			return "sajet-agent not restarted yet: " + fmt.Sprint(after)
		}
		return ""
	})
	took := time.Since(start)
	n0, _ := strconv.Atoi(before["NRestarts"])
	n1, _ := strconv.Atoi(after["NRestarts"])
	if n1 != n0+1 {
		t.Errorf("NRestarts %d → %d, want one restart by systemd", n0, n1)
	}
	if j := c.sh(t, "journalctl -u sajet-agent.service -o cat --no-pager | grep -ci 'watchdog timeout' || true"); j == "0" {
		t.Error("the journal does not say the watchdog fired")
	}
	figure(t, map[string]any{"figure": "watchdog_restart", "watchdog_sec": 30, "restart_sec": 5, "sigstop_to_new_pid_s": took.Round(100 * time.Millisecond).Seconds()})
	s.waitConnected(t)
}

// readySampler polls the replicas' /ready every 50 ms and counts the samples in which none, or each,
// was ready.
type readySampler struct {
	urls            []string
	interval        time.Duration
	mu              sync.Mutex
	samples, noneOK int
	okBy            []int
	windows         []time.Duration // not-ready windows of urls[0]
	notReadySince   time.Time
	stop            chan struct{}
	done            chan struct{}
}

func startReadySampler(urls []string, interval time.Duration) *readySampler {
	sp := &readySampler{urls: urls, interval: interval, okBy: make([]int, len(urls)), stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: time.Second}
	go func() {
		defer close(sp.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-sp.stop:
				return
			case <-tick.C:
			}
			ok := make([]bool, len(urls))
			var wg sync.WaitGroup
			for i, u := range urls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := client.Get(u)
					if err == nil {
						ok[i] = res.StatusCode == 200
						res.Body.Close()
					}
				}()
			}
			wg.Wait()
			now := time.Now()
			sp.mu.Lock()
			sp.samples++
			if !slices.Contains(ok, true) {
				sp.noneOK++
			}
			for i, b := range ok {
				if b {
					sp.okBy[i]++
				}
			}
			switch {
			case !ok[0] && sp.notReadySince.IsZero():
				sp.notReadySince = now
			case ok[0] && !sp.notReadySince.IsZero():
				sp.windows = append(sp.windows, now.Sub(sp.notReadySince))
				sp.notReadySince = time.Time{}
			}
			sp.mu.Unlock()
		}
	}()
	return sp
}

func (sp *readySampler) finish() {
	close(sp.stop)
	<-sp.done
}

func (s *sysEnv) replicaURLs() []string {
	return []string{"http://" + s.replicas[0] + "/ready", "http://" + s.replicas[1] + "/ready"}
}

func (s *sysEnv) replicasZeroDowntime(t *testing.T) {
	c := s.c
	s.polkitUnits(t, "cloudflared@1.service", "cloudflared@2.service")
	s.agentConfig(t, fmt.Sprintf("units:\n  - name: cloudflared@1.service\n    ready_url: http://%s/ready\n  - name: cloudflared@2.service\n    ready_url: http://%s/ready\n",
		s.replicas[0], s.replicas[1]))
	if out, err := c.exec(time.Minute, "sajet-agent", "--check"); err != nil || !strings.Contains(out, "units: cloudflared@1.service, cloudflared@2.service, restarted in this order") {
		t.Errorf("sajet-agent --check with the replicas listed in both files = %v\n%s", err, out)
	}
	c.sh(t, "systemctl start cloudflared@1.service cloudflared@2.service")
	testwait.For(t, 30*time.Second, func() string {
		for _, u := range s.replicaURLs() {
			if code, _ := httpGet(t, u); code != 200 {
				return u + " not ready"
			}
		}
		return ""
	})
	s.restartAgent(t)
	restartsBefore := s.mustStatus(t).Cloudflared.RestartsByAgent
	sp := startReadySampler(s.replicaURLs(), 50*time.Millisecond)
	const changes = 100
	start := time.Now()
	for i := range changes {
		s.change(t, fmt.Sprintf("shop-%03d.replica-test.com", i))
	}
	elapsed := time.Since(start)
	sp.finish()
	st := s.mustStatus(t)
	restarts := st.Cloudflared.RestartsByAgent - restartsBefore
	figure(t, map[string]any{"figure": "replicas_zero_downtime", "replicas": 2, "changes": changes, "sample_interval_ms": 50,
		"samples": sp.samples, "samples_none_ready": sp.noneOK, "samples_ready_by_replica": sp.okBy,
		"restarts_by_agent": restarts, "ready_delay_ms": readyDelay.Milliseconds(), "elapsed_s": elapsed.Round(time.Second).Seconds()})
	if sp.noneOK != 0 {
		t.Errorf("%d of %d samples had no replica ready, want 0", sp.noneOK, sp.samples)
	}
	if restarts != 2*changes {
		t.Errorf("the agent restarted replicas %d times, want %d (both, on each change)", restarts, 2*changes)
	}
	if sp.okBy[0] == sp.samples || sp.okBy[1] == sp.samples {
		t.Errorf("ready samples by replica %v of %d: each replica must have been seen not ready (restarted)", sp.okBy, sp.samples)
	}
	// /status reads the units' state every status_interval (1s here).
	testwait.For(t, 10*time.Second, func() string {
		if st := s.mustStatus(t); len(st.Cloudflared.Replicas) != 2 || st.Status != "pass" {
			return fmt.Sprintf("/status = %+v, want pass with both replicas", st)
		}
		return ""
	})
}

func (s *sysEnv) replicaRollback(t *testing.T) {
	c := s.c
	good := c.read(t, "/etc/cloudflared/config.yml")
	r2 := c.unitProps(t, "cloudflared@2.service", "MainPID", "ActiveEnterTimestampMonotonic")
	r1 := c.unitProps(t, "cloudflared@1.service", "MainPID")
	sp := startReadySampler([]string{s.replicaURLs()[1], s.replicaURLs()[0]}, 50*time.Millisecond)
	host := "www." + failMarker + "-replica.com"
	s.cp.createDomain(t, host)
	testwait.For(t, 90*time.Second, func() string {
		if d := s.cp.getDomain(t, host); d.LastError == nil || !strings.Contains(*d.LastError, "verify") {
			return host + ": no NACK at verify yet"
		}
		return ""
	})
	sp.finish()
	if got := c.unitProps(t, "cloudflared@2.service", "MainPID", "ActiveEnterTimestampMonotonic"); got["MainPID"] != r2["MainPID"] ||
		got["ActiveEnterTimestampMonotonic"] != r2["ActiveEnterTimestampMonotonic"] {
		t.Errorf("cloudflared@2.service %v → %v: the second replica must not be touched", r2, got)
	}
	if got := c.unitProps(t, "cloudflared@1.service", "MainPID", "ActiveState"); got["ActiveState"] != "active" || got["MainPID"] == r1["MainPID"] {
		t.Errorf("cloudflared@1.service %v → %v: want it restarted on the last good config and active", r1, got)
	}
	if code, _ := httpGet(t, s.replicaURLs()[0]); code != 200 {
		t.Error("cloudflared@1 is not ready after the rollback")
	}
	if got := c.read(t, "/etc/cloudflared/config.yml"); got != good {
		t.Errorf("config.yml after the rollback is not the last good one:\n%s", got)
	}
	st := s.mustStatus(t)
	if st.Config.LastError == nil || st.Config.LastError.Stage != "verify" || !strings.Contains(st.Config.LastError.Msg, "cloudflared@1.service") {
		t.Errorf("/status last_error = %+v, want verify naming cloudflared@1.service", st.Config.LastError)
	}
	figure(t, map[string]any{"figure": "replica_rollback", "samples": sp.samples, "samples_second_replica_ready": sp.okBy[0], "samples_none_ready": sp.noneOK})
	if sp.okBy[0] != sp.samples || sp.noneOK != 0 {
		t.Errorf("cloudflared@2 ready in %d of %d samples during the failed apply, want all", sp.okBy[0], sp.samples)
	}
	s.deleteDomain(t, host)
}

func (s *sysEnv) oneReplicaWindow(t *testing.T) {
	s.polkitUnits(t, "cloudflared@1.service")
	s.agentConfig(t, fmt.Sprintf("unit: cloudflared@1.service\nready_url: http://%s/ready\n", s.replicas[0]))
	s.restartAgent(t)
	sp := startReadySampler(s.replicaURLs()[:1], 10*time.Millisecond)
	const changes = 20
	for i := range changes {
		s.change(t, fmt.Sprintf("one-%02d.replica-test.com", i))
	}
	time.Sleep(100 * time.Millisecond) // the last window closes once the readySampler sees it ready
	sp.finish()
	w := slices.Clone(sp.windows)
	slices.Sort(w)
	if len(w) != changes {
		t.Fatalf("%d not-ready windows for %d applies, want one each", len(w), changes)
	}
	figure(t, map[string]any{"figure": "one_replica_not_ready_per_apply", "applies": changes, "sample_interval_ms": 10,
		"ready_delay_ms": readyDelay.Milliseconds(), "p50_ms": ms(percentile(w, 0.5)), "max_ms": ms(w[len(w)-1]), "min_ms": ms(w[0])})
}

func (s *sysEnv) upgrade(t *testing.T, deb string) {
	c := s.c
	before := c.unitProps(t, "sajet-agent.service", "MainPID")
	agentYML := c.read(t, "/etc/sajet-agent/agent.yml")
	rule := c.read(t, "/etc/polkit-1/rules.d/50-sajet-agent.rules")
	base := c.read(t, "/etc/sajet-agent/base.yml")
	var state struct {
		Version int64  `json:"version"`
		SHA256  string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(c.read(t, "/var/lib/sajet-agent/state.json")), &state); err != nil || state.Version == 0 {
		t.Fatalf("state.json before the upgrade: %+v %v", state, err)
	}
	out, err := c.exec(5*time.Minute, "sh", "-c", "apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold /var/tmp/pkgs/1/*.deb")
	if err != nil {
		t.Fatalf("apt install of the upgrade: %v", err)
	}
	t.Log(out)
	want := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(deb), "sajet-agent_"), "_amd64.deb")
	if got := c.sh(t, "dpkg-query -W -f '${Version}' sajet-agent"); got != want {
		t.Errorf("installed version %s, want %s", got, want)
	}
	if c.read(t, "/etc/sajet-agent/agent.yml") != agentYML || c.read(t, "/etc/polkit-1/rules.d/50-sajet-agent.rules") != rule ||
		c.read(t, "/etc/sajet-agent/base.yml") != base {
		t.Error("the upgrade changed agent.yml, the edited polkit rule or base.yml")
	}
	after := c.unitProps(t, "sajet-agent.service", "MainPID", "ActiveState")
	if after["ActiveState"] != "active" || after["MainPID"] == before["MainPID"] {
		t.Errorf("sajet-agent.service %v → %v: want it restarted by the upgrade and active", before, after)
	}
	s.waitConnected(t)
	st := s.mustStatus(t)
	if st.Config.AppliedVersion != state.Version || st.Config.AppliedHash != state.SHA256 {
		t.Errorf("after the upgrade the agent applies version %d (%s), want the state kept: %d (%s)",
			st.Config.AppliedVersion, st.Config.AppliedHash, state.Version, state.SHA256)
	}
}

func (s *sysEnv) commitToAck(t *testing.T) {
	c := s.c
	s.polkitUnits(t, "cloudflared.service")
	s.agentConfig(t, "unit: cloudflared.service\n")
	s.restartAgent(t)
	s.change(t, "warmup.commit-test.com") // the first apply after the switch restarts cloudflared on our config
	restartsBefore := s.mustStatus(t).Cloudflared.RestartsByAgent
	pidBefore := c.unitProps(t, "cloudflared.service", "MainPID")["MainPID"]
	const changes = 30
	lat := make([]time.Duration, 0, changes)
	for i := range changes {
		start := time.Now()
		s.change(t, fmt.Sprintf("shop-%02d.commit-test.com", i))
		lat = append(lat, time.Since(start))
	}
	restarts := s.mustStatus(t).Cloudflared.RestartsByAgent - restartsBefore
	if restarts != changes {
		t.Errorf("cloudflared restarted %d times by the agent, want %d (one per change)", restarts, changes)
	}
	if c.unitProps(t, "cloudflared.service", "MainPID")["MainPID"] == pidBefore {
		t.Error("cloudflared.service has the same pid: it was not restarted")
	}
	slices.Sort(lat)
	figure(t, map[string]any{"figure": "commit_to_ack_real_systemd", "changes": changes, "unit": "cloudflared.service (real cloudflared 2026.8.2)",
		"ready_gate": false, "start_grace_ms": 2000, "p50_ms": ms(percentile(lat, 0.5)), "p99_ms": ms(percentile(lat, 0.99)), "max_ms": ms(lat[len(lat)-1])})
}

func (s *sysEnv) removeAndPurge(t *testing.T) {
	c := s.c
	cfBefore := c.unitProps(t, "cloudflared.service", "MainPID")
	config := c.read(t, "/etc/cloudflared/config.yml")
	creds := c.read(t, "/etc/cloudflared/"+tunnelUUID+".json")
	agentPID := c.unitProps(t, "sajet-agent.service", "MainPID")["MainPID"]
	if _, err := c.exec(5*time.Minute, "apt-get", "remove", "-y", "sajet-agent"); err != nil {
		t.Fatal(err)
	}
	if comm, err := c.exec(time.Minute, "cat", "/proc/"+agentPID+"/comm"); err == nil && strings.TrimSpace(comm) == "sajet-agent" {
		t.Errorf("sajet-agent (pid %s) still runs after apt remove", agentPID)
	}
	if out, _ := c.exec(time.Minute, "systemctl", "is-active", "sajet-agent.service"); strings.TrimSpace(out) == "active" {
		t.Error("sajet-agent.service is still active after apt remove")
	}
	if _, err := os.Stat(c.path("/etc/sajet-agent/agent.yml")); err != nil {
		t.Errorf("remove must keep agent.yml: %v", err)
	}
	if _, err := c.exec(5*time.Minute, "apt-get", "purge", "-y", "sajet-agent"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/sajet-agent", "/var/lib/sajet-agent", "/etc/polkit-1/rules.d/50-sajet-agent.rules"} {
		if _, err := os.Stat(c.path(p)); err == nil {
			t.Errorf("purge left %s", p)
		}
	}
	if c.read(t, "/etc/cloudflared/config.yml") != config || c.read(t, "/etc/cloudflared/"+tunnelUUID+".json") != creds {
		t.Error("purge changed /etc/cloudflared")
	}
	if got := c.unitProps(t, "cloudflared.service", "MainPID", "ActiveState"); got["ActiveState"] != "active" || got["MainPID"] != cfBefore["MainPID"] {
		t.Errorf("cloudflared.service %v → %v: remove and purge must leave it running", cfBefore, got)
	}
}
