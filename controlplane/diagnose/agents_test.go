package diagnose_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
)

// backend is the tenant's backend on loopback; mode decides how it answers.
type backend struct {
	url  string
	ln   net.Listener
	mode atomic.Value // "up", "502", "slow", "hang"
	hits atomic.Int64
}

func startBackend(t testing.TB) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{url: "http://" + ln.Addr().String(), ln: ln}
	b.mode.Store("up")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		switch b.mode.Load() {
		case "502":
			w.WriteHeader(http.StatusBadGateway)
		case "slow":
			time.Sleep(700 * time.Millisecond)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.Redirect(w, r, "/web/login", http.StatusSeeOther)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return b
}

// fleet is the world's tunnel served by real sajet-agent processes connected to an in-process
// agent gateway.
type fleet struct {
	gw     *gateway.Server
	addr   string
	fp     string
	agents map[string]*proctest.Proc
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "sja_" + base64.RawURLEncoding.EncodeToString(b)
}

// startFleet routes the world's domain to b and starts one real agent per name.
func startFleet(t testing.TB, w *world, b *backend, names ...string) *fleet {
	t.Helper()
	ctx := context.Background()
	url := b.url
	if _, err := w.st.UpdateTenantDeployment(ctx, "t", *w.domain.TenantDeploymentID,
		store.DeploymentPatch{BackendURL: store.Change[*string]{Set: true, Value: &url}}); err != nil {
		t.Fatal(err)
	}
	cert := gatewaytest.Certificate(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	fl := &fleet{gw: &gateway.Server{Store: w.st, Logger: slog.New(slog.DiscardHandler), ProbeInterval: 100 * time.Millisecond},
		addr: ln.Addr().String(), fp: gatewaytest.FingerprintOf(cert), agents: map[string]*proctest.Proc{}}
	runCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = fl.gw.Serve(runCtx, ln) }()
	go func() {
		_ = (&gateway.Listener{ConnConfig: w.st.Pool().Config().ConnConfig, ReconcileInterval: time.Second}).Run(runCtx, fl.gw)
	}()
	w.prober = fl.gw
	_, bin := proctest.Binaries(t)
	tunnelID := w.tunnelIDTB(t)
	for _, name := range names {
		token := newToken()
		sum := sha256.Sum256([]byte(token))
		if _, err := w.st.CreateAgent(ctx, "t", tunnelID, name, sum[:]); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		base := filepath.Join(dir, "base.yml")
		if err := os.WriteFile(base, []byte("tunnel: "+storetest.TunnelUUID+"\ncredentials-file: /etc/cloudflared/t.json\ningress:\n  - service: http_status:404\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, _ := json.Marshal(map[string]any{
			"control_plane": fl.addr, "token": token, "tunnel": storetest.TunnelName, "name": name, "fingerprint": fl.fp,
			"base_config": base, "config_path": filepath.Join(dir, "config.yml"), "unit": "", "health_addr": "127.0.0.1:0",
			"state_dir": filepath.Join(dir, "state"), "status_interval": "1s", "keepalive": "1s",
		})
		cfgPath := filepath.Join(dir, "agent.yml")
		if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		p := proctest.Start(t, name, exec.Command(bin, "--config", cfgPath))
		proctest.WaitLine(t, p.Lines, regexp.MustCompile(`connected to the control plane`), 30*time.Second)
		fl.agents[name] = p
	}
	w.waitRouted(t, len(names))
	return fl
}

// waitRouted waits until n agents of the tunnel are connected and apply the domain's rules.
func (w *world) waitRouted(t testing.TB, n int) {
	t.Helper()
	testwait.Until(t, 30*time.Second, "the agents apply the domain's rules", func() bool {
		d, err := w.st.GetDomain(context.Background(), w.domain.ID)
		if err != nil || d.IngressVersion == nil {
			return false
		}
		as, err := w.st.TunnelAgents(context.Background(), w.tunnelIDTB(t))
		if err != nil {
			return false
		}
		ok := 0
		for _, a := range as {
			if a.Connected && a.AppliedVersion != nil && *a.AppliedVersion >= *d.IngressVersion {
				ok++
			}
		}
		return ok >= n
	})
}

func (w *world) tunnelIDTB(t testing.TB) int64 {
	t.Helper()
	td, err := w.st.GetTenantDeployment(context.Background(), *w.domain.TenantDeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	return *td.TunnelID
}

// The backend as two tunnel hosts (real agents) reach it: up, answering 502, slow, too slow to
// answer, and down. Each verdict says what was seen and what to do.
func TestBackendReachabilityFromEachTunnelHost(t *testing.T) {
	t.Parallel()
	w := newWorld(t, withoutDS)
	w.cfg.ProbeTimeout, w.cfg.SlowBackend = time.Second, 300*time.Millisecond
	b := startBackend(t)
	startFleet(t, w, b, "pct-105", "pct-106")

	r := w.report(t)
	expect(t, r, diagnose.PartTunnel, diagnose.OK, "Every agent of the tunnel (pct-105, pct-106)")
	expect(t, r, diagnose.PartBackend, diagnose.OK, "From every tunnel host (pct-105, pct-106)", "pct-105: HTTP 303", "pct-106: HTTP 303")
	if !r.Works {
		t.Errorf("a domain that works: %s", r.Summary)
	}
	if n := b.hits.Load(); n != 2 {
		t.Errorf("the backend got %d requests, want one probe per agent", n)
	}

	tests := []struct {
		mode    string
		verdict string
		want    []string
	}{
		{"502", "fail", []string{"the backend answers HTTP 502", "The application behind " + b.url + " is failing"}},
		{"slow", "warn", []string{"answers, but slowly", "over 300ms"}},
		{"hang", "fail", []string{"no answer in time", "firewall"}},
	}
	for _, tc := range tests {
		b.mode.Store(tc.mode)
		r := w.report(t)
		expect(t, r, diagnose.PartBackend, diagnose.Verdict(tc.verdict), tc.want...)
		if tc.verdict == "fail" && r.Works {
			t.Errorf("%s: the domain works", tc.mode)
		}
	}
	b.mode.Store("up")
	b.ln.Close()
	r = w.report(t)
	expect(t, r, diagnose.PartBackend, diagnose.Fail, "connection refused: nothing listens at that address", "Start the service at "+b.url)
}
