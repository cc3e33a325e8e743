package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/shared/ingress"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// fakeUnit stands in for cloudflared's unit; the real D-Bus path is covered by agent/systemd and
// the end-to-end tests. It records the config file as it was at each restart.
type fakeUnit struct {
	mu         sync.Mutex
	path       string
	restartErr []error // consumed in order; nil entries succeed
	verifyErr  []error
	seen       []string // config.yml content at each restart
}

func (u *fakeUnit) Restart(context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	data, _ := os.ReadFile(u.path)
	u.seen = append(u.seen, string(data))
	return pop(&u.restartErr)
}

func (u *fakeUnit) Verify(context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return pop(&u.verifyErr)
}

func (u *fakeUnit) restarts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func pop(errs *[]error) error {
	if len(*errs) == 0 {
		return nil
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

type env struct {
	a    *Applier
	unit *fakeUnit
	dir  string
}

func newEnv(t *testing.T, operatorConfig string) *env {
	t.Helper()
	dir := t.TempDir()
	base, err := os.ReadFile("testdata/base.yml")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "base.yml"), string(base))
	if operatorConfig != "" {
		mustWrite(t, filepath.Join(dir, "config.yml"), operatorConfig)
	}
	e := &env{dir: dir, unit: &fakeUnit{path: filepath.Join(dir, "config.yml")}}
	e.a = e.applier()
	if err := e.a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// applier returns a fresh Applier on the same files, as after a process restart.
func (e *env) applier() *Applier {
	return &Applier{ConfigPath: filepath.Join(e.dir, "config.yml"), BaseConfig: filepath.Join(e.dir, "base.yml"),
		StateDir: filepath.Join(e.dir, "state"), Units: []Unit{e.unit}}
}

func (e *env) config(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.dir, "config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func rules(hosts ...string) []ingress.Rule {
	out := make([]ingress.Rule, len(hosts))
	for i, h := range hosts {
		out[i] = ingress.Rule{Hostname: h, Service: "http://10.0.0.5:8069"}
	}
	return out
}

const operatorFile = "tunnel: x\ncredentials-file: /etc/cloudflared/x.json\ningress:\n  - service: http_status:404\n"

// assertValidConfig fails unless path holds a complete config cloudflared would accept.
func assertValidConfig(t *testing.T, content string) {
	t.Helper()
	if err := ingress.ValidateFile([]byte(content)); err != nil {
		t.Fatalf("config is not valid: %v\n%s", err, content)
	}
}

func TestApplyWritesRestartsAndPersists(t *testing.T) {
	e := newEnv(t, operatorFile)
	res := e.a.Apply(context.Background(), 3, rules("www.impulse-max.com", "impulse-max.sajet.us"))
	if !res.OK || !res.Written || !res.Restarted {
		t.Fatalf("apply = %+v, want written, restarted, ok", res)
	}
	got := e.config(t)
	for _, want := range []string{"hostname: impulse-max.sajet.us", "hostname: www.impulse-max.com", "hostname: ops.sajet.us", "http_status:404"} {
		if !strings.Contains(got, want) {
			t.Errorf("config.yml lacks %q:\n%s", want, got)
		}
	}
	assertValidConfig(t, got)
	if e.unit.restarts() != 1 || e.unit.seen[0] != got {
		t.Errorf("restarts = %d; cloudflared must restart once, on the new file", e.unit.restarts())
	}
	if res.SHA256 != hashOf([]byte(got)) {
		t.Errorf("result hash %s is not the file's", res.SHA256)
	}
	// A new process sees the applied state.
	b := e.applier()
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := b.Applied(); st.Version != 3 || st.SHA256 != res.SHA256 || len(st.Rules) != 2 {
		t.Errorf("state after reopen = %+v", st)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state", "pending.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending marker left after a settled apply: %v", err)
	}
	lg, _ := os.ReadFile(filepath.Join(e.dir, "state", "last-good.yml"))
	if string(lg) != operatorFile {
		t.Errorf("last-good = %q, want the operator's file that was in force", lg)
	}
}

func TestSameRenderingNeitherWritesNorRestarts(t *testing.T) {
	e := newEnv(t, operatorFile)
	first := e.a.Apply(context.Background(), 1, rules("a.example.com", "b.example.com"))
	fi1, _ := os.Stat(filepath.Join(e.dir, "config.yml"))
	// Same set in another order under a new version: same bytes.
	res := e.a.Apply(context.Background(), 2, rules("b.example.com", "a.example.com"))
	fi2, _ := os.Stat(filepath.Join(e.dir, "config.yml"))
	if !res.OK || res.Written || res.Restarted || res.SHA256 != first.SHA256 {
		t.Fatalf("apply = %+v, want ok without write or restart", res)
	}
	if !os.SameFile(fi1, fi2) {
		t.Error("config.yml was replaced although its content did not change")
	}
	if e.unit.restarts() != 1 {
		t.Errorf("restarts = %d, want 1", e.unit.restarts())
	}
	if e.a.Applied().Version != 2 {
		t.Errorf("applied version = %d, want 2", e.a.Applied().Version)
	}
}

func TestRefusedAndFailedAppliesKeepTheLastGoodFile(t *testing.T) {
	errFailed := errors.New(`restart of cloudflared.service: job result "failed"`)
	tests := []struct {
		name         string
		rules        []ingress.Rule
		restartErr   []error
		verifyErr    []error
		check        Checker
		wantStage    string
		wantRestarts int // including the first, good apply
		wantErr      string
		degraded     bool
	}{
		{name: "invalid hostname", rules: rules("WWW.Example.com"), wantStage: protocol.StageValidate, wantRestarts: 1, wantErr: "rule #1"},
		{name: "operator rule conflict", rules: rules("ops.sajet.us"), wantStage: protocol.StageValidate, wantRestarts: 1, wantErr: "also named by rule #1 of the base file"},
		{name: "cloudflared refuses", rules: rules("new.example.com"), wantStage: protocol.StageValidate, wantRestarts: 1, wantErr: "unused keys",
			check: func(context.Context, string) error { return errors.New("cloudflared ingress validate: unused keys") }},
		{name: "restart job failed", rules: rules("new.example.com"), restartErr: []error{errFailed}, wantStage: protocol.StageRestart, wantRestarts: 3, wantErr: "failed"},
		{name: "not active afterwards", rules: rules("new.example.com"), verifyErr: []error{errors.New("cloudflared.service is failed")}, wantStage: protocol.StageVerify, wantRestarts: 3, wantErr: "is failed"},
		{name: "rollback fails too", rules: rules("new.example.com"), restartErr: []error{errFailed, errFailed}, wantStage: protocol.StageRollback, wantRestarts: 3, wantErr: "rollback failed", degraded: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, operatorFile)
			good := e.a.Apply(context.Background(), 1, rules("a.example.com"))
			if !good.OK {
				t.Fatalf("first apply: %+v", good)
			}
			goodContent := e.config(t)
			e.a.Check = tc.check
			e.unit.restartErr, e.unit.verifyErr = tc.restartErr, tc.verifyErr
			res := e.a.Apply(context.Background(), 2, tc.rules)
			if res.OK || res.Stage != tc.wantStage || !strings.Contains(res.Err, tc.wantErr) {
				t.Fatalf("apply = %+v, want NACK at %s mentioning %q", res, tc.wantStage, tc.wantErr)
			}
			if got := e.config(t); got != goodContent {
				t.Errorf("config.yml is not the last good one:\n%s", got)
			}
			if e.unit.restarts() != tc.wantRestarts {
				t.Errorf("restarts = %d, want %d", e.unit.restarts(), tc.wantRestarts)
			}
			if tc.wantRestarts == 3 && e.unit.seen[2] != goodContent {
				t.Error("the rollback restart did not run on the restored file")
			}
			if st := e.a.Applied(); st.Version != 1 || st.SHA256 != good.SHA256 {
				t.Errorf("applied state = v%d %s, want v1 unchanged", st.Version, st.SHA256)
			}
			if e.a.Snapshot().Degraded != tc.degraded {
				t.Errorf("degraded = %v, want %v", e.a.Snapshot().Degraded, tc.degraded)
			}
			entries, _ := os.ReadDir(e.dir)
			for _, en := range entries {
				if strings.HasPrefix(en.Name(), tempPrefix) {
					t.Errorf("temp file left behind: %s", en.Name())
				}
			}
		})
	}
}

