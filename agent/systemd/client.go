package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Client talks to systemd's manager on the system bus. It is safe for concurrent use, and one
// long-lived Client serves the agent's whole life: it redials when the bus connection was lost.
// The zero Client is ready to use and dials on its first call, so a caller can start before the
// bus is reachable.
type Client struct {
	mu   sync.Mutex
	conn *sdbus.Conn // nil before Dial, after Close, or after a failed redial
	lost bool        // a connection went away and none replaced it yet
}

// Dial connects to the system bus: DBUS_SYSTEM_BUS_ADDRESS when set (tests point it at a private
// bus), else the standard socket. ctx bounds the dial only.
func Dial(ctx context.Context) (*Client, error) {
	c := &Client{}
	if _, _, err := c.connection(ctx, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the bus connection. A later call dials again.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	c.lost = false
}

// connection returns a live connection, dialling a new one if there is none, if the current one
// is closed, or if it is stale (the one a call just failed on). lost reports that a connection
// existed and went away, so a failed dial is worth repeating.
func (c *Client) connection(ctx context.Context, stale *sdbus.Conn) (conn *sdbus.Conn, lost bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && c.conn != stale && c.conn.Connected() {
		return c.conn, false, nil
	}
	lost = c.lost || c.conn != nil
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	c.lost = lost
	conn, err = dial(ctx)
	if err != nil {
		return nil, lost, err
	}
	c.conn, c.lost = conn, false
	return conn, lost, nil
}

// live returns a live connection. When the previous one was lost it dials every 100ms until it
// succeeds or ctx ends, since a restarting dbus-daemon refuses connections for a moment; a first
// dial (or one after Close) is tried once.
func (c *Client) live(ctx context.Context, stale *sdbus.Conn) (*sdbus.Conn, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, lost, err := c.connection(ctx, stale)
		if err == nil || !lost || ctx.Err() != nil {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-tick.C:
		}
	}
}

// dial connects within ctx. godbus ties a connection's lifetime to the context it was dialled with
// (it closes the connection when that context ends), so the dial itself runs with a background
// context and ctx bounds only the wait for it.
func dial(ctx context.Context) (*sdbus.Conn, error) {
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
			return nil, fmt.Errorf("connect to the system bus (%s): %w", busAddress(), r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect to the system bus (%s): %w", busAddress(), ctx.Err())
	}
}

func busAddress() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return "unix:path=/var/run/dbus/system_bus_socket"
}

// call runs f on a live connection. If f fails because the connection went away (dbus-daemon
// restarted), it reconnects and runs f once more.
func (c *Client) call(ctx context.Context, f func(*sdbus.Conn) error) error {
	conn, err := c.live(ctx, nil)
	if err != nil {
		return err
	}
	err = f(conn)
	if err == nil || ctx.Err() != nil || !lostConnection(conn, err) {
		return err
	}
	if conn, err = c.live(ctx, conn); err != nil {
		return err
	}
	return f(conn)
}

// lostConnection reports whether err means conn is unusable. godbus closes a connection when its
// read loop sees EOF, but a write to a dead socket can fail (EPIPE) a moment before that.
func lostConnection(conn *sdbus.Conn, err error) bool {
	return !conn.Connected() || errors.Is(err, dbus.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// Restart restarts unit with mode "replace" (the unit and what it requires, replacing
// conflicting queued jobs; a stopped unit is started) and waits for the job's result until ctx
// ends: ctx bounds the whole restart, enqueue and result.
//
// "done" and "skipped" return nil: "skipped" means the job did not apply to the unit's state, and
// systemctl and snapd treat it as success too. Any other result returns a *JobError. If ctx ends
// first, the error wraps ctx.Err() (context.DeadlineExceeded for a timeout); the job may still
// run, and the caller should check the unit's state. D-Bus errors (AccessDenied from polkit,
// NoSuchUnit) are returned wrapped, with a hint.
func (c *Client) Restart(ctx context.Context, unit string) error {
	start := time.Now()
	// Buffered: once this wait gives up nobody reads ch, and go-systemd's dispatcher must not block
	// on the send (see the package doc).
	ch := make(chan string, 1)
	err := c.call(ctx, func(conn *sdbus.Conn) error {
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
		return fmt.Errorf("no result for restart of %s within %s: %w",
			unit, time.Since(start).Round(time.Millisecond), ctx.Err())
	}
}

// Unit reads unit's state: ActiveState, SubState and ActiveEnterTimestamp (as LastRestart) from
// the Unit interface and, for a service, NRestarts from the Service interface (0 if absent).
// ReadyConnections is not systemd's to know and stays 0.
func (c *Client) Unit(ctx context.Context, unit string) (protocol.UnitState, error) {
	var st protocol.UnitState
	err := c.call(ctx, func(conn *sdbus.Conn) error {
		st = protocol.UnitState{}
		props, err := conn.GetUnitPropertiesContext(ctx, unit)
		if err != nil {
			return err
		}
		st.ActiveState, _ = props["ActiveState"].(string)
		st.SubState, _ = props["SubState"].(string)
		if usec, _ := props["ActiveEnterTimestamp"].(uint64); usec > 0 {
			st.LastRestart = time.UnixMicro(int64(usec))
		}
		sp, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
		if err != nil {
			if isDBusReply(err) {
				return nil // not a service, or an old systemd: NRestarts stays 0
			}
			return err
		}
		if n, ok := sp["NRestarts"].(uint32); ok {
			st.NRestarts = int64(n)
		}
		return nil
	})
	if err != nil {
		return protocol.UnitState{}, fmt.Errorf("read state of %s: %w", unit, explain(err, unit))
	}
	return st, nil
}

// WaitActive polls unit's state every 100ms until it is "active" (returning that state and nil).
// It gives up with an error naming the state when the unit is "failed" or in "auto-restart" (its
// process exited; Restart= brings it back later), or "inactive" after it was seen starting ("inactive" before that is the stop half of a restart, so it keeps waiting),
// and when ctx ends, with the last state seen.
func (c *Client) WaitActive(ctx context.Context, unit string) (protocol.UnitState, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var (
		last     protocol.UnitState
		lastErr  error
		starting bool
	)
	for {
		st, err := c.Unit(ctx, unit)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				lastErr = err
			}
		default:
			last, lastErr = st, nil
			switch st.ActiveState {
			case "active":
				return st, nil
			case "failed":
				return st, fmt.Errorf("%s is failed (%s)", unit, st.SubState)
			case "activating", "reloading":
				// auto-restart: the process exited and systemd's Restart= will start it again
				// after RestartSec; it did not start.
				if st.SubState == "auto-restart" {
					return st, fmt.Errorf("%s exited and waits to be restarted by systemd (activating, auto-restart)", unit)
				}
				starting = true
			case "inactive":
				if starting {
					return st, fmt.Errorf("%s is inactive (%s) after starting", unit, st.SubState)
				}
			}
		}
		select {
		case <-ctx.Done():
			switch {
			case lastErr != nil:
				return last, fmt.Errorf("%s not active: %w", unit, lastErr)
			case last.ActiveState == "":
				return last, fmt.Errorf("%s not active: %w", unit, ctx.Err())
			}
			return last, fmt.Errorf("%s still %s (%s): %w", unit, last.ActiveState, last.SubState, ctx.Err())
		case <-tick.C:
		}
	}
}
