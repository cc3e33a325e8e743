// Package systemdtest runs a private dbus-daemon with a fake systemd manager on it, so tests drive
// the agent's real go-systemd code path over a real bus: RestartUnit with its JobRemoved signal
// (on time, late, never, before the method reply, after another job's), unit properties,
// polkit-style denials, and a dbus-daemon restart.
//
// Point the code under test at the bus with DBUS_SYSTEM_BUS_ADDRESS=Bus.Address (t.Setenv in
// process, or the environment of a subprocess such as sajet-agent).
package systemdtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bus is a private dbus-daemon.
type Bus struct {
	// Address is the bus address, for DBUS_SYSTEM_BUS_ADDRESS. It stays the same across Restart.
	Address string

	config string
	socket string

	mu       sync.Mutex
	cmd      *exec.Cmd
	managers []*Manager
}

// StartBus starts a private dbus-daemon, killed when the test ends. It skips the test when
// dbus-daemon is not installed (.ci/run installs the dbus package). It works as root and as an
// ordinary user: the policy lets any user connect, own any name and send anything.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon not installed (apt-get install dbus; .ci/run installs it)")
	}
	// Not t.TempDir(): test names make that path long, and a unix socket path is limited to 108
	// bytes.
	dir, err := os.MkdirTemp("", "sbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := &Bus{config: filepath.Join(dir, "bus.conf"), socket: filepath.Join(dir, "bus")}
	// The printed address carries the daemon's GUID, which changes on a restart; the bare path
	// does not, so clients redial the restarted daemon with the address they have.
	b.Address = "unix:path=" + b.socket
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=` + b.socket + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(b.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b.start(t)
	t.Cleanup(b.stop)
	return b
}

// start runs dbus-daemon and waits until it listens (it prints its address once it does).
func (b *Bus) start(t testing.TB) {
	t.Helper()
	_ = os.Remove(b.socket)
	cmd := exec.Command("dbus-daemon", "--config-file="+b.config, "--nofork", "--print-address=1")
	var stderr bytes.Buffer // read only after Wait; as non-root it warns about fd limits
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	line := make(chan string, 1)
	go func() {
		defer close(line)
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
	}()
	fail := func(msg string) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("%s: %s", msg, strings.TrimSpace(stderr.String()))
	}
	select {
	case addr := <-line:
		if addr == "" {
			fail("dbus-daemon printed no address")
		}
	case <-time.After(10 * time.Second):
		fail("dbus-daemon did not start within 10s")
	}
	b.mu.Lock()
	b.cmd = cmd
	b.mu.Unlock()
}

func (b *Bus) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
		b.cmd = nil
	}
}

// Restart kills dbus-daemon and starts it again on the same address, so every connection drops as
// when dbus-daemon restarts on a host. Like systemd there, the Managers on the bus connect again
// and reclaim org.freedesktop.systemd1 before Restart returns, keeping their units, behaviours
// and counters; clients must redial.
func (b *Bus) Restart(t testing.TB) {
	t.Helper()
	b.stop()
	b.start(t)
	b.mu.Lock()
	managers := append([]*Manager(nil), b.managers...)
	b.mu.Unlock()
	for _, m := range managers {
		m.attach(t)
	}
}

func (b *Bus) add(m *Manager) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.managers = append(b.managers, m)
}