func TestFailedFirstApplyWithoutConfigRemovesIt(t *testing.T) {
	e := newEnv(t, "")
	e.unit.restartErr = []error{errors.New("job failed")}
	res := e.a.Apply(context.Background(), 1, rules("a.example.com"))
	if res.OK || res.Stage != protocol.StageRestart {
		t.Fatalf("apply = %+v", res)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "config.yml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config.yml should be gone again (there was none before): %v", err)
	}
}

func TestWriteFailureIsANackAndChangesNothing(t *testing.T) {
	e := newEnv(t, operatorFile)
	e.a.ConfigPath = filepath.Join(e.dir, "missing-dir", "config.yml")
	res := e.a.Apply(context.Background(), 1, rules("a.example.com"))
	if res.OK || res.Stage != protocol.StageWrite {
		t.Fatalf("apply = %+v, want NACK at write", res)
	}
	if e.unit.restarts() != 0 || e.a.Applied().Version != 0 {
		t.Error("a failed write must not restart or change the state")
	}
}

func TestRecoveryFinishesOrDropsAnInterruptedApply(t *testing.T) {
	for _, tc := range []struct {
		name      string
		published bool
	}{{"crash after publish", true}, {"crash before publish", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, operatorFile)
			// Simulate the crash: run the steps up to the pending marker by hand.
			out, sha, _, err := e.a.render(storedRules(rules("a.example.com")))
			if err != nil {
				t.Fatal(err)
			}
			p := pending{State: State{Version: 4, SHA256: sha, Rules: storedRules(rules("a.example.com"))}, PrevSHA256: hashOf([]byte(operatorFile))}
			if err := writeJSONAtomic(e.a.pendingPath(), p); err != nil {
				t.Fatal(err)
			}
			if err := e.a.saveLastGood(p.PrevSHA256); err != nil {
				t.Fatal(err)
			}
			tmp, err := writeTemp(e.dir, "config.yml", out, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if tc.published {
				if err := publish(tmp, filepath.Join(e.dir, "config.yml")); err != nil {
					t.Fatal(err)
				}
			}
			b := e.applier()
			if err := b.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
				t.Error("stray temp file not removed")
			}
			if _, err := os.Stat(b.pendingPath()); !errors.Is(err, os.ErrNotExist) {
				t.Error("pending marker not cleared")
			}
			if tc.published {
				if b.Applied().Version != 4 || e.unit.restarts() != 1 {
					t.Errorf("recovery: version %d, restarts %d; want the apply finished with one restart", b.Applied().Version, e.unit.restarts())
				}
			} else {
				if b.Applied().Version != 0 || e.unit.restarts() != 0 || e.config(t) != operatorFile {
					t.Errorf("recovery: version %d, restarts %d; want the apply dropped and the file untouched", b.Applied().Version, e.unit.restarts())
				}
			}
		})
	}
}

