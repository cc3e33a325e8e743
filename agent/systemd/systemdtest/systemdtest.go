// Package systemdtest runs a private dbus-daemon with a fake systemd manager on it, so the
// agent's real go-systemd code path runs over a real bus in tests (DESIGN §9): RestartUnit with
// JobRemoved signals (including before the method reply, late, never, or for another job), unit
// properties, and polkit-style denials.
package systemdtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Bus is a private dbus-daemon.
type Bus struct {
	// Address is the bus address for DBUS_SYSTEM_BUS_ADDRESS.
	Address string
	config  string
	socket  string
	cmd     *exec.Cmd
}

// StartBus starts a private bus, stopped at the end of the test. It skips the test only when
// dbus-daemon is not installed (.ci/run installs the dbus package).
func StartBus(t testing.TB) *Bus {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon not installed (apt-get install dbus; .ci/run does it)")
	}
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "sbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := &Bus{config: filepath.Join(dir, "bus.conf"), socket: filepath.Join(dir, "bus")}
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

func (b *Bus) start(t testing.TB) {
	t.Helper()
	os.Remove(b.socket)
	cmd := exec.Command("dbus-daemon", "--config-file="+b.config, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// stderr is dropped: as non-root in containers it complains about fd limits it cannot raise.
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		close(line)
	}()
	select {
	case addr, ok := <-line:
		if !ok || addr == "" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("dbus-daemon printed no address")
		}
		b.Address, b.cmd = addr, cmd
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("dbus-daemon did not start within 10s")
	}
}

func (b *Bus) stop() {
	if b.cmd != nil {
		_ = b.cmd.Process.Kill()
		_ = b.cmd.Wait()
		b.cmd = nil
	}
}

// Restart kills the daemon and starts it again on the same address: every connection drops, as
// when dbus-daemon restarts on a host. Managers must be created again.
func (b *Bus) Restart(t testing.TB) {
	t.Helper()
	b.stop()
	b.start(t)
}

// Behavior is how the fake manager answers RestartUnit for one unit.
type Behavior struct {
	// Result is the JobRemoved result; "" means "done".
	Result string
	// NoJobRemoved never signals the job's end (from the client's side: a timeout).
	NoJobRemoved bool
	// JobRemovedFirst signals the job's end before sending the method reply.
	JobRemovedFirst bool
	// ForeignJobRemovedFirst signals another job's end (another unit) before this one's.
	ForeignJobRemovedFirst bool
	// Delay before JobRemoved.
	Delay time.Duration
	// ActiveAfter is the unit's ActiveState after the job; "" = "active" for done, else "failed".
	ActiveAfter string
	// Deny answers RestartUnit with org.freedesktop.DBus.Error.AccessDenied, as polkit does for a
	// user without the rule.
	Deny bool
}

type unit struct {
	name        string
	active, sub string
	nRestarts   uint32
	activeEnter uint64
	behavior    Behavior
	restarts    int
}

// Manager is a fake org.freedesktop.systemd1 on a Bus.
type Manager struct {
	conn *dbus.Conn

	mu        sync.Mutex
	units     map[string]*unit
	nextJob   uint32
	onRestart func(unit string)
}

// NewManager claims org.freedesktop.systemd1 on bus and serves units (all active and running).
func NewManager(t testing.TB, bus *Bus, units ...string) *Manager {
	t.Helper()
	conn, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatalf("connect to private bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	m := &Manager{conn: conn, units: map[string]*unit{}, nextJob: 100}
	for _, name := range units {
		m.units[name] = &unit{name: name, active: "active", sub: "running", activeEnter: uint64(time.Now().UnixMicro())}
		if err := conn.Export(props{m, name}, unitPath(name), "org.freedesktop.DBus.Properties"); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Export(manager{m}, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("claim org.freedesktop.systemd1: reply %v, %v", reply, err)
	}
	return m
}

func unitPath(name string) dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sdbus.PathBusEscape(name))
}

