package systemd_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/agent/systemd"
	"github.com/jeturing/sajet-domains/agent/systemd/systemdtest"
)

const unit = "cloudflared.service"

type bundle struct {
	bus *systemdtest.Bus
	sd  *systemdtest.Manager
	c   *systemd.Client
}

// setup starts a private bus with a fake systemd serving cloudflared.service and dials it.
func setup(t *testing.T) bundle {
	t.Helper()
	bus := systemdtest.StartBus(t)
	sd := systemdtest.NewManager(t, bus, unit)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.Address)
	c, err := systemd.Dial(timeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return bundle{bus, sd, c}
}

func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name       string
		behavior   systemdtest.Behavior
		wantResult string // a *JobError with this result; "" and no wantErr = success
		wantErr    string
		wantJobs   int
	}{
		{name: "a done job succeeds", wantJobs: 1},
		{name: "a late result is waited for", behavior: systemdtest.Behavior{Delay: 200 * time.Millisecond}, wantJobs: 1},
		{name: "a result before the method reply is not lost", behavior: systemdtest.Behavior{JobRemovedFirst: true}, wantJobs: 1},
		{name: "another job's result is ignored", behavior: systemdtest.Behavior{ForeignJobRemovedFirst: true}, wantJobs: 1},
		{name: "skipped counts as success", behavior: systemdtest.Behavior{Result: "skipped"}, wantJobs: 1},
		{name: "failed is a job error", behavior: systemdtest.Behavior{Result: "failed"}, wantResult: "failed", wantJobs: 1},
		{name: "canceled is a job error", behavior: systemdtest.Behavior{Result: "canceled"}, wantResult: "canceled", wantJobs: 1},
		{name: "dependency is a job error", behavior: systemdtest.Behavior{Result: "dependency"}, wantResult: "dependency", wantJobs: 1},
		{name: "a late failure beats a foreign success", behavior: systemdtest.Behavior{Result: "timeout", ForeignJobRemovedFirst: true, Delay: 50 * time.Millisecond}, wantResult: "timeout", wantJobs: 1},
		{name: "a polkit denial names the rule", behavior: systemdtest.Behavior{Deny: true}, wantErr: "polkit does not let the agent's user restart cloudflared.service: list it in the units of /etc/polkit-1/rules.d/50-sajet-agent.rules", wantJobs: 0},
	}
	b := setup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b.sd.SetBehavior(unit, tc.behavior)
			before := b.sd.Restarts(unit)
			start := time.Now()
			err := b.c.Restart(timeout(t, 5*time.Second), unit)
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Restart took %s: it missed a result that had arrived", elapsed)
			}
			var je *systemd.JobError
			switch {
			case tc.wantResult != "":
				if !errors.As(err, &je) || je.Result != tc.wantResult || je.Unit != unit {
					t.Errorf("Restart = %v, want a JobError with result %q", err, tc.wantResult)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &je) {
					t.Errorf("Restart = %v, want an error mentioning %q", err, tc.wantErr)
				}
				if !systemd.Refused(err) {
					t.Errorf("Refused(%v) = false, want true: no job started", err)
				}
			case err != nil:
				t.Errorf("Restart = %v, want success", err)
			}
			if tc.wantResult != "" && systemd.Refused(err) {
				t.Errorf("Refused(%v) = true for a job that ran", err)
			}
			if got := b.sd.Restarts(unit) - before; got != tc.wantJobs {
				t.Errorf("restart jobs = %d, want %d", got, tc.wantJobs)
			}
		})
	}
}

func TestRestartWithoutResultTimesOutAndTheClientStillWorks(t *testing.T) {
	b := setup(t)
	b.sd.SetBehavior(unit, systemdtest.Behavior{NoJobRemoved: true})
	start := time.Now()
	err := b.c.Restart(timeout(t, 300*time.Millisecond), unit)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Restart returned after %s, want about 300ms", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no result for restart of cloudflared.service within") {
		t.Fatalf("Restart = %v, want a deadline error saying no result came", err)
	}

	// A result that comes after the wait gave up must not stall go-systemd's signal dispatch
	// (it would, with an unbuffered channel, and every later restart would hang).
	b.sd.SetBehavior(unit, systemdtest.Behavior{Delay: 300 * time.Millisecond})
	if err := b.c.Restart(timeout(t, 50*time.Millisecond), unit); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Restart with a result later than the deadline = %v, want a deadline error", err)
	}
	time.Sleep(400 * time.Millisecond)

	b.sd.SetBehavior(unit, systemdtest.Behavior{})
	for i := range 2 {
		if err := b.c.Restart(timeout(t, 5*time.Second), unit); err != nil {
			t.Fatalf("restart %d after a timed-out one: %v", i+1, err)
		}
	}
	if got := b.sd.Restarts(unit); got != 4 {
		t.Errorf("restart jobs = %d, want 4", got)
	}
}

func TestRestartOfAnUnknownUnitNamesTheSetting(t *testing.T) {
	b := setup(t)
	err := b.c.Restart(timeout(t, 5*time.Second), "cloudflare.service")
	if err == nil || !strings.Contains(err.Error(), "cloudflare.service") || !strings.Contains(err.Error(), "unit: in agent.yml") {
		t.Fatalf("Restart of an unknown unit = %v, want an error naming it and the setting", err)
	}
	if !systemd.Refused(err) {
		t.Errorf("Refused(%v) = false for an unknown unit", err)
	}
}

