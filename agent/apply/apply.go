package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jeturing/sajet-domains/internal/textlimit"
	"github.com/jeturing/sajet-domains/shared/ingress"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Unit is a service that reads the config (cloudflared, or one of its replicas), as the
// pipeline needs it.
type Unit interface {
	// Restart restarts the unit and returns once its restart job finished successfully. An
	// error after which the unit was certainly not touched (systemd refused the call) is an
	// *UntouchedError.
	Restart(ctx context.Context) error
	// Verify returns nil once the restarted unit runs (active, and ready when that is checked).
	Verify(ctx context.Context) error
}

// UntouchedError is a restart refused before it started anything: polkit denied it, or systemd
// has no such unit. The unit still runs whatever it ran, so a rollback does not restart it.
type UntouchedError struct {
	Err error
}

func (e *UntouchedError) Error() string { return e.Err.Error() }
func (e *UntouchedError) Unwrap() error { return e.Err }

// Checker validates a complete config file beyond the built-in validator, e.g. with
// `cloudflared tunnel --config F ingress validate`. A verdict against the file is a *Refusal;
// any other error (the checker could not run) says nothing about the rules.
type Checker func(ctx context.Context, path string) error

// Refusal is a checker's verdict that the file is invalid, with the checker's reason.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// Crash steps, for Applier.Crash (tests kill the agent at each of them).
const (
	StepTempWritten    = "temp-written"
	StepPendingWritten = "pending-written"
	StepPublished      = "published"
	StepRestarted      = "restarted"
)

// State is the applied configuration, persisted as state.json.
type State struct {
	Version   int64        `json:"version"`
	SHA256    string       `json:"sha256"`
	AppliedAt time.Time    `json:"applied_at"`
	Rules     []StoredRule `json:"rules"`
	// VerifiedAt is when the unit was last verified running this config (zero: never, or no
	// unit). If the unit has not started since, it still runs this config whatever the file says.
	VerifiedAt time.Time `json:"verified_at,omitzero"`
}

// StoredRule is a managed rule as state.json keeps it: a type of its own, so that the file an
// agent wrote keeps reading the same when the wire's rule type (ingress.Rule) changes.
type StoredRule struct {
	Hostname      string         `json:"hostname"`
	Path          string         `json:"path,omitempty"`
	Service       string         `json:"service"`
	OriginRequest map[string]any `json:"origin_request,omitempty"`
}

func storedRules(rules []ingress.Rule) []StoredRule {
	out := make([]StoredRule, len(rules))
	for i, r := range rules {
		out[i] = StoredRule{Hostname: r.Hostname, Path: r.Path, Service: r.Service, OriginRequest: r.OriginRequest}
	}
	return out
}

func ingressRules(rules []StoredRule) []ingress.Rule {
	out := make([]ingress.Rule, len(rules))
	for i, r := range rules {
		out[i] = ingress.Rule{Hostname: r.Hostname, Path: r.Path, Service: r.Service, OriginRequest: r.OriginRequest}
	}
	return out
}

// StartTimer is implemented by units that know when they last entered the running state.
type StartTimer interface {
	ActiveSince(ctx context.Context) (time.Time, error)
}

// pending is written before config.yml is replaced and removed once the apply is settled.
type pending struct {
	State
	PrevSHA256 string    `json:"prev_sha256"` // "" when config.yml did not exist
	StartedAt  time.Time `json:"started_at"`
}

// Result is the outcome of one Apply or Reconcile.
type Result struct {
	Version   int64 // the version asked for
	OK        bool
	Stage     string // protocol.Stage* when !OK
	Err       string
	SHA256    string // of the config in force afterwards
	Written   bool   // config.yml was replaced
	Restarted bool
	Duration  time.Duration
	At        time.Time
	// Rejected names the managed rules a failure at validate is attributed to: every rule the
	// built-in validator refuses alone, or the one rule the checker's bisection blamed.
	Rejected []protocol.Rejection
}

