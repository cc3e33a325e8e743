package systemd

import (
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// JobError is a restart job that systemd finished with a result other than "done" or "skipped":
// the unit did not (re)start, so the caller should roll back.
type JobError struct {
	Unit   string
	Result string // failed, canceled, timeout, dependency
}

func (e *JobError) Error() string {
	return fmt.Sprintf("restart of %s finished with result %q (see journalctl -u %s)", e.Unit, e.Result, e.Unit)
}

// explain adds what an operator needs to know to the D-Bus errors a call about unit commonly meets.
func explain(err error, unit string) error {
	var name string
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &de):
		name = de.Name
	case errors.As(err, &dep):
		name = dep.Name
	default:
		return err
	}
	switch {
	case name == "org.freedesktop.DBus.Error.AccessDenied",
		name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired":
		return fmt.Errorf("%w (polkit does not let the agent's user restart %s: list it in the units of %s, the same units as agent.yml)", err, unit, PolkitRule)
	case strings.HasSuffix(name, ".NoSuchUnit"), name == "org.freedesktop.DBus.Error.UnknownObject":
		return fmt.Errorf("%w (is %s installed? set unit: in agent.yml to cloudflared's service name)", err, unit)
	case name == "org.freedesktop.DBus.Error.ServiceUnknown":
		return fmt.Errorf("%w (systemd is not on this bus)", err)
	}
	return err
}

// PolkitRule is where the package installs the polkit rule that lists the units the agent may
// restart (packaging/README-ops.md).
const PolkitRule = "/etc/polkit-1/rules.d/50-sajet-agent.rules"

// Refused reports whether err is systemd refusing a call before doing anything: polkit denied it
// or the unit does not exist. After a refused restart the unit runs as it did.
func Refused(err error) bool {
	var name string
	var de dbus.Error
	var dep *dbus.Error
	switch {
	case errors.As(err, &de):
		name = de.Name
	case errors.As(err, &dep):
		name = dep.Name
	default:
		return false
	}
	switch name {
	case "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
		"org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.DBus.Error.UnknownObject":
		return true
	}
	return false
}

// isDBusReply reports whether err is an error reply from the peer (as opposed to a transport or
// context error).
func isDBusReply(err error) bool {
	var de dbus.Error
	var dep *dbus.Error
	return errors.As(err, &de) || errors.As(err, &dep)
}
