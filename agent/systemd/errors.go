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
		return fmt.Errorf("%w (the agent's user needs the polkit rule allowing it to manage %s: /usr/share/polkit-1/rules.d/50-sajet-agent.rules)", err, unit)
	case strings.HasSuffix(name, ".NoSuchUnit"), name == "org.freedesktop.DBus.Error.UnknownObject":
		return fmt.Errorf("%w (is %s installed? set unit: in agent.yml to cloudflared's service name)", err, unit)
	case name == "org.freedesktop.DBus.Error.ServiceUnknown":
		return fmt.Errorf("%w (systemd is not on this bus)", err)
	}
	return err
}

// isDBusReply reports whether err is an error reply from the peer (as opposed to a transport or
// context error).
func isDBusReply(err error) bool {
	var de dbus.Error
	var dep *dbus.Error
	return errors.As(err, &de) || errors.As(err, &dep)
}