// Applier owns config.yml. Its methods are safe for concurrent use but serialise: one apply at a
// time.
type Applier struct {
	ConfigPath string
	BaseConfig string
	StateDir   string
	// Check runs after the built-in validation, on the temp file; nil → none.
	Check Checker
	// Units are restarted after each write, one at a time and in order, each verified before
	// the next is touched (replicas of one tunnel: the others serve meanwhile); none → render
	// only (never restart).
	Units []Unit
	// MinRestartInterval spaces restarts; an apply inside it waits (ctx permitting).
	MinRestartInterval time.Duration
	// Crash is called at each Step*; tests make it kill the process. Nil in production.
	Crash  func(step string)
	Logger *slog.Logger

	mu          sync.Mutex
	state       State
	degraded    bool // a rollback failed: the file on disk may not be what cloudflared runs
	lastRestart time.Time
	restarts    int64
	drift       int64
	last        *Result
}

func (a *Applier) statePath() string    { return filepath.Join(a.StateDir, "state.json") }
func (a *Applier) pendingPath() string  { return filepath.Join(a.StateDir, "pending.json") }
func (a *Applier) lastGoodPath() string { return filepath.Join(a.StateDir, "last-good.yml") }

func (a *Applier) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

func (a *Applier) crash(step string) {
	if a.Crash != nil {
		a.Crash(step)
	}
}