func TestRecoveryRollsBackWhenTheRestartFails(t *testing.T) {
	e := newEnv(t, operatorFile)
	out, sha, _, _ := e.a.render(storedRules(rules("a.example.com")))
	p := pending{State: State{Version: 4, SHA256: sha}, PrevSHA256: hashOf([]byte(operatorFile))}
	_ = e.a.saveLastGood(p.PrevSHA256)
	_ = writeJSONAtomic(e.a.pendingPath(), p)
	mustWrite(t, filepath.Join(e.dir, "config.yml"), string(out))
	e.unit.restartErr = []error{errors.New("job failed")}
	b := e.applier()
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.config(t) != operatorFile || b.Applied().Version != 0 {
		t.Errorf("after a failed recovery restart the last good file must be back")
	}
	if snap := b.Snapshot(); snap.Last == nil || snap.Last.OK || snap.Last.Stage != protocol.StageRestart {
		t.Errorf("last result = %+v, want the failed restart", snap.Last)
	}
}

func TestReconcileRevertsDriftAndRendersBaseChanges(t *testing.T) {
	e := newEnv(t, operatorFile)
	res := e.a.Apply(context.Background(), 1, rules("a.example.com"))
	ours := e.config(t)

	if _, changed := e.a.Reconcile(context.Background()); changed {
		t.Fatal("reconcile changed an untouched file")
	}

	mustWrite(t, filepath.Join(e.dir, "config.yml"), ours+"# hand edit\n")
	r, changed := e.a.Reconcile(context.Background())
	if !changed || !r.OK || e.config(t) != ours {
		t.Fatalf("drift not reverted: changed=%v %+v", changed, r)
	}
	if e.a.Snapshot().Drift != 1 {
		t.Errorf("drift = %d, want 1", e.a.Snapshot().Drift)
	}

	base, _ := os.ReadFile(filepath.Join(e.dir, "base.yml"))
	edited := strings.Replace(string(base), "  - service: http_status:404", "  - hostname: grafana.sajet.us\n    service: http://127.0.0.1:3000\n  - service: http_status:404", 1)
	mustWrite(t, filepath.Join(e.dir, "base.yml"), edited)
	r, changed = e.a.Reconcile(context.Background())
	if !changed || !r.OK || !strings.Contains(e.config(t), "grafana.sajet.us") || r.SHA256 == res.SHA256 {
		t.Fatalf("base change not rendered: changed=%v %+v", changed, r)
	}
	if e.a.Snapshot().Drift != 1 {
		t.Errorf("a base change is not drift; drift = %d", e.a.Snapshot().Drift)
	}
	if e.a.Applied().Version != 1 {
		t.Errorf("a re-render keeps the version; got %d", e.a.Applied().Version)
	}

	// A broken base file is refused; the config in force stays.
	before := e.config(t)
	mustWrite(t, filepath.Join(e.dir, "base.yml"), "ingress: [\n")
	r, _ = e.a.Reconcile(context.Background())
	if r.OK || r.Stage != protocol.StageValidate || e.config(t) != before {
		t.Errorf("broken base: %+v; config must stay", r)
	}
}

