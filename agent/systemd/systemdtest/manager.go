package systemdtest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

const (
	managerPath  = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIface = "org.freedesktop.systemd1.Manager"
)

// Behavior is how the fake manager answers RestartUnit for one unit. The zero value is a restart
// that succeeds at once.
type Behavior struct {
	// Result is the JobRemoved result; "" means "done".
	Result string
	// NoJobRemoved never signals the job's end (from the client's side: a timeout).
	NoJobRemoved bool
	// JobRemovedFirst emits JobRemoved before sending the method reply, the race a client must
	// survive (the result arrives before it knows the job's path).
	JobRemovedFirst bool
	// ForeignJobRemovedFirst emits a JobRemoved for another job (job/999999, "other.service",
	// "failed") just before this job's, which the client must ignore.
	ForeignJobRemovedFirst bool
	// Delay is how long after the reply JobRemoved comes.
	Delay time.Duration
	// ActiveAfter is the unit's ActiveState once the job ends; "" means "active" when the result
	// is "done", else "failed".
	ActiveAfter string
	// Deny answers RestartUnit with org.freedesktop.DBus.Error.AccessDenied, as systemd does when
	// polkit refuses the caller; no job starts.
	Deny bool
}

type unit struct {
	name        string
	active, sub string
	nRestarts   uint32
	activeEnter uint64 // usec since the epoch
	behavior    Behavior
	restarts    int
}

// Manager is a fake org.freedesktop.systemd1 on a Bus. Its methods are safe for concurrent use.
type Manager struct {
	bus *Bus

	mu        sync.Mutex
	conn      *dbus.Conn
	units     map[string]*unit
	nextJob   uint32
	onRestart func(unit string)
}

// NewManager claims org.freedesktop.systemd1 on bus and serves the named units, all active and
// running. Calls naming other units get NoSuchUnit, as from systemd.
func NewManager(t testing.TB, bus *Bus, units ...string) *Manager {
	t.Helper()
	m := &Manager{bus: bus, units: map[string]*unit{}, nextJob: 100}
	now := uint64(time.Now().UnixMicro())
	for _, name := range units {
		m.units[name] = &unit{name: name, active: "active", sub: "running", activeEnter: now}
	}
	m.attach(t)
	t.Cleanup(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.conn.Close()
	})
	bus.add(m)
	return m
}

// attach connects to the bus, exports the manager and its units, and claims the name. It replaces
// (and closes) an earlier connection.
func (m *Manager) attach(t testing.TB) {
	t.Helper()
	conn, err := dbus.Connect(m.bus.Address)
	if err != nil {
		t.Fatalf("systemdtest: connect to the private bus: %v", err)
	}
	m.mu.Lock()
	names := make([]string, 0, len(m.units))
	for name := range m.units {
		names = append(names, name)
	}
	m.mu.Unlock()
	for _, name := range names {
		if err := conn.Export(properties{m, name}, unitPath(name), "org.freedesktop.DBus.Properties"); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.Export(manager{m}, managerPath, managerIface); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		conn.Close()
		t.Fatalf("systemdtest: claim org.freedesktop.systemd1: reply %v, %v (another Manager on this bus?)", reply, err)
	}
	m.mu.Lock()
	old := m.conn
	m.conn = conn
	m.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// unitPath is where systemd serves a unit, as go-systemd computes it.
func unitPath(name string) dbus.ObjectPath {
	return managerPath + "/unit/" + dbus.ObjectPath(sdbus.PathBusEscape(name))
}

// unitLocked returns a served unit; m.mu must be held.
func (m *Manager) unitLocked(name string) *unit {
	u, ok := m.units[name]
	if !ok {
		panic(fmt.Sprintf("systemdtest: unit %q is not served by this Manager (pass it to NewManager)", name))
	}
	return u
}

// SetBehavior sets how later restarts of unit behave.
func (m *Manager) SetBehavior(unit string, b Behavior) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unitLocked(unit).behavior = b
}

