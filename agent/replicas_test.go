package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/agent/config"
	"github.com/jeturing/sajet-domains/agent/systemd"
	"github.com/jeturing/sajet-domains/agent/systemd/systemdtest"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// fakeReplica is one cloudflared replica behind the fake systemd: its /ready answers 503 for
// readyDelay after each restart, then 200; restarted on a config routing fail.example.com it
// never becomes ready (cloudflared exiting on a config it refuses, as the agent sees it).
type fakeReplica struct {
	unit    string
	srv     *httptest.Server
	readyAt atomic.Int64 // unix nanos; math.MaxInt64 = never
}

func (r *fakeReplica) ready() bool { return time.Now().UnixNano() >= r.readyAt.Load() }

type replicaHarness struct {
	sd       *systemdtest.Manager
	replicas []*fakeReplica
	cfg      *config.Config
	a        *Agent

	mu         sync.Mutex
	violations []string // restarts that began while another replica was not ready
}

type protocolSession = func(d protocol.Desired) protocol.Ack

// startReplicaAgent runs an agent with two replicas, cloudflared@1.service and
// cloudflared@2.service, on a private bus with the fake systemd; deny makes systemd refuse
// every restart of them as polkit does.
func startReplicaAgent(t *testing.T, readyDelay time.Duration, deny bool) (*replicaHarness, protocolSession) {
	t.Helper()
	bus := systemdtest.StartBus(t)
	names := []string{"cloudflared@1.service", "cloudflared@2.service"}
	h := &replicaHarness{sd: systemdtest.NewManager(t, bus, names...)}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Address)
	dir := t.TempDir()
	var units strings.Builder
	for _, name := range names {
		r := &fakeReplica{unit: name}
		r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if !r.ready() {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"status":503,"readyConnections":0}`))
				return
			}
			_, _ = w.Write([]byte(`{"status":200,"readyConnections":4}`))
		}))
		t.Cleanup(r.srv.Close)
		h.replicas = append(h.replicas, r)
		fmt.Fprintf(&units, "  - name: %s\n    ready_url: %s/ready\n", name, r.srv.URL)
		if deny {
			h.sd.SetBehavior(name, systemdtest.Behavior{Deny: true})
		}
	}
	configPath := filepath.Join(dir, "config.yml")
	h.sd.OnRestart(func(unit string) {
		data, _ := os.ReadFile(configPath)
		for _, r := range h.replicas {
			switch {
			case r.unit == unit:
				if strings.Contains(string(data), "fail.example.com") {
					r.readyAt.Store(1 << 62)
				} else {
					r.readyAt.Store(time.Now().Add(readyDelay).UnixNano())
				}
			case !r.ready():
				h.mu.Lock()
				h.violations = append(h.violations, unit+" restarted while "+r.unit+" was not ready")
				h.mu.Unlock()
			}
		}
	})
	cp := startFakeCP(t)
	writeFile(t, filepath.Join(dir, "base.yml"), testBase)
	cfg, err := config.Parse([]byte(`control_plane: ` + cp.ln.Addr().String() + `
token: sja_test
tunnel: tcs-sajet-tunnel
base_config: ` + filepath.Join(dir, "base.yml") + `
config_path: ` + configPath + `
units:
` + units.String() + `state_dir: ` + filepath.Join(dir, "state") + `
keepalive: 1s
status_interval: 200ms
min_restart_interval: 1ms
ready_timeout: 1s
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Fingerprint = gatewaytest.FingerprintOf(cp.cert)
	h.cfg = cfg
	client := &systemd.Client{}
	t.Cleanup(client.Close)
	var controls []UnitControl
	for _, u := range cfg.Replicas() {
		controls = append(controls, &SystemdUnit{Name: u.Name, ReadyURL: u.ReadyURL, Client: client,
			RestartTimeout: 5 * time.Second, ReadyTimeout: cfg.ReadyTimeout, StartGrace: cfg.StartGrace})
	}
	a, err := New(context.Background(), cfg, Options{Build: "test", Units: controls, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h.a = a
	ys := cp.session(t)
	return h, func(d protocol.Desired) protocol.Ack { return push(t, ys, d) }
}

func (h *replicaHarness) restarts() [2]int {
	return [2]int{h.sd.Restarts("cloudflared@1.service"), h.sd.Restarts("cloudflared@2.service")}
}

// Over the real go-systemd path: every apply restarts both replicas, one at a time, each only
// once the other is ready again; a config one replica cannot run is rolled back on it before the
// other is touched.
func TestReplicasAreRestartedOneAtATimeAndRolledBackAlone(t *testing.T) {
	h, push := startReplicaAgent(t, 150*time.Millisecond, false)
	for v := int64(1); v <= 3; v++ {
		ack := push(desired(v, fmt.Sprintf("v%d.example.com", v)))
		if !ack.OK || !ack.Restarted {
			t.Fatalf("ack v%d = %+v", v, ack)
		}
	}
	if got := h.restarts(); got != [2]int{3, 3} {
		t.Errorf("restarts = %v, want 3 each", got)
	}
	if len(h.violations) > 0 {
		t.Errorf("replicas restarted while another was not ready:\n%s", strings.Join(h.violations, "\n"))
	}
	good := readFile(t, h.cfg.ConfigPath)

	ack := push(desired(4, "fail.example.com"))
	if ack.OK || ack.Stage != protocol.StageVerify || !strings.Contains(ack.Error, "cloudflared@1.service not ready") || ack.AppliedVersion != 3 {
		t.Fatalf("ack of a config the first replica cannot run = %+v, want a NACK at verify naming cloudflared@1.service", ack)
	}
	if got := h.restarts(); got != [2]int{5, 3} {
		t.Errorf("restarts = %v, want [5 3]: the failed replica twice (new config, last good), the other never", got)
	}
	if readFile(t, h.cfg.ConfigPath) != good {
		t.Error("config.yml is not the last good config after the rollback")
	}
	if !h.replicas[1].ready() {
		t.Error("cloudflared@2 stopped serving during the failed apply")
	}
	rep := h.a.Report()
	if len(rep.Cloudflared.Replicas) != 2 || rep.Cloudflared.Replicas[1].Unit != "cloudflared@2.service" ||
		rep.Cloudflared.Unit != "cloudflared@1.service, cloudflared@2.service" {
		t.Errorf("/status cloudflared = %+v, want both replicas", rep.Cloudflared)
	}
}

// A unit polkit does not allow: the NACK and /readyz say what to fix, config.yml is the last
// good one again, and nothing was restarted (systemd started no job).
func TestRefusedUnitIsNackedWithTheFixAndRestartsNothing(t *testing.T) {
	h, push := startReplicaAgent(t, 0, true)
	ack := push(desired(1, "www.example.com"))
	const fix = "polkit does not let the agent's user restart cloudflared@1.service: list it in the units of /etc/polkit-1/rules.d/50-sajet-agent.rules"
	if ack.OK || ack.Stage != protocol.StageRestart || !strings.Contains(ack.Error, fix) || ack.Restarted {
		t.Fatalf("ack = %+v, want a NACK at restart saying %q, nothing restarted", ack, fix)
	}
	if got := h.restarts(); got != [2]int{0, 0} {
		t.Errorf("restart jobs = %v, want none", got)
	}
	if err := h.a.Ready(); err == nil || !strings.Contains(err.Error(), fix) {
		t.Errorf("/readyz = %v, want it to say %q", err, fix)
	}
	if _, err := os.Stat(h.cfg.ConfigPath); !os.IsNotExist(err) {
		t.Errorf("config.yml after the refused apply: %v, want it gone again (there was none before)", err)
	}
	if h.a.applier.Snapshot().Degraded {
		t.Error("a refused restart changed nothing, so the agent is not degraded")
	}
}
