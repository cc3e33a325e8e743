package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/agent/systemd/systemdtest"
)

// cloudflared is not packaged for Debian, so this stand-in records its arguments and answers as
// cloudflared does: exit status, and "unused keys" warnings on an exit status of 0.
func fakeCloudflared(t *testing.T, output string, status int) (bin, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	bin, argsFile = filepath.Join(dir, "cloudflared"), filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\necho '" + output + "'\nexit " + string(rune('0'+status)) + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, argsFile
}

func TestCloudflaredCheck(t *testing.T) {
	for _, tc := range []struct {
		name, output string
		status       int
		wantErr      string
	}{
		{"valid", "OK", 0, ""},
		{"invalid", "Validation failed: rule #2 has an invalid regex", 1, "rule #2 has an invalid regex"},
		{"unused keys only warn in cloudflared", "Warning: unused keys detected in your config file: [ingres]", 0, "unused keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, argsFile := fakeCloudflared(t, tc.output, tc.status)
			err := CloudflaredCheck(bin)(context.Background(), "/tmp/x/.sajet-tmp-config.yml-1")
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("check = %v, want %q", err, tc.wantErr)
			}
			args, _ := os.ReadFile(argsFile)
			if got := strings.TrimSpace(string(args)); got != "tunnel --config /tmp/x/.sajet-tmp-config.yml-1 ingress validate" {
				t.Errorf("cloudflared called with %q", got)
			}
		})
	}
}

// Verify waits for the unit to be active on the real bus and for cloudflared's /ready to report
// edge connections.
func TestSystemdUnitVerifiesActiveAndReady(t *testing.T) {
	bus := systemdtest.StartBus(t)
	m := systemdtest.NewManager(t, bus, "cloudflared.service")
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Address)
	var conns atomic.Int64
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := conns.Load()
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write([]byte(`{"status":200,"readyConnections":` + string(rune('0'+n)) + `}`))
	}))
	defer ready.Close()
	u := &SystemdUnit{Name: "cloudflared.service", RestartTimeout: 5 * time.Second, ReadyTimeout: 2 * time.Second, ReadyURL: ready.URL + "/ready"}
	defer u.Close()

	if err := u.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); conns.Store(4) }()
	if err := u.Verify(context.Background()); err != nil {
		t.Fatalf("Verify = %v, want ready once cloudflared reports connections", err)
	}
	st, err := u.State(context.Background())
	if err != nil || st.ActiveState != "active" || st.ReadyConnections != 4 {
		t.Errorf("State = %+v, %v", st, err)
	}

	conns.Store(0)
	if err := u.Verify(context.Background()); err == nil || !strings.Contains(err.Error(), "not ready within") {
		t.Errorf("Verify without edge connections = %v", err)
	}
	m.SetState("cloudflared.service", "failed", "failed")
	if err := u.Verify(context.Background()); err == nil || !strings.Contains(err.Error(), "failed") {
		t.Errorf("Verify of a failed unit = %v", err)
	}
	if m.Restarts("cloudflared.service") != 1 {
		t.Errorf("restarts = %d", m.Restarts("cloudflared.service"))
	}
}

// A unit that exits right after systemd called it active (Type=simple, cloudflared refusing its
// config) fails Verify: without a ready URL within StartGrace, with one at once instead of after
// ReadyTimeout.
func TestSystemdUnitVerifyCatchesAnExitAfterStart(t *testing.T) {
	bus := systemdtest.StartBus(t)
	m := systemdtest.NewManager(t, bus, "cloudflared.service")
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Address)
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	for _, tc := range []struct {
		name     string
		readyURL string
	}{{"no ready url: held for StartGrace", ""}, {"ready url: the wait for /ready ends", notReady.URL + "/ready"}} {
		t.Run(tc.name, func(t *testing.T) {
			u := &SystemdUnit{Name: "cloudflared.service", RestartTimeout: 5 * time.Second, ReadyTimeout: time.Minute,
				StartGrace: time.Minute, ReadyURL: tc.readyURL}
			defer u.Close()
			m.SetState("cloudflared.service", "active", "running")
			go func() {
				time.Sleep(300 * time.Millisecond)
				m.SetState("cloudflared.service", "activating", "auto-restart")
			}()
			err := u.Verify(context.Background())
			if err == nil || !strings.Contains(err.Error(), "cloudflared.service did not stay up: activating (auto-restart)") {
				t.Fatalf("Verify = %v, want it to say the unit did not stay up", err)
			}
		})
	}
	// A unit that stays up passes once StartGrace is over.
	m.SetState("cloudflared.service", "active", "running")
	u := &SystemdUnit{Name: "cloudflared.service", RestartTimeout: 5 * time.Second, ReadyTimeout: time.Second, StartGrace: 300 * time.Millisecond}
	defer u.Close()
	if err := u.Verify(context.Background()); err != nil {
		t.Errorf("Verify of a unit that stays active = %v", err)
	}
}