// Open loads the state and recovers from a crash (docs/ARCHITECTURE.md §5): stray temp files are removed,
// and a pending apply is finished when its file made it to disk, or dropped when it did not.
func (a *Applier) Open(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := os.MkdirAll(a.StateDir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if _, err := readJSON(a.statePath(), &a.state); err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	removed, err := removeStrayTemps(a.ConfigPath)
	if err != nil {
		return fmt.Errorf("remove temp files beside %s: %w", a.ConfigPath, err)
	}
	for _, p := range removed {
		a.logger().Warn("removed a temp file left by an interrupted apply", "path", p)
	}
	var p pending
	found, err := readJSON(a.pendingPath(), &p)
	if err != nil || !found {
		return err
	}
	disk, err := fileHash(a.ConfigPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", a.ConfigPath, err)
	}
	switch disk {
	case p.SHA256:
		// The new file was published; whether cloudflared runs it is unknown, so restart and
		// verify again, and settle the apply as it would have been settled.
		a.logger().Warn("finishing an apply interrupted after the write", "version", p.Version)
		res := a.settle(ctx, time.Now(), p, true)
		a.last = &res
	default:
		// The rename never happened (disk has the previous file), or the file changed since
		// (drift, handled by the next reconcile): the pending apply did not take effect.
		a.logger().Warn("dropping an apply interrupted before the write", "version", p.Version)
		if err := os.Remove(a.pendingPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Applied is the state in force.
func (a *Applier) Applied() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Snapshot is what status reporting needs.
type Snapshot struct {
	State       State
	Last        *Result
	Drift       int64
	Restarts    int64
	LastRestart time.Time
	Degraded    bool
}

// RestartAllowedAt is when MinRestartInterval next allows a restart (the zero time when it does
// already). Restarts are spaced here only; the agent's main loop reads it to collect the pushes
// that arrive meanwhile into one apply.
func (a *Applier) RestartAllowedAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lastRestart.IsZero() {
		return time.Time{}
	}
	return a.lastRestart.Add(a.MinRestartInterval)
}

// Snapshot returns the current figures.
func (a *Applier) Snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Snapshot{State: a.state, Drift: a.drift, Restarts: a.restarts, LastRestart: a.lastRestart, Degraded: a.degraded}
	if a.last != nil {
		r := *a.last
		s.Last = &r
	}
	return s
}

// Apply makes version v with the managed rules the config in force, or reports why not.
func (a *Applier) Apply(ctx context.Context, v int64, rules []ingress.Rule) Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := a.apply(ctx, State{Version: v, Rules: storedRules(rules)}, true)
	a.last = &res
	return res
}

// Reconcile re-renders the applied rules against the current base file and makes config.yml
// match: a hand edit of config.yml (drift) is reverted and an edit of the base file is rendered
// in. It returns changed=false when the file on disk already is the rendering.
func (a *Applier) Reconcile(ctx context.Context) (res Result, changed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state.Version == 0 && a.state.SHA256 == "" {
		return Result{OK: true}, false // nothing applied yet: the file is the operator's
	}
	disk, err := fileHash(a.ConfigPath)
	if err == nil && disk != a.state.SHA256 {
		a.drift++
		a.logger().Warn("config.yml changed behind the agent's back; restoring it", "path", a.ConfigPath,
			"expected_sha256", a.state.SHA256, "found_sha256", disk)
	}
	out, sha, _, err := a.render(a.state.Rules)
	if err == nil && sha == disk {
		return Result{Version: a.state.Version, OK: true, SHA256: disk}, false
	}
	if err == nil && sha == a.state.SHA256 && a.unitStillRunsApplied(ctx) {
		// Only config.yml was edited, and cloudflared has not started since it was verified on
		// our config: it still runs ours. Restoring the file is enough; a restart would drop the
		// tunnel's connections for nothing.
		start := time.Now()
		res = Result{Version: a.state.Version, OK: true, SHA256: sha, Written: true}
		if werr := writeFileAtomic(a.ConfigPath, out, a.configMode()); werr != nil {
			res = fail(start, a.state.Version, protocol.StageWrite, fmt.Errorf("restore %s: %w", a.ConfigPath, werr), disk)
		}
		res.Duration, res.At = time.Since(start), time.Now()
		a.last = &res
		return res, true
	}
	res = a.apply(ctx, a.state, false) // the drift was counted above
	a.last = &res
	return res, true
}

// unitStillRunsApplied reports whether no unit has started since they were verified running the
// applied config.
func (a *Applier) unitStillRunsApplied(ctx context.Context) bool {
	if len(a.Units) == 0 {
		return true // render-only: nothing to restart anyway
	}
	if a.state.VerifiedAt.IsZero() {
		return false
	}
	for _, u := range a.Units {
		st, ok := u.(StartTimer)
		if !ok {
			return false
		}
		since, err := st.ActiveSince(ctx)
		if err != nil || since.IsZero() || since.After(a.state.VerifiedAt) {
			return false
		}
	}
	return true
}

func (a *Applier) configMode() os.FileMode {
	if fi, err := os.Stat(a.ConfigPath); err == nil {
		return fi.Mode().Perm()
	}
	return 0o644
}

// readBase reads and parses the operator's base file.
func (a *Applier) readBase() (*ingress.Base, []byte, error) {
	baseData, err := readLimited(a.BaseConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("read base file: %w", err)
	}
	if baseData == nil {
		return nil, nil, fmt.Errorf("base file %s does not exist", a.BaseConfig)
	}
	base, err := ingress.ParseBase(baseData)
	if err != nil {
		return nil, baseData, fmt.Errorf("%s: %w", a.BaseConfig, err)
	}
	return base, baseData, nil
}

// BaseReport is the operator's base file as the control plane needs to know it: its hash and
// the exact hostnames its rules route (protocol.Base). An unreadable or invalid base reports
// its hash (or none) and no hostnames.
func (a *Applier) BaseReport() protocol.Base {
	base, data, err := a.readBase()
	rep := protocol.Base{Hostnames: []string{}}
	if data != nil {
		rep.SHA256 = hashOf(data)
	}
	if err != nil {
		return rep
	}
	for _, h := range base.Hostnames() {
		if len(h) <= protocol.MaxHostnameLen && len(rep.Hostnames) < protocol.MaxBaseHostnames {
			rep.Hostnames = append(rep.Hostnames, h)
		}
	}
	return rep
}

// render reads the base file and renders it with rules. The parsed base is returned whenever it
// parsed, so that a refusal can be attributed to rules.
func (a *Applier) render(rules []StoredRule) ([]byte, string, *ingress.Base, error) {
	base, _, err := a.readBase()
	if err != nil {
		return nil, "", nil, err
	}
	out, err := ingress.Render(base, ingressRules(rules))
	if err != nil {
		return nil, "", base, err
	}
	return out, hashOf(out), base, nil
}

// rejections attributes a built-in validation failure to the managed rules that caused it.
func rejections(base *ingress.Base, rules []StoredRule) []protocol.Rejection {
	var out []protocol.Rejection
	for _, e := range ingress.Rejections(base, ingressRules(rules)) {
		if len(out) == protocol.MaxRejections {
			break
		}
		out = append(out, protocol.Rejection{Hostname: e.Hostname, Reason: e.Kind, Error: textlimit.Truncate(e.Msg, protocol.MaxRejectionErrorLen)})
	}
	return out
}

// blame finds by bisection which managed rule makes the checker refuse the config: with the
// managed rules in rendered order, the base plus the first k-1 passes and the first k does not.
// It costs about log2(n)+1 checker runs, each on a temp file beside config.yml (so relative
// paths in the config resolve as in the real one). It returns nil when the base alone is
// refused, or when the checker cannot give verdicts: then no rule is to blame.
func (a *Applier) blame(ctx context.Context, base *ingress.Base, rules []StoredRule, mode os.FileMode) []protocol.Rejection {
	sorted := ingressRules(rules)
	slices.SortFunc(sorted, func(x, y ingress.Rule) int { return strings.Compare(x.Hostname, y.Hostname) })
	dir, name := filepath.Dir(a.ConfigPath), filepath.Base(a.ConfigPath)
	// check reports the checker's refusal of base + sorted[:k], or nil when it accepts.
	check := func(k int) (refusal *Refusal, ok bool) {
		out, err := ingress.Render(base, sorted[:k])
		if err != nil {
			return nil, false
		}
		tmp, err := writeTemp(dir, name, out, mode)
		if err != nil {
			return nil, false
		}
		defer os.Remove(tmp)
		err = a.Check(ctx, tmp)
		if err == nil {
			return nil, true
		}
		if errors.As(err, &refusal) {
			return refusal, true
		}
		return nil, false
	}
	if r, ok := check(0); !ok || r != nil {
		return nil
	}
	lo, hi := 0, len(sorted) // base + sorted[:lo] passes, base + sorted[:hi] is refused
	var last *Refusal
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		r, ok := check(mid)
		if !ok {
			return nil
		}
		if r != nil {
			hi, last = mid, r
		} else {
			lo = mid
		}
	}
	if last == nil {
		// hi is still n: the full set's own verdict is the reason.
		r, ok := check(hi)
		if !ok || r == nil {
			return nil // the checker changed its mind: nothing to blame reliably
		}
		last = r
	}
	culprit := sorted[hi-1]
	return []protocol.Rejection{{Hostname: culprit.Hostname, Reason: protocol.RejectCloudflared, Error: textlimit.Truncate(last.Reason, protocol.MaxRejectionErrorLen)}}
}

