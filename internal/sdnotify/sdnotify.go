// Package sdnotify is how both binaries talk to systemd as Type=notify services with a watchdog:
// READY=1 once they serve, STOPPING=1 when they stop, and WATCHDOG=1 at half the unit's
// WatchdogSec while the process says it is alive. Outside systemd (no NOTIFY_SOCKET) every call
// does nothing.
package sdnotify

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Ready sends READY=1.
func Ready(logger *slog.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		logger.Warn("sd_notify READY", "err", err)
	}
}

// Stopping sends STOPPING=1.
func Stopping() { _, _ = daemon.SdNotify(false, daemon.SdNotifyStopping) }

// Watchdog pings systemd's watchdog at half its interval until ctx ends, skipping a ping (and
// logging why) whenever alive returns an error, so that systemd restarts a process whose work has
// stopped. alive nil means always alive. It returns at once when the unit has no watchdog.
func Watchdog(ctx context.Context, alive func() error, logger *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive != nil {
				if err := alive(); err != nil {
					logger.Error("withholding the watchdog ping", "err", err)
					continue
				}
			}
			_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		}
	}
}
