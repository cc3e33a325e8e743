package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/jeturing/sajet-domains/agent/apply"
	"github.com/jeturing/sajet-domains/agent/systemd"
	"github.com/jeturing/sajet-domains/internal/textlimit"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// SystemdUnit is cloudflared's unit (or one of its replicas) driven through systemd's D-Bus API.
// Its client dials on first use and again after a failure, so the agent starts (and renders)
// even while the bus is unreachable, and survives a dbus-daemon restart.
type SystemdUnit struct {
	Name           string
	RestartTimeout time.Duration
	ReadyTimeout   time.Duration
	// ReadyURL is cloudflared's /ready; "" checks only ActiveState, held for StartGrace.
	ReadyURL string
	// StartGrace is how long, without ReadyURL, the unit must stay active after a restart:
	// with Type=simple systemd calls a unit active as soon as its process runs, and cloudflared
	// exits within milliseconds on a config it refuses.
	StartGrace time.Duration
	// Client is the system bus connection, shared by the replicas; nil → one of its own.
	Client *systemd.Client

	once sync.Once
	http http.Client
}

func (u *SystemdUnit) client() *systemd.Client {
	u.once.Do(func() {
		if u.Client == nil {
			u.Client = &systemd.Client{}
		}
	})
	return u.Client
}

// Close releases the bus connection.
func (u *SystemdUnit) Close() { u.client().Close() }

// Restart implements apply.Unit. A restart systemd refused (polkit, no such unit) is an
// *apply.UntouchedError: no job started, so a rollback leaves the unit alone.
func (u *SystemdUnit) Restart(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, u.RestartTimeout)
	defer cancel()
	err := u.client().Restart(ctx, u.Name)
	if err != nil && systemd.Refused(err) {
		return &apply.UntouchedError{Err: err}
	}
	return err
}

// Verify implements apply.Unit: the unit is active and, when ReadyURL is set, cloudflared reports
// at least one connection to Cloudflare's edge; without ReadyURL it must stay active, without
// starting again, for StartGrace.
func (u *SystemdUnit) Verify(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, u.ReadyTimeout+u.StartGrace)
	defer cancel()
	st, err := u.client().WaitActive(ctx, u.Name)
	if err != nil {
		return err
	}
	if u.ReadyURL == "" {
		return u.hold(ctx, st)
	}
	var last error
	for {
		n, err := u.ready(ctx)
		if err == nil && n > 0 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%s reports no ready connections", u.ReadyURL)
		}
		last = err
		// A cloudflared that exited (a config it refuses) will never be ready: say so now
		// rather than after ReadyTimeout.
		if err := u.stillUp(ctx, st); err != nil {
			return fmt.Errorf("%w, waiting for %s", err, u.ReadyURL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %w", u.Name, u.ReadyTimeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hold checks every 100ms for StartGrace that the unit stays active and does not start again
// (systemd's Restart= would bring a crashed cloudflared back, with a new ActiveEnterTimestamp).
func (u *SystemdUnit) hold(ctx context.Context, active protocol.UnitState) error {
	end := time.Now().Add(u.StartGrace)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", u.Name, ctx.Err())
		case <-time.After(min(100*time.Millisecond, time.Until(end))):
		}
		if err := u.stillUp(ctx, active); err != nil {
			return fmt.Errorf("%w within %s of starting", err, u.StartGrace)
		}
	}
	return nil
}

// stillUp checks that the unit is still active and has not started again since active was read.
func (u *SystemdUnit) stillUp(ctx context.Context, active protocol.UnitState) error {
	st, err := u.client().Unit(ctx, u.Name)
	if err != nil {
		return err
	}
	if st.ActiveState != "active" || !st.LastRestart.Equal(active.LastRestart) {
		return fmt.Errorf("%s did not stay up: %s (%s) (see journalctl -u %s)", u.Name, st.ActiveState, st.SubState, u.Name)
	}
	return nil
}

// ready asks cloudflared's /ready how many edge connections it holds.
func (u *SystemdUnit) ready(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.ReadyURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := u.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		ReadyConnections int `json:"readyConnections"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil && resp.StatusCode == http.StatusOK {
		return 0, fmt.Errorf("%s: %w", u.ReadyURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body.ReadyConnections, fmt.Errorf("%s answered %s", u.ReadyURL, resp.Status)
	}
	return body.ReadyConnections, nil
}

// State implements UnitControl.
func (u *SystemdUnit) State(ctx context.Context) (protocol.UnitState, error) {
	st, err := u.client().Unit(ctx, u.Name)
	if err != nil {
		return protocol.UnitState{}, err
	}
	if u.ReadyURL != "" {
		st.ReadyConnections, _ = u.ready(ctx)
	}
	return st, nil
}

// ActiveSince implements apply.StartTimer: when the unit last entered the active state.
func (u *SystemdUnit) ActiveSince(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := u.client().Unit(ctx, u.Name)
	if err != nil {
		return time.Time{}, err
	}
	return s.LastRestart, nil
}

// CloudflaredCheck validates a config file with cloudflared itself. cloudflared exits 0 on
// unknown keys and only warns, so a warning about unused keys is a failure too (docs/ARCHITECTURE.md §5).
// Its verdicts are *apply.Refusal with cloudflared's own sentence (without the temp file's
// path, which means nothing to whoever reads the NACK); a checker that cannot run (missing
// binary, timeout, crash) is a plain error, so no rule is blamed for it.
func CloudflaredCheck(bin string) func(ctx context.Context, path string) error {
	return func(ctx context.Context, path string) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "tunnel", "--config", path, "ingress", "validate")
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		text := strings.TrimSpace(out.String())
		var exit *exec.ExitError
		switch {
		case err != nil && ctx.Err() == nil && errors.As(err, &exit) && exit.ExitCode() == 1:
			return &apply.Refusal{Reason: "cloudflared: " + cloudflaredReason(text, path)}
		case err != nil:
			return fmt.Errorf("cloudflared ingress validate could not run: %v: %s", err, textlimit.Truncate(text, 2000))
		case strings.Contains(strings.ToLower(text), "unused keys"):
			return &apply.Refusal{Reason: "cloudflared: " + cloudflaredReason(text, path)}
		}
		return nil
	}
}

// cloudflaredReason picks cloudflared's verdict out of its output: the "Validation failed" or
// warning line, else the last line; the temp file's path is cut out.
func cloudflaredReason(out, path string) string {
	lines := strings.Split(out, "\n")
	reason := lines[len(lines)-1]
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, "Validation failed: "); i >= 0 {
			reason = l[i+len("Validation failed: "):]
			break
		}
		if strings.Contains(strings.ToLower(l), "unused keys") || strings.Contains(l, "error parsing YAML") {
			reason = l
			break
		}
	}
	reason = strings.ReplaceAll(reason, path, "config.yml")
	return textlimit.Truncate(strings.TrimSpace(reason), 2000)
}
