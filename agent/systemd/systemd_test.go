package systemd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/agent/systemd"
	"github.com/jeturing/sajet-domains/agent/systemd/systemdtest"
)

const unit = "cloudflared.service"

func setup(t *testing.T) (*systemdtest.Bus, *systemdtest.Manager, *systemd.Client) {
	t.Helper()
	bus := systemdtest.StartBus(t)
	m := systemdtest.NewManager(t, bus, unit)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := systemd.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return bus, m, c
}

func TestRestartResults(t *testing.T) {
	tests := []struct {
		name       string
		behavior   systemdtest.Behavior
		timeout    time.Duration
		wantResult string // "" = success
		wantErr    string
	}{
		{name: "done", behavior: systemdtest.Behavior{}},
		{name: "done after a while", behavior: systemdtest.Behavior{Delay: 200 * time.Millisecond}},
		{name: "job removed before the method reply", behavior: systemdtest.Behavior{JobRemovedFirst: true}},
		{name: "another job's signal first", behavior: systemdtest.Behavior{ForeignJobRemovedFirst: true}},
		{name: "skipped counts as success", behavior: systemdtest.Behavior{Result: "skipped"}},
		{name: "failed", behavior: systemdtest.Behavior{Result: "failed"}, wantResult: "failed"},
		{name: "canceled", behavior: systemdtest.Behavior{Result: "canceled"}, wantResult: "canceled"},
		{name: "dependency", behavior: systemdtest.Behavior{Result: "dependency"}, wantResult: "dependency"},
		{name: "no result arrives", behavior: systemdtest.Behavior{NoJobRemoved: true}, timeout: 300 * time.Millisecond, wantErr: "no job result"},
		{name: "polkit denies", behavior: systemdtest.Behavior{Deny: true}, wantErr: "polkit rule"},
	}
	_, m, c := setup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m.SetBehavior(unit, tc.behavior)
			before := m.Restarts(unit)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			err := c.Restart(ctx, unit)
			var je *systemd.JobError
			switch {
			case tc.wantResult != "":
				if !errors.As(err, &je) || je.Result != tc.wantResult || je.Unit != unit {
					t.Fatalf("Restart = %v, want JobError %q", err, tc.wantResult)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Restart = %v, want an error mentioning %q", err, tc.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("Restart = %v, want success", err)
				}
			}
			if elapsed := time.Since(start); tc.timeout == 0 && elapsed > 4*time.Second {
				t.Errorf("Restart took %s: it waited for a result that had already arrived", elapsed)
			}
			wantCalls := 1
			if tc.behavior.Deny {
				wantCalls = 0
			}
			if got := m.Restarts(unit) - before; got != wantCalls {
				t.Errorf("RestartUnit calls = %d, want %d", got, wantCalls)
			}
		})
	}
	// After a restart whose result never came, the same client still works.
	m.SetBehavior(unit, systemdtest.Behavior{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Restart(ctx, unit); err != nil {
		t.Fatalf("restart after a timed-out one: %v", err)
	}
}

func TestUnknownUnitNamesTheSetting(t *testing.T) {
	_, _, c := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Restart(ctx, "cloudflare.service"); err == nil || !strings.Contains(err.Error(), "unit: in agent.yml") {
		t.Fatalf("Restart of an unknown unit = %v", err)
	}
}

func TestUnitStateAndWaitActive(t *testing.T) {
	_, m, c := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Unit(ctx, unit)
	if err != nil || st.ActiveState != "active" || st.SubState != "running" || st.ActiveEnter.IsZero() {
		t.Fatalf("Unit = %+v, %v", st, err)
	}

	m.SetState(unit, "activating", "start")
	go func() {
		time.Sleep(300 * time.Millisecond)
		m.SetState(unit, "active", "running")
	}()
	if st, err := c.WaitActive(ctx, unit); err != nil || st.ActiveState != "active" {
		t.Fatalf("WaitActive = %+v, %v; want active once the unit got there", st, err)
	}

	m.SetState(unit, "failed", "failed")
	if _, err := c.WaitActive(ctx, unit); err == nil || !strings.Contains(err.Error(), "is failed") {
		t.Fatalf("WaitActive on a failed unit = %v", err)
	}

	m.SetState(unit, "activating", "start")
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := c.WaitActive(short, unit); err == nil || !strings.Contains(err.Error(), "still activating") {
		t.Fatalf("WaitActive on a unit stuck activating = %v", err)
	}
}

func TestClientSurvivesABusRestart(t *testing.T) {
	bus, _, c := setup(t)
	bus.Restart(t)
	systemdtest.NewManager(t, bus, unit)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The first call may notice the dead connection; the client redials and retries once.
	if err := c.Restart(ctx, unit); err != nil {
		t.Fatalf("restart after dbus-daemon restarted: %v", err)
	}
}
