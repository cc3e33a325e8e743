package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// replicaLog records what the replicas were asked to do, in order, across all of them.
type replicaLog struct {
	mu     sync.Mutex
	events []string
}

func (l *replicaLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *replicaLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// replica is one cloudflared replica: it logs "name restart <marker>" with the marker of the
// config it was restarted on ("new" when config.yml routes new.example.com, else "old"), and
// "name verify"; restartErr and verifyErr are consumed in order.
type replica struct {
	name       string
	path       string
	log        *replicaLog
	restartErr []error
	verifyErr  []error
}

func (r *replica) Restart(context.Context) error {
	data, _ := os.ReadFile(r.path)
	marker := "old"
	if strings.Contains(string(data), "new.example.com") {
		marker = "new"
	}
	r.log.add(r.name + " restart " + marker)
	return pop(&r.restartErr)
}

func (r *replica) Verify(context.Context) error {
	r.log.add(r.name + " verify")
	return pop(&r.verifyErr)
}

// newReplicaEnv is an applier with two replicas whose config in force routes old.example.com.
func newReplicaEnv(t *testing.T) (*Applier, *replica, *replica, *replicaLog) {
	t.Helper()
	e := newEnv(t, operatorFile)
	log := &replicaLog{}
	path := filepath.Join(e.dir, "config.yml")
	r1 := &replica{name: "cloudflared@1", path: path, log: log}
	r2 := &replica{name: "cloudflared@2", path: path, log: log}
	e.a.Units = []Unit{r1, r2}
	if res := e.a.Apply(context.Background(), 1, rules("old.example.com")); !res.OK {
		t.Fatalf("first apply = %+v", res)
	}
	log.events = nil
	return e.a, r1, r2, log
}

func assertEvents(t *testing.T, log *replicaLog, want ...string) {
	t.Helper()
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("replicas did\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// Each replica is restarted and verified (ready) before the next one is touched.
func TestReplicasRestartOneAtATime(t *testing.T) {
	a, _, _, log := newReplicaEnv(t)
	res := a.Apply(context.Background(), 2, rules("new.example.com"))
	if !res.OK || !res.Restarted {
		t.Fatalf("apply = %+v", res)
	}
	assertEvents(t, log, "cloudflared@1 restart new", "cloudflared@1 verify", "cloudflared@2 restart new", "cloudflared@2 verify")
	if s := a.Snapshot(); s.Restarts != 4 { // 2 for the first apply, 2 now
		t.Errorf("restarts = %d, want 4", s.Restarts)
	}
}

func TestFailingReplicaIsRolledBackBeforeAnyOtherIsTouched(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(r1, r2 *replica)
		wantStage string
		want      []string
	}{{
		name:      "the first replica is not ready: the second never restarts",
		setup:     func(r1, _ *replica) { r1.verifyErr = []error{errors.New("cloudflared@1 not ready")} },
		wantStage: protocol.StageVerify,
		want:      []string{"cloudflared@1 restart new", "cloudflared@1 verify", "cloudflared@1 restart old", "cloudflared@1 verify"},
	}, {
		name:      "the first replica's restart job fails",
		setup:     func(r1, _ *replica) { r1.restartErr = []error{errors.New(`job result "failed"`)} },
		wantStage: protocol.StageRestart,
		want:      []string{"cloudflared@1 restart new", "cloudflared@1 restart old", "cloudflared@1 verify"},
	}, {
		name:      "the second replica fails: it comes back first, then the first is put back",
		setup:     func(_, r2 *replica) { r2.verifyErr = []error{errors.New("cloudflared@2 not ready")} },
		wantStage: protocol.StageVerify,
		want: []string{"cloudflared@1 restart new", "cloudflared@1 verify", "cloudflared@2 restart new", "cloudflared@2 verify",
			"cloudflared@2 restart old", "cloudflared@2 verify", "cloudflared@1 restart old", "cloudflared@1 verify"},
	}, {
		name: "a refused restart touched nothing: no replica restarts",
		setup: func(r1, _ *replica) {
			r1.restartErr = []error{&UntouchedError{Err: errors.New("Interactive authentication required.")}}
		},
		wantStage: protocol.StageRestart,
		want:      []string{"cloudflared@1 restart new"},
	}, {
		name: "the second replica refused: only the first is put back",
		setup: func(_, r2 *replica) {
			r2.restartErr = []error{&UntouchedError{Err: errors.New("Interactive authentication required.")}}
		},
		wantStage: protocol.StageRestart,
		want:      []string{"cloudflared@1 restart new", "cloudflared@1 verify", "cloudflared@2 restart new", "cloudflared@1 restart old", "cloudflared@1 verify"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, r1, r2, log := newReplicaEnv(t)
			before := a.Applied()
			tc.setup(r1, r2)
			res := a.Apply(context.Background(), 2, rules("new.example.com"))
			if res.OK || res.Stage != tc.wantStage || res.SHA256 != before.SHA256 {
				t.Fatalf("apply = %+v, want a failure at %s with the last good config in force", res, tc.wantStage)
			}
			assertEvents(t, log, tc.want...)
			if s := a.Snapshot(); s.Degraded || s.State.Version != 1 {
				t.Errorf("after the rollback: degraded %v, version %d; want not degraded, version 1", s.Degraded, s.State.Version)
			}
			if data, _ := os.ReadFile(a.ConfigPath); !strings.Contains(string(data), "old.example.com") || strings.Contains(string(data), "new.example.com") {
				t.Errorf("config.yml is not the last good one:\n%s", data)
			}
		})
	}
}

// A replica that does not come back even on the last good config stops the rollback: the
// replicas not yet put back keep serving (on the new config), rather than being taken down too.
func TestRollbackStopsAtAReplicaThatDoesNotComeBack(t *testing.T) {
	a, r1, r2, log := newReplicaEnv(t)
	r2.verifyErr = []error{errors.New("cloudflared@2 not ready"), errors.New("cloudflared@2 still not ready")}
	_ = r1
	res := a.Apply(context.Background(), 2, rules("new.example.com"))
	if res.OK || res.Stage != protocol.StageRollback || !strings.Contains(res.Err, "cloudflared@2 still not ready") {
		t.Fatalf("apply = %+v, want stage rollback naming the replica", res)
	}
	assertEvents(t, log, "cloudflared@1 restart new", "cloudflared@1 verify", "cloudflared@2 restart new", "cloudflared@2 verify",
		"cloudflared@2 restart old", "cloudflared@2 verify")
	if !a.Snapshot().Degraded {
		t.Error("a failed rollback must leave the applier degraded")
	}
}

// After a crash between the write and the restarts nobody knows which replicas the dead process
// restarted: recovery restarts them all, one at a time, and a rollback puts them all back.
func TestRecoveryRestartsEveryReplica(t *testing.T) {
	a, r1, r2, log := newReplicaEnv(t)
	a.Crash = func(step string) {
		if step == StepPublished {
			panic(step)
		}
	}
	func() {
		defer func() { _ = recover() }()
		a.Apply(context.Background(), 2, rules("new.example.com"))
	}()
	log.events = nil
	b := &Applier{ConfigPath: a.ConfigPath, BaseConfig: a.BaseConfig, StateDir: a.StateDir, Units: []Unit{r1, r2}}
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertEvents(t, log, "cloudflared@1 restart new", "cloudflared@1 verify", "cloudflared@2 restart new", "cloudflared@2 verify")
	if b.Applied().Version != 2 {
		t.Errorf("recovered version = %d, want 2", b.Applied().Version)
	}

	// The same crash, and the first replica fails on recovery: both are put back.
	b.Crash = a.Crash
	func() {
		defer func() { _ = recover() }()
		b.Apply(context.Background(), 3, rules("new.example.com", "other.example.com"))
	}()
	log.events = nil
	r1.verifyErr = []error{errors.New("cloudflared@1 not ready")}
	c := &Applier{ConfigPath: a.ConfigPath, BaseConfig: a.BaseConfig, StateDir: a.StateDir, Units: []Unit{r1, r2}}
	if err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertEvents(t, log, "cloudflared@1 restart new", "cloudflared@1 verify", "cloudflared@1 restart new", "cloudflared@1 verify",
		"cloudflared@2 restart new", "cloudflared@2 verify")
	if s := c.Snapshot(); s.State.Version != 2 || s.Last == nil || s.Last.OK {
		t.Errorf("after a failed recovery: version %d, last %+v; want version 2 and a failure", s.State.Version, s.Last)
	}
}