func fail(start time.Time, v int64, stage string, err error, sha string) Result {
	return Result{Version: v, Stage: stage, Err: err.Error(), SHA256: sha, Duration: time.Since(start), At: time.Now()}
}

// apply runs the pipeline for want (its Version and Rules); a.mu is held.
// countDrift: a file on disk that is not the applied one counts as drift (a push found it; a
// reconcile counts it itself).
func (a *Applier) apply(ctx context.Context, want State, countDrift bool) Result {
	start := time.Now()
	prevSHA, err := fileHash(a.ConfigPath)
	if err != nil {
		return fail(start, want.Version, protocol.StageWrite, fmt.Errorf("read %s: %w", a.ConfigPath, err), a.state.SHA256)
	}
	if countDrift && a.state.SHA256 != "" && prevSHA != a.state.SHA256 {
		// Edited behind the agent's back since our last apply; this apply replaces it, and
		// the edit is counted as drift as a rescan would have counted it.
		a.drift++
		a.logger().Warn("config.yml changed behind the agent's back; replacing it", "path", a.ConfigPath,
			"expected_sha256", a.state.SHA256, "found_sha256", prevSHA)
	}
	// 1. Render (the built-in validation is part of it: Render never returns a file cloudflared
	// would refuse).
	out, sha, base, err := a.render(want.Rules)
	if err != nil {
		res := fail(start, want.Version, protocol.StageValidate, err, prevSHA)
		if base != nil {
			res.Rejected = rejections(base, want.Rules)
		}
		return res
	}
	want.SHA256 = sha
	want.VerifiedAt = a.state.VerifiedAt
	if sha == prevSHA {
		// Same bytes as on disk: no write, no restart.
		want.AppliedAt = time.Now().UTC()
		if err := a.commit(want); err != nil {
			return fail(start, want.Version, protocol.StageWrite, err, prevSHA)
		}
		return Result{Version: want.Version, OK: true, SHA256: sha, Duration: time.Since(start), At: time.Now()}
	}

	// 2. Validate the complete file the way cloudflared will read it.
	mode := a.configMode()
	tmp, err := writeTemp(filepath.Dir(a.ConfigPath), filepath.Base(a.ConfigPath), out, mode)
	if err != nil {
		return fail(start, want.Version, protocol.StageWrite, fmt.Errorf("write temp file: %w", err), prevSHA)
	}
	a.crash(StepTempWritten)
	if a.Check != nil {
		if err := a.Check(ctx, tmp); err != nil {
			os.Remove(tmp)
			res := fail(start, want.Version, protocol.StageValidate, err, prevSHA)
			var refusal *Refusal
			if errors.As(err, &refusal) {
				res.Rejected = a.blame(ctx, base, want.Rules, mode)
			}
			res.Duration, res.At = time.Since(start), time.Now()
			return res
		}
	}

	// 3. Keep the file in force as last-good (only if it is a valid config: garbage from a hand
	// edit must not become what a rollback restores), record the pending apply, publish.
	if err := a.saveLastGood(prevSHA); err != nil {
		os.Remove(tmp)
		return fail(start, want.Version, protocol.StageWrite, fmt.Errorf("save last-good copy: %w", err), prevSHA)
	}
	p := pending{State: want, PrevSHA256: prevSHA, StartedAt: start.UTC()}
	if err := writeJSONAtomic(a.pendingPath(), p); err != nil {
		os.Remove(tmp)
		return fail(start, want.Version, protocol.StageWrite, fmt.Errorf("record pending apply: %w", err), prevSHA)
	}
	a.crash(StepPendingWritten)
	if err := publish(tmp, a.ConfigPath); err != nil {
		os.Remove(a.pendingPath())
		return fail(start, want.Version, protocol.StageWrite, fmt.Errorf("replace %s: %w", a.ConfigPath, err), prevSHA)
	}
	a.crash(StepPublished)
	return a.settle(ctx, start, p, false)
}