// OnRestart sets f to be called for each RestartUnit that starts a job, before the method reply,
// so f sees the world as systemd would at restart time (for example the config file the agent
// wrote). f runs without the Manager's lock held and may call its methods, e.g. SetBehavior for
// the next restarts.
func (m *Manager) OnRestart(f func(unit string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onRestart = f
}

// Restarts is the number of restart jobs unit's RestartUnit calls started; calls refused (Deny)
// are not counted, since systemd does nothing for them.
func (m *Manager) Restarts(unit string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unitLocked(unit).restarts
}

// SetState sets unit's ActiveState and SubState; entering "active" updates ActiveEnterTimestamp.
func (m *Manager) SetState(unit, active, sub string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unitLocked(unit).setState(active, sub)
}

// SetNRestarts sets the Service interface's NRestarts of unit (systemd's own restarts).
func (m *Manager) SetNRestarts(unit string, n uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unitLocked(unit).nRestarts = n
}

func (u *unit) setState(active, sub string) {
	if active == "active" && u.active != "active" {
		u.activeEnter = uint64(time.Now().UnixMicro())
	}
	u.active, u.sub = active, sub
}

// emitJobRemoved sends org.freedesktop.systemd1.Manager.JobRemoved(u id, o job, s unit, s result).
func (m *Manager) emitJobRemoved(id uint32, unit, result string) {
	m.mu.Lock()
	conn := m.conn
	m.mu.Unlock()
	_ = conn.Emit(managerPath, managerIface+".JobRemoved", id, jobPath(id), unit, result)
}

func jobPath(id uint32) dbus.ObjectPath {
	return dbus.ObjectPath(fmt.Sprintf("%s/job/%d", managerPath, id))
}

// manager is the exported org.freedesktop.systemd1.Manager: the methods go-systemd calls for
// restarts and unit lookups. godbus exports every method of the type, so it has no others.
type manager struct{ m *Manager }

// RestartUnit enqueues a restart job and returns its path; JobRemoved follows as the unit's
// Behavior says.
func (x manager) RestartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	m := x.m
	m.mu.Lock()
	u, ok := m.units[name]
	if !ok {
		m.mu.Unlock()
		return "", noSuchUnit(name)
	}
	switch mode {
	case "replace", "fail", "isolate", "ignore-dependencies", "ignore-requirements":
	default:
		m.mu.Unlock()
		return "", dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"Job mode " + mode + " invalid."})
	}
	b := u.behavior
	if b.Deny {
		m.mu.Unlock()
		return "", dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"Access denied"})
	}
	u.restarts++
	m.nextJob++
	id := m.nextJob
	hook := m.onRestart
	m.mu.Unlock()
	if hook != nil {
		hook(name)
	}

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
		u.setState(active, subStateFor(active))
		if active == "active" {
			u.activeEnter = uint64(time.Now().UnixMicro()) // restarted, so entered "active" anew
		}
		m.mu.Unlock()
		if b.ForeignJobRemovedFirst {
			m.emitJobRemoved(999999, "other.service", "failed")
		}
		m.emitJobRemoved(id, name, result)
	}
	switch {
	case b.NoJobRemoved:
	case b.JobRemovedFirst:
		finish()
	default:
		go func() {
			// godbus sends the reply when this method returns; a millisecond later puts the signal
			// after it.
			time.Sleep(b.Delay + time.Millisecond)
			finish()
		}()
	}
	return jobPath(id), nil
}

// GetUnit returns the path of a loaded unit.
func (x manager) GetUnit(name string) (dbus.ObjectPath, *dbus.Error) {
	x.m.mu.Lock()
	defer x.m.mu.Unlock()
	if _, ok := x.m.units[name]; !ok {
		return "", noSuchUnit(name)
	}
	return unitPath(name), nil
}

// LoadUnit returns the path of a unit, as GetUnit (every served unit is loaded).
func (x manager) LoadUnit(name string) (dbus.ObjectPath, *dbus.Error) { return x.GetUnit(name) }

// Subscribe and Unsubscribe accept go-systemd's Subscribe; the fake emits no unit signals.
func (x manager) Subscribe() *dbus.Error { return nil }

// Unsubscribe: see Subscribe.
func (x manager) Unsubscribe() *dbus.Error { return nil }

func noSuchUnit(name string) *dbus.Error {
	return dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{fmt.Sprintf("Unit %s not loaded.", name)})
}

func subStateFor(active string) string {
	switch active {
	case "active":
		return "running"
	case "failed":
		return "failed"
	case "activating":
		return "start"
	case "deactivating":
		return "stop"
	}
	return "dead"
}

// properties is the exported org.freedesktop.DBus.Properties of one unit.
type properties struct {
	m    *Manager
	name string
}

// GetAll serves the properties of the Unit and Service interfaces that the agent reads.
func (p properties) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
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
	return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{"Unknown interface " + iface + "."})
}

// Get serves one property, as GetAll.
func (p properties) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	all, err := p.GetAll(iface)
	if err != nil {
		return dbus.Variant{}, err
	}
	v, ok := all[name]
	if !ok {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{"Unknown property " + name + "."})
	}
	return v, nil
}