// startTimedUnit also says when the unit last started.
type startTimedUnit struct {
	*fakeUnit
	since time.Time
}

func (u *startTimedUnit) ActiveSince(context.Context) (time.Time, error) { return u.since, nil }

func TestDriftRevertRestartsOnlyIfTheUnitStartedSince(t *testing.T) {
	for _, tc := range []struct {
		name         string
		startedAfter bool
		wantRestarts int
	}{
		{"unit still runs our config", false, 1},
		{"unit restarted after our apply", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, operatorFile)
			u := &startTimedUnit{fakeUnit: e.unit}
			e.a.Units = []Unit{u}
			u.since = time.Now()
			if res := e.a.Apply(context.Background(), 1, rules("a.example.com")); !res.OK {
				t.Fatal(res)
			}
			ours := e.config(t)
			if tc.startedAfter {
				u.since = time.Now().Add(time.Second)
			}
			mustWrite(t, filepath.Join(e.dir, "config.yml"), ours+"# hand edit\n")
			res, changed := e.a.Reconcile(context.Background())
			if !changed || !res.OK || e.config(t) != ours {
				t.Fatalf("drift not reverted: %+v", res)
			}
			if got := e.unit.restarts(); got != tc.wantRestarts {
				t.Errorf("restarts = %d, want %d", got, tc.wantRestarts)
			}
		})
	}
}