func TestUnit(t *testing.T) {
	b := setup(t)
	ctx := timeout(t, 5*time.Second)
	before := time.Now()
	b.sd.SetState(unit, "inactive", "dead")
	b.sd.SetState(unit, "active", "running")
	b.sd.SetNRestarts(unit, 3)
	st, err := b.c.Unit(ctx, unit)
	if err != nil {
		t.Fatal(err)
	}
	if st.ActiveState != "active" || st.SubState != "running" || st.NRestarts != 3 {
		t.Errorf("Unit = %+v, want active/running with 3 restarts", st)
	}
	if st.LastRestart.Before(before.Add(-time.Millisecond)) || st.LastRestart.After(time.Now()) {
		t.Errorf("LastRestart = %v, want the time SetState made it active (after %v)", st.LastRestart, before)
	}

	b.sd.SetState(unit, "failed", "failed")
	if st, err := b.c.Unit(ctx, unit); err != nil || st.ActiveState != "failed" || st.SubState != "failed" {
		t.Errorf("Unit = %+v, %v; want failed/failed", st, err)
	}
	if _, err := b.c.Unit(ctx, "nope.service"); err == nil || !strings.Contains(err.Error(), "nope.service") {
		t.Errorf("Unit of an unknown unit = %v, want an error naming it", err)
	}
}

func TestWaitActive(t *testing.T) {
	tests := []struct {
		name    string
		states  [][2]string // set in order, 150ms apart, from another goroutine
		wait    time.Duration
		wantErr string // "" = success
	}{
		{name: "an active unit returns at once", states: [][2]string{{"active", "running"}}},
		{name: "a starting unit is waited for", states: [][2]string{{"activating", "start"}, {"active", "running"}}},
		{name: "the stop half of a restart is waited for", states: [][2]string{{"inactive", "dead"}, {"activating", "start"}, {"active", "running"}}},
		{name: "a failed unit is an error", states: [][2]string{{"activating", "start"}, {"failed", "failed"}}, wantErr: "is failed"},
		{name: "a unit that stops after starting is an error", states: [][2]string{{"activating", "start"}, {"inactive", "dead"}}, wantErr: "is inactive"},
		{name: "a unit whose process exited and waits for Restart= is an error", states: [][2]string{{"activating", "start"}, {"activating", "auto-restart"}}, wantErr: "exited and waits to be restarted by systemd"},
		{name: "a unit stuck starting times out with its state", states: [][2]string{{"activating", "start"}}, wait: 400 * time.Millisecond, wantErr: "still activating (start)"},
	}
	b := setup(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b.sd.SetState(unit, tc.states[0][0], tc.states[0][1])
			done := make(chan struct{})
			defer func() { <-done }()
			go func() {
				defer close(done)
				for _, s := range tc.states[1:] {
					time.Sleep(150 * time.Millisecond)
					b.sd.SetState(unit, s[0], s[1])
				}
			}()
			wait := tc.wait
			if wait == 0 {
				wait = 5 * time.Second
			}
			ctx := timeout(t, wait)
			st, err := b.c.WaitActive(ctx, unit)
			want := tc.states[len(tc.states)-1]
			switch {
			case tc.wantErr == "":
				if err != nil || st.ActiveState != "active" {
					t.Errorf("WaitActive = %+v, %v; want active", st, err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("WaitActive = %v, want an error mentioning %q", err, tc.wantErr)
			case st.ActiveState != want[0]:
				t.Errorf("WaitActive state = %+v, want the last state %s", st, want[0])
			}
			if tc.wait != 0 && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("WaitActive = %v, want it to wrap the deadline", err)
			}
		})
	}
}

func TestClientSurvivesADBusDaemonRestart(t *testing.T) {
	b := setup(t)
	if err := b.c.Restart(timeout(t, 5*time.Second), unit); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		b.bus.Restart(t)
		b.sd.SetState(unit, "active", "running")
		if err := b.c.Restart(timeout(t, 5*time.Second), unit); err != nil {
			t.Fatalf("restart after dbus-daemon restart %d: %v", i+1, err)
		}
		b.bus.Restart(t)
		if st, err := b.c.Unit(timeout(t, 5*time.Second), unit); err != nil || st.ActiveState != "active" {
			t.Fatalf("Unit after dbus-daemon restart: %+v, %v", st, err)
		}
	}
	if got := b.sd.Restarts(unit); got != 3 {
		t.Errorf("restart jobs = %d, want 3", got)
	}
}

func TestRestartRetriesWhenTheBusDiesDuringTheCall(t *testing.T) {
	b := setup(t)
	var once sync.Once
	b.sd.OnRestart(func(string) {
		// The call reached systemd, then dbus-daemon restarts before the reply: the client's
		// connection looked alive when the call started, so only the retry can save it.
		once.Do(func() { b.bus.Restart(t) })
	})
	if err := b.c.Restart(timeout(t, 10*time.Second), unit); err != nil {
		t.Fatalf("Restart across a dbus-daemon restart = %v, want the retry to succeed", err)
	}
	if got := b.sd.Restarts(unit); got != 2 {
		t.Errorf("RestartUnit calls = %d, want 2 (the lost one and the retry)", got)
	}
}