// settle restarts the units for a published pending apply, then commits it or rolls it back.
func (a *Applier) settle(ctx context.Context, start time.Time, p pending, recovering bool) Result {
	res := Result{Version: p.Version, SHA256: p.SHA256, Written: !recovering}
	r := a.restartUnits(ctx)
	stage, err := r.stage, r.err
	if err == nil {
		p.AppliedAt = time.Now().UTC()
		if len(a.Units) > 0 {
			p.VerifiedAt = p.AppliedAt
		}
		if err = a.commit(p.State); err != nil {
			stage = protocol.StageWrite
		}
	}
	res.Restarted = r.started > 0
	if err == nil {
		res.OK = true
		res.Duration, res.At = time.Since(start), time.Now()
		return res
	}
	a.logger().Error("apply failed; rolling back to the last good config", "version", p.Version, "stage", stage, "err", err)
	if rbErr := a.rollback(ctx, p, rollbackOrder(len(a.Units), r, recovering)); rbErr != nil {
		a.degraded = true
		res.Stage = protocol.StageRollback
		res.Err = fmt.Sprintf("%s: %v; then rollback failed: %v", stage, err, rbErr)
		res.SHA256, _ = fileHash(a.ConfigPath) // whatever is on disk now
	} else {
		a.degraded = false
		res.Stage = stage
		res.Err = err.Error()
		res.SHA256 = p.PrevSHA256
	}
	res.Duration, res.At = time.Since(start), time.Now()
	return res
}

// restarted is the outcome of restartUnits.
type restarted struct {
	started int    // units whose restart job started
	failed  int    // index of the unit that failed, -1 when none did
	touched bool   // the failed unit's restart started (it is down or runs the new config)
	stage   string // protocol.Stage* of the failure
	err     error
}