// SetBehavior sets how later restarts of unit behave.
func (m *Manager) SetBehavior(name string, b Behavior) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.units[name].behavior = b
}

// OnRestart calls f (outside the manager's lock) after each RestartUnit call was received and its
// behaviour fixed, so f may change the behaviour of the next restarts.
func (m *Manager) OnRestart(f func(unit string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onRestart = f
}

// Restarts is the number of RestartUnit calls for unit.
func (m *Manager) Restarts(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.units[name].restarts
}

// SetState sets the unit's ActiveState and SubState.
func (m *Manager) SetState(name, active, sub string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.units[name].active, m.units[name].sub = active, sub
}

// manager is the exported org.freedesktop.systemd1.Manager object.
type manager struct{ m *Manager }

// RestartUnit implements the D-Bus method of the same name.
func (x manager) RestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	m := x.m
	m.mu.Lock()
	u, ok := m.units[name]
	if !ok {
		m.mu.Unlock()
		return "", dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{fmt.Sprintf("Unit %s not found.", name)})
	}
	if mode != "replace" && mode != "fail" {
		m.mu.Unlock()
		return "", dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"Job mode " + mode + " invalid."})
	}
	b := u.behavior
	if b.Deny {
		m.mu.Unlock()
		return "", dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"Interactive authentication required."})
	}
	u.restarts++
	m.nextJob++
	id := m.nextJob
	hook := m.onRestart
	m.mu.Unlock()
	if hook != nil {
		hook(name)
	}

	job := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
	result := b.Result
	if result == "" {
		result = "done"
	}
	finish := func() {
		active := b.ActiveAfter
		if active == "" {
			active = "active"
			if result != "done" {
				active = "failed"
			}
		}
		m.mu.Lock()
		u.active = active
		u.sub = map[string]string{"active": "running", "failed": "failed", "inactive": "dead", "activating": "start"}[active]
		u.activeEnter = uint64(time.Now().UnixMicro())
		m.mu.Unlock()
		if b.ForeignJobRemovedFirst {
			_ = m.conn.Emit("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager.JobRemoved",
				uint32(999999), dbus.ObjectPath("/org/freedesktop/systemd1/job/999999"), "other.service", "failed")
		}
		_ = m.conn.Emit("/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager.JobRemoved", id, job, name, result)
	}
	switch {
	case b.NoJobRemoved:
	case b.JobRemovedFirst:
		finish() // the signal leaves before the method reply
	default:
		go func() {
			time.Sleep(b.Delay + time.Millisecond) // after the reply
			finish()
		}()
	}
	return job, nil
}

// props is the exported org.freedesktop.DBus.Properties of one unit.
type props struct {
	m    *Manager
	name string
}

// GetAll implements org.freedesktop.DBus.Properties.GetAll.
func (p props) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	u := p.m.units[p.name]
	switch iface {
	case "org.freedesktop.systemd1.Unit":
		return map[string]dbus.Variant{
			"Id":                   dbus.MakeVariant(u.name),
			"LoadState":            dbus.MakeVariant("loaded"),
			"ActiveState":          dbus.MakeVariant(u.active),
			"SubState":             dbus.MakeVariant(u.sub),
			"ActiveEnterTimestamp": dbus.MakeVariant(u.activeEnter),
		}, nil
	case "org.freedesktop.systemd1.Service":
		return map[string]dbus.Variant{
			"NRestarts": dbus.MakeVariant(u.nRestarts),
			"MainPID":   dbus.MakeVariant(uint32(4242)),
		}, nil
	}
	return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{"Unknown interface " + iface})
}

// Get implements org.freedesktop.DBus.Properties.Get.
func (p props) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	all, err := p.GetAll(iface)
	if err != nil {
		return dbus.Variant{}, err
	}
	v, ok := all[name]
	if !ok {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{"Unknown property " + name})
	}
	return v, nil
}
