package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/agent/apply"
	"github.com/jeturing/sajet-domains/agent/systemd/systemdtest"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/ingress"
)

// stack is a control plane with one tunnel host.
type stack struct {
	cp   *controlPlane
	node *node
}

func newStack(t *testing.T) *stack {
	t.Helper()
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	cp := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile)
	token := cp.seed(t)
	return &stack{cp: cp, node: newNode(t, cp, token)}
}

func (s *stack) waitConfigured(t *testing.T, host string) domain {
	t.Helper()
	var d domain
	testwait.For(t, 30*time.Second, func() string {
		d = s.cp.getDomain(t, host)
		if !d.TunnelIngressConfigured {
			return host + ": tunnel_ingress_configured is still false"
		}
		return ""
	})
	return d
}

func assertCompleteConfig(t *testing.T, content string) {
	t.Helper()
	if err := ingress.ValidateFile([]byte(content)); err != nil {
		t.Fatalf("config.yml is not valid: %v\n%s", err, content)
	}
	if !strings.Contains(content, "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef") || !strings.Contains(content, "hostname: ops.sajet.us") {
		t.Fatalf("config.yml lost the operator's base:\n%s", content)
	}
}

// The end-to-end path with both binaries and a real bus: create a domain through the REST
// API → config.yml has both hostnames → tunnel_ingress_configured; delete → rules gone.
func TestDomainLifecycleReachesCloudflaredConfig(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.node.startAgent(t)
	d := s.cp.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")
	cfg := s.node.config(t)
	for _, host := range []string{"www.impulse-max.com", d.SajetFullDomain} {
		if !strings.Contains(cfg, "hostname: "+host+"\n    service: http://10.10.10.105:8069") {
			t.Errorf("config.yml lacks %s → backend:\n%s", host, cfg)
		}
	}
	assertCompleteConfig(t, cfg)
	if n := s.node.systemd.Restarts("cloudflared.service"); n < 1 {
		t.Errorf("cloudflared restarted %d times, want ≥ 1", n)
	}

	var agents struct {
		Items []struct {
			Name           string         `json:"name"`
			Connected      bool           `json:"connected"`
			AppliedVersion *int64         `json:"applied_version"`
			InSync         bool           `json:"in_sync"`
			Status         map[string]any `json:"status"`
		} `json:"items"`
	}
	testwait.For(t, 10*time.Second, func() string {
		s.cp.call(t, "GET", "/api/agents", "", &agents)
		if len(agents.Items) != 1 || !agents.Items[0].Connected || !agents.Items[0].InSync || agents.Items[0].Status == nil {
			return "GET /api/agents does not show the agent connected, in sync and reporting"
		}
		// The first report may leave before the agent has read the unit's state.
		if u, _ := agents.Items[0].Status["unit"].(map[string]any); u["active_state"] != "active" {
			return "the agent's report does not show cloudflared active"
		}
		return ""
	})

	res, err := http.Get(s.cp.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"sajet_gateway_sessions 1", `sajet_gateway_push_duration_seconds_count{result="ack"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("control plane /metrics lacks %s", want)
		}
	}

	if code := s.cp.call(t, "DELETE", "/api/domains/www.impulse-max.com", "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	testwait.For(t, 30*time.Second, func() string {
		if c := s.node.config(t); strings.Contains(c, "impulse-max") {
			return "config.yml still routes the deleted domain"
		}
		return ""
	})
	assertCompleteConfig(t, s.node.config(t))
	st := s.node.status(t)
	if st.Status != "pass" || !st.ControlPlane.Connected || st.Cloudflared.ActiveState != "active" {
		t.Errorf("/status = %+v, want pass, connected, active", st)
	}
}

// Each restart outcome on a real bus: the agent ACKs only a restart that ran and left the unit
// active; otherwise it restores the last good file, restarts on it, and NACKs with the stage.
func TestRestartOutcomesOverDBus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		behavior systemdtest.Behavior
		ok       bool
		stage    string
	}{
		{"done", systemdtest.Behavior{}, true, ""},
		{"job removed before the reply", systemdtest.Behavior{JobRemovedFirst: true}, true, ""},
		{"another job's result first", systemdtest.Behavior{ForeignJobRemovedFirst: true}, true, ""},
		{"failed", systemdtest.Behavior{Result: "failed"}, false, "restart"},
		{"no result (timeout)", systemdtest.Behavior{NoJobRemoved: true}, false, "restart"},
		{"done but not active", systemdtest.Behavior{ActiveAfter: "failed"}, false, "verify"},
	}
	s := newStack(t)
	s.node.startAgent(t)
	s.cp.createDomain(t, "good.example.com")
	s.waitConfigured(t, "good.example.com")
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lastGood := s.node.config(t)
			before := s.node.systemd.Restarts("cloudflared.service")
			// Only the first restart misbehaves; the rollback's restart works.
			s.node.systemd.SetBehavior("cloudflared.service", tc.behavior)
			s.node.systemd.OnRestart(func(string) {
				s.node.systemd.SetBehavior("cloudflared.service", systemdtest.Behavior{})
			})
			host := "case" + string(rune('a'+i)) + ".example.com"
			s.cp.createDomain(t, host)
			if tc.ok {
				s.waitConfigured(t, host)
				if c := s.node.config(t); !strings.Contains(c, host) {
					t.Errorf("config.yml lacks %s", host)
				}
				if got := s.node.systemd.Restarts("cloudflared.service") - before; got != 1 {
					t.Errorf("restarts = %d, want 1", got)
				}
				return
			}
			testwait.For(t, 30*time.Second, func() string {
				d := s.cp.getDomain(t, host)
				if d.LastError == nil || !strings.Contains(*d.LastError, tc.stage) {
					return host + ": no NACK at " + tc.stage + " shown on the domain yet"
				}
				return ""
			})
			if c := s.node.config(t); c != lastGood {
				t.Errorf("config.yml is not the last good file after the failed restart:\n%s", c)
			}
			if got := s.node.systemd.Restarts("cloudflared.service") - before; got != 2 {
				t.Errorf("restarts = %d, want 2 (the failed one and the rollback's)", got)
			}
			if d := s.cp.getDomain(t, host); d.TunnelIngressConfigured {
				t.Error("a NACKed domain shows tunnel_ingress_configured")
			}
			st := s.node.status(t)
			if st.Config.LastError == nil || st.Config.LastError.Stage != tc.stage {
				t.Errorf("/status last_error = %+v, want stage %s", st.Config.LastError, tc.stage)
			}
			var agents struct {
				Items []struct {
					LastError *string `json:"last_error"`
				} `json:"items"`
			}
			s.cp.call(t, "GET", "/api/agents", "", &agents)
			if len(agents.Items) != 1 || agents.Items[0].LastError == nil || !strings.HasPrefix(*agents.Items[0].LastError, tc.stage+":") {
				t.Errorf("GET /api/agents does not show the NACK at %s: %+v", tc.stage, agents.Items)
			}
			// Remove the refused domain so the next case starts from a good state.
			s.cp.call(t, "DELETE", "/api/domains/"+host, "", nil)
			testwait.For(t, 30*time.Second, func() string {
				if st := s.node.status(t); st.Config.LastError != nil {
					return "the agent still reports the failed apply"
				}
				return ""
			})
		})
	}
}

// SIGKILL at each step of the apply: the file on disk is always complete and valid, and the
// restarted agent converges.
func TestAgentKilledAtEachApplyStep(t *testing.T) {
	t.Parallel()
	for _, step := range []string{apply.StepTempWritten, apply.StepPendingWritten, apply.StepPublished, apply.StepRestarted} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			s := newStack(t)
			s.node.startAgent(t)
			s.cp.createDomain(t, "first.example.com")
			s.waitConfigured(t, "first.example.com")
			s.node.agent.Stop(t, syscall.SIGTERM, 30*time.Second)

			p := s.node.startAgent(t, "SAJET_AGENT_FAULT_KILL_AT="+step)
			s.cp.createDomain(t, "second.example.com")
			select {
			case <-p.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("the agent did not reach the step")
			}
			assertCompleteConfig(t, s.node.config(t))

			s.node.startAgent(t)
			s.waitConfigured(t, "second.example.com")
			c := s.node.config(t)
			assertCompleteConfig(t, c)
			if !strings.Contains(c, "second.example.com") || !strings.Contains(c, "first.example.com") {
				t.Errorf("after restart config.yml lacks a domain:\n%s", c)
			}
		})
	}
}

// A control plane restart while the agent is connected: the agent reconnects and cloudflared is
// not restarted, because nothing changed.
func TestControlPlaneRestartDoesNotRestartCloudflared(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.node.startAgent(t)
	s.cp.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")
	before := s.node.systemd.Restarts("cloudflared.service")
	epoch := s.node.status(t).ControlPlane.Epoch
	file := s.node.config(t)

	s.cp.p.Stop(t, syscall.SIGTERM, 30*time.Second)
	testwait.For(t, 10*time.Second, func() string {
		if s.node.status(t).ControlPlane.Connected {
			return "the agent has not noticed the control plane is gone"
		}
		return ""
	})
	s.cp.start(t)
	testwait.For(t, 40*time.Second, func() string {
		st := s.node.status(t)
		if !st.ControlPlane.Connected || st.ControlPlane.Epoch == epoch {
			return "the agent has not reconnected"
		}
		return ""
	})
	time.Sleep(500 * time.Millisecond) // a needless push would arrive right after the hello
	if got := s.node.systemd.Restarts("cloudflared.service"); got != before {
		t.Errorf("cloudflared restarted %d times after a control plane restart, want 0", got-before)
	}
	if s.node.config(t) != file {
		t.Error("config.yml changed although nothing changed")
	}
	// And the new session works.
	s.cp.createDomain(t, "shop.impulse-max.com")
	s.waitConfigured(t, "shop.impulse-max.com")
}

// Drift: a hand edit of config.yml is reverted; an edit of the base file is rendered in.
func TestDriftIsRevertedAndBaseEditsRendered(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.node.startAgent(t)
	s.cp.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")
	ours := s.node.config(t)
	restarts := s.node.systemd.Restarts("cloudflared.service")

	writeFile(t, s.node.configPath, strings.Replace(ours, "http://10.10.10.105:8069", "http://evil.example:80", 1))
	testwait.For(t, 10*time.Second, func() string {
		if s.node.config(t) != ours {
			return "the hand edit was not reverted"
		}
		if s.node.status(t).Config.Drift < 1 {
			return "drift not counted"
		}
		return ""
	})
	// cloudflared has not started since it was verified on our config: it never read the edit.
	if got := s.node.systemd.Restarts("cloudflared.service"); got != restarts {
		t.Errorf("reverting a hand edit restarted cloudflared %d times; it still runs our config", got-restarts)
	}

	writeFile(t, s.node.basePath, strings.Replace(baseFile, "  - service: http_status:404",
		"  - hostname: grafana.sajet.us\n    service: http://127.0.0.1:3000\n  - service: http_status:404", 1))
	testwait.For(t, 10*time.Second, func() string {
		c := s.node.config(t)
		if !strings.Contains(c, "grafana.sajet.us") || !strings.Contains(c, "www.impulse-max.com") {
			return "the base edit was not rendered"
		}
		return ""
	})
	assertCompleteConfig(t, s.node.config(t))
}

// A wrong token is refused by the real gateway; the agent says so on /readyz and applies nothing.
func TestWrongTokenIsRefused(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.node.cfg["token"] = "sja_" + strings.Repeat("0", 43)
	p := s.node.startAgent(t)
	lines := p.Watch()
	proctest.WaitLine(t, lines, regexp.MustCompile(`control plane refused the agent.*unauthorized`), 30*time.Second)
	if st := s.node.status(t); st.ControlPlane.Connected || st.Status != "fail" {
		t.Errorf("/status = %+v, want not connected and failing", st)
	}
	if c := s.node.config(t); c != baseFile {
		t.Error("a refused agent changed config.yml")
	}
}

// Two control-plane replicas on one database: the agent holds its session with replica B, and a
// domain created through replica A reaches it (LISTEN/NOTIFY across processes).
func TestChangeThroughOneReplicaReachesAgentOnAnother(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	a := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile)
	token := a.seed(t)
	b := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile)
	n := newNode(t, b, token) // the agent dials replica B only
	n.startAgent(t)
	testwait.For(t, 10*time.Second, func() string {
		if !n.status(t).ControlPlane.Connected {
			return "agent not connected to replica B"
		}
		return ""
	})
	a.createDomain(t, "www.impulse-max.com")
	s := &stack{cp: a, node: n}
	s.waitConfigured(t, "www.impulse-max.com")
	if c := n.config(t); !strings.Contains(c, "hostname: www.impulse-max.com") {
		t.Errorf("config.yml lacks the domain created through replica A:\n%s", c)
	}
}
