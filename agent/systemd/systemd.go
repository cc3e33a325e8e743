// Package systemd restarts a unit through systemd's D-Bus API (go-systemd) and reads its state.
//
// go-systemd's context bounds only the enqueueing of a job; its result arrives later as a
// JobRemoved signal on the channel given to RestartUnitContext. The channel is buffered here (an
// unbuffered one stalls go-systemd's signal dispatch when nobody reads it any more) and the wait
// for the result is bounded by the caller's context (facts/protocol.md §4).
package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// JobError is a restart job that finished with a result other than "done".
type JobError struct {
	Unit   string
	Result string // failed, canceled, timeout, dependency, ...
}

func (e *JobError) Error() string {
	return fmt.Sprintf("restart of %s finished with result %q (see journalctl -u %s)", e.Unit, e.Result, e.Unit)
}

// UnitState is a unit's state as systemd reports it.
type UnitState struct {
	ActiveState string // active, reloading, inactive, failed, activating, deactivating
	SubState    string // running, dead, auto-restart, ...
	NRestarts   int64  // automatic restarts by systemd (Restart=), not ours
	ActiveEnter time.Time
}

// Client talks to systemd on the system bus. It redials once when the bus connection was lost
// (a dbus-daemon restart), so one long-lived Client serves the agent's whole life.
type Client struct {
	mu   sync.Mutex
	conn *sdbus.Conn
}

// Dial connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS when set, which tests use for a
// private bus). ctx bounds the dial only.
func Dial(ctx context.Context) (*Client, error) {
	c := &Client{}
	if _, err := c.get(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// get returns a live connection, dialling one if needed.
func (c *Client) get(ctx context.Context) (*sdbus.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn.Connected() {
		return c.conn, nil
	}
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	// godbus ties a connection's lifetime to the context it was dialled with, so dial with a
	// background context and bound only the wait.
	type result struct {
		conn *sdbus.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := sdbus.NewSystemConnectionContext(context.Background())
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to the system bus: %w", r.err)
		}
		c.conn = r.conn
		return r.conn, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect to the system bus: %w", ctx.Err())
	}
}

// Close closes the bus connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// retry runs f on a live connection, and once more on a fresh one if the first failed because the
// bus connection was closed.
func (c *Client) retry(ctx context.Context, f func(*sdbus.Conn) error) error {
	for attempt := 0; ; attempt++ {
		conn, err := c.get(ctx)
		if err != nil {
			return err
		}
		err = f(conn)
		if err == nil || attempt > 0 || conn.Connected() || ctx.Err() != nil {
			return err
		}
	}
}

// Restart restarts unit (mode "replace": the unit and its dependencies, replacing conflicting
// queued jobs; cloudflared has no reload) and waits for the job's result until ctx ends.
// "done" and "skipped" (the job did not apply to the unit's state; systemctl treats it as success)
// return nil; other results return *JobError.
func (c *Client) Restart(ctx context.Context, unit string) error {
	ch := make(chan string, 1)
	err := c.retry(ctx, func(conn *sdbus.Conn) error {
		_, err := conn.RestartUnitContext(ctx, unit, "replace", ch)
		return err
	})
	if err != nil {
		return fmt.Errorf("restart %s: %w", unit, explain(err, unit))
	}
	select {
	case result := <-ch:
		switch result {
		case "done", "skipped":
			return nil
		default:
			return &JobError{Unit: unit, Result: result}
		}
	case <-ctx.Done():
		return fmt.Errorf("restart %s: no job result: %w", unit, ctx.Err())
	}
}

// explain adds what ops need to know to the D-Bus errors a restart commonly meets.
func explain(err error, unit string) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch {
		case de.Name == "org.freedesktop.DBus.Error.AccessDenied" || strings.HasSuffix(de.Name, ".InteractiveAuthorizationRequired"):
			return fmt.Errorf("%w (the agent's user needs the polkit rule that allows it to manage %s; the sajet-agent package installs it)", err, unit)
		case strings.HasSuffix(de.Name, ".NoSuchUnit"):
			return fmt.Errorf("%w (is %s installed? set unit: in agent.yml to the cloudflared service's name)", err, unit)
		}
	}
	return err
}

// Unit reads the unit's state.
func (c *Client) Unit(ctx context.Context, unit string) (UnitState, error) {
	var st UnitState
	err := c.retry(ctx, func(conn *sdbus.Conn) error {
		props, err := conn.GetUnitPropertiesContext(ctx, unit)
		if err != nil {
			return err
		}
		st.ActiveState, _ = props["ActiveState"].(string)
		st.SubState, _ = props["SubState"].(string)
		if us, ok := props["ActiveEnterTimestamp"].(uint64); ok && us > 0 {
			st.ActiveEnter = time.UnixMicro(int64(us)).UTC()
		}
		if strings.HasSuffix(unit, ".service") {
			sp, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
			if err == nil {
				if n, ok := sp["NRestarts"].(uint32); ok {
					st.NRestarts = int64(n)
				}
			}
		}
		return nil
	})
	if err != nil {
		return UnitState{}, fmt.Errorf("read state of %s: %w", unit, explain(err, unit))
	}
	return st, nil
}

// WaitActive polls the unit until it is active, failed, or ctx ends. After a successful restart
// job of a Type=notify service the unit is usually active at once; the poll covers units that are
// still activating.
func (c *Client) WaitActive(ctx context.Context, unit string) (UnitState, error) {
	var last UnitState
	for {
		st, err := c.Unit(ctx, unit)
		if err == nil {
			last = st
			switch st.ActiveState {
			case "active":
				return st, nil
			case "failed", "inactive":
				return st, fmt.Errorf("%s is %s (%s) after the restart", unit, st.ActiveState, st.SubState)
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return last, fmt.Errorf("%s not active: %w", unit, err)
			}
			return last, fmt.Errorf("%s still %s (%s): %w", unit, last.ActiveState, last.SubState, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