// restartUnits restarts and verifies the units one at a time, in order, spacing applies by
// MinRestartInterval. It stops at the first failure, so the units after it are never touched
// and keep serving the config they run.
func (a *Applier) restartUnits(ctx context.Context) restarted {
	r := restarted{failed: -1}
	if len(a.Units) == 0 {
		return r
	}
	if wait := time.Until(a.lastRestart.Add(a.MinRestartInterval)); wait > 0 {
		select {
		case <-ctx.Done():
			r.failed, r.stage, r.err = 0, protocol.StageRestart, fmt.Errorf("waiting for the minimum restart interval: %w", ctx.Err())
			return r
		case <-time.After(wait):
		}
	}
	a.lastRestart = time.Now()
	for i, u := range a.Units {
		if err := u.Restart(ctx); err != nil {
			var untouched *UntouchedError
			r.touched = !errors.As(err, &untouched)
			if r.touched {
				r.started++
				a.restarts++
			}
			r.failed, r.stage, r.err = i, protocol.StageRestart, err
			return r
		}
		r.started++
		a.restarts++
		if i == 0 {
			a.crash(StepRestarted)
		}
		if err := u.Verify(ctx); err != nil {
			r.failed, r.touched, r.stage, r.err = i, true, protocol.StageVerify, err
			return r
		}
	}
	return r
}

// rollbackOrder is the order in which a rollback restarts units: first the one that failed (it
// is down, or runs the refused config), so it serves again before any other replica is touched;
// then the ones restarted before it, in their order. The units after it were never touched and
// still run the last good config, so they are left alone, except after a crash (recovering), when
// nobody knows which units the dead process restarted. A unit whose restart was refused without
// a job is not restarted either: it still runs what it ran.
func rollbackOrder(n int, r restarted, recovering bool) []int {
	var order []int
	if r.failed >= 0 && r.touched {
		order = append(order, r.failed)
	}
	end := r.failed
	if r.failed < 0 || recovering {
		end = n
	}
	for i := range end {
		if i != r.failed {
			order = append(order, i)
		}
	}
	return order
}

// saveLastGood copies config.yml to the state dir when it parses as a valid config.
func (a *Applier) saveLastGood(prevSHA string) error {
	if prevSHA == "" {
		// No config.yml yet: rolling back means removing ours.
		err := os.Remove(a.lastGoodPath())
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	data, err := readLimited(a.ConfigPath)
	if err != nil {
		return err
	}
	if lg, _ := readLimited(a.lastGoodPath()); lg != nil && bytes.Equal(lg, data) {
		return nil
	}
	if ingress.ValidateFile(data) != nil {
		a.logger().Warn("config.yml in force is not a valid config; keeping the previous last-good copy")
		return nil
	}
	return writeFileAtomic(a.lastGoodPath(), data, 0o600)
}

// rollback puts the last-good file back and restarts the units in order on it, each verified
// before the next. It stops at the first unit that does not come back: restarting more would only
// take down replicas that serve.
func (a *Applier) rollback(ctx context.Context, p pending, order []int) error {
	defer os.Remove(a.pendingPath())
	lg, err := readLimited(a.lastGoodPath())
	if err != nil {
		return fmt.Errorf("read last-good copy: %w", err)
	}
	switch {
	case lg == nil && p.PrevSHA256 == "":
		if err := os.Remove(a.ConfigPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := syncDir(filepath.Dir(a.ConfigPath)); err != nil {
			return err
		}
	case lg == nil:
		return errors.New("no last-good copy to restore")
	default:
		if err := writeFileAtomic(a.ConfigPath, lg, a.configMode()); err != nil {
			return fmt.Errorf("restore last-good copy: %w", err)
		}
	}
	// The restart interval does not apply: a unit is down or running a bad config.
	for _, i := range order {
		u := a.Units[i]
		a.lastRestart = time.Now()
		a.restarts++
		if err := u.Restart(ctx); err != nil {
			return fmt.Errorf("restart on the last-good config: %w", err)
		}
		if err := u.Verify(ctx); err != nil {
			return fmt.Errorf("verify on the last-good config: %w", err)
		}
	}
	return nil
}

// commit records want as applied and clears the pending marker.
func (a *Applier) commit(want State) error {
	if err := writeJSONAtomic(a.statePath(), want); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	a.state = want
	a.degraded = false
	if err := os.Remove(a.pendingPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear pending marker: %w", err)
	}
	return nil
}
