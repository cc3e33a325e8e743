// Package agent runs the edge agent: one main loop owns the apply pipeline (agent/apply), fed by
// pushes from the control-plane link (agent/link) and by changes to the config files
// (agent/watch); its health is served to ops (agent/health) and reported to the control plane.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jeturing/sajet-domains/agent/apply"
	"github.com/jeturing/sajet-domains/agent/config"
	"github.com/jeturing/sajet-domains/agent/link"
	"github.com/jeturing/sajet-domains/agent/watch"
	"github.com/jeturing/sajet-domains/internal/textlimit"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Options are the parts of an Agent that are not in the config file.
type Options struct {
	Build  string
	Logger *slog.Logger
	// Units restart and check cloudflared's units, in the order of cfg.Replicas() (one per
	// replica); none when the config names none (render only).
	Units []UnitControl
	// Crash is the fault-injection hook of apply.Applier.Crash.
	Crash func(step string)
}

// UnitControl is cloudflared's unit as the agent needs it: the apply pipeline's restart and
// verify, plus its state for status.
type UnitControl interface {
	apply.Unit
	State(ctx context.Context) (protocol.UnitState, error)
}

// Agent is one running agent.
type Agent struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	applier *apply.Applier
	link    *link.Link
	bootID  string
	started time.Time

	requests  chan request
	heartbeat atomic.Int64 // unix nanos of the main loop's last turn
	applies   atomic.Pointer[applyStats]

	unitMu sync.Mutex
	units  []protocol.UnitState // by replica, as last read
}

type applyStats struct {
	ok, failed int64
	last       time.Duration
}

type request struct {
	d     protocol.Desired
	reply chan protocol.Ack
}

// New prepares an agent: it loads the state and recovers an interrupted apply.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if n := len(cfg.Replicas()); len(opts.Units) != n {
		return nil, fmt.Errorf("agent: %d unit controls for the %d units of the config", len(opts.Units), n)
	}
	a := &Agent{cfg: cfg, opts: opts, log: opts.Logger, bootID: rand.Text(), started: time.Now(),
		requests: make(chan request, 64), units: make([]protocol.UnitState, len(opts.Units))}
	a.applies.Store(&applyStats{})
	a.applier = &apply.Applier{
		ConfigPath: cfg.ConfigPath, BaseConfig: cfg.BaseConfig, StateDir: cfg.StateDir,
		MinRestartInterval: cfg.MinRestartInterval, Crash: opts.Crash, Logger: opts.Logger,
	}
	if cfg.CloudflaredBin != "" {
		a.applier.Check = CloudflaredCheck(cfg.CloudflaredBin)
	}
	for _, u := range opts.Units {
		a.applier.Units = append(a.applier.Units, u)
	}
	if err := a.applier.Open(ctx); err != nil {
		return nil, err
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	a.link = link.New(link.Config{Addr: cfg.ControlPlane, TLS: tlsCfg, Keepalive: cfg.Keepalive,
		StatusInterval: cfg.StatusInterval, Logger: opts.Logger}, a)
	a.heartbeat.Store(time.Now().UnixNano())
	return a, nil
}

func tlsConfig(cfg *config.Config) (c *tls.Config, err error) {
	var pin []byte
	if cfg.Fingerprint != "" {
		if pin, err = config.ParseFingerprint(cfg.Fingerprint); err != nil {
			return nil, err
		}
	}
	if cfg.CAFile != "" {
		roots, err := cfg.CAPool()
		if err != nil {
			return nil, err
		}
		return link.TLSConfig(cfg.ServerNameOrHost(), roots, nil), nil
	}
	return link.TLSConfig(cfg.ServerNameOrHost(), nil, pin), nil
}

// Run runs the agent until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	w, err := watch.New([]string{a.cfg.ConfigPath, a.cfg.BaseConfig}, 250*time.Millisecond)
	if err != nil {
		return fmt.Errorf("watch config files: %w", err)
	}
	defer w.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Read the unit's state before the first status report leaves (bounded by refreshUnit's
	// own timeout), so the control plane never shows an unknown cloudflared state.
	a.refreshUnit(ctx)
	wg.Add(2)
	go func() { defer wg.Done(); a.link.Run(ctx) }()
	go func() { defer wg.Done(); a.pollUnit(ctx) }()
	return a.loop(ctx, w)
}

// loop is the one goroutine that applies: pushes, drift and base-file changes are serialised
// here, and pushes arriving while an apply runs (or while the minimum restart interval holds the
// next one back) are coalesced into one apply of the newest.
func (a *Agent) loop(ctx context.Context, w *watch.Watcher) error {
	rescan := time.NewTicker(a.cfg.RescanInterval)
	defer rescan.Stop()
	beat := time.NewTicker(time.Second)
	defer beat.Stop()
	var queue []request
	for {
		a.heartbeat.Store(time.Now().UnixNano())
		if len(queue) > 0 {
			queue = a.serve(ctx, queue)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case r := <-a.requests:
			queue = append(queue, r)
		case err := <-w.Errors():
			a.log.Warn("file watch error; rescanning", "err", err)
			a.reconcile(ctx)
		case <-w.Events():
			a.reconcile(ctx)
		case <-rescan.C:
			a.reconcile(ctx)
		case <-beat.C:
		}
	}
}

// serve applies the newest queued push and answers every queued push it covers. It returns
// what is still queued (pushes that arrived meanwhile).
func (a *Agent) serve(ctx context.Context, queue []request) []request {
	// Hold back while the applier would wait for its minimum restart interval anyway, collecting
	// newer pushes: they are applied as one.
	if wait := time.Until(a.applier.RestartAllowedAt()); wait > 0 && len(a.opts.Units) > 0 {
		timer := time.NewTimer(wait)
	collect:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil
			case r := <-a.requests:
				queue = append(queue, r)
			case <-timer.C:
				break collect
			}
		}
	}
	for drained := false; !drained; {
		select {
		case r := <-a.requests:
			queue = append(queue, r)
		default:
			drained = true
		}
	}
	newest := queue[0]
	for _, r := range queue[1:] {
		if r.d.Version > newest.d.Version {
			newest = r
		}
	}
	// Classified once, against the version in force now: older pushes are covered by it.
	applies := protocol.Classify(a.applier.Applied().Version, newest.d).Applies()
	var res apply.Result
	if applies {
		// An apply that started runs to its end (its restart and verify have their own
		// timeouts): stopping the agent halfway would leave cloudflared on an unverified config.
		res = a.applier.Apply(context.WithoutCancel(ctx), newest.d.Version, newest.d.Rules)
		a.recordApply(res)
		if res.OK {
			a.log.Info("applied", "version", res.Version, "sha256", res.SHA256, "written", res.Written,
				"restarted", res.Restarted, "duration", res.Duration)
		} else {
			a.log.Error("apply refused", "version", res.Version, "stage", res.Stage, "err", res.Err)
		}
		go a.refreshUnit(ctx)
	}
	st := a.applier.Applied()
	for _, r := range queue {
		switch {
		case r.d.Nonce == newest.d.Nonce && applies:
			r.reply <- ackFor(r.d, res, st)
		case r.d.Version > st.Version:
			// Coalesced into newest, which failed: this one did not take effect either.
			nack := res
			nack.Err = fmt.Sprintf("superseded by version %d, which failed: %s", newest.d.Version, res.Err)
			r.reply <- ackFor(r.d, nack, st)
		default:
			// Older than what is now applied, or a duplicate: acknowledged without applying.
			r.reply <- a.ackWithoutApply(r.d)
		}
	}
	return nil
}

func (a *Agent) recordApply(res apply.Result) {
	old := a.applies.Load()
	n := *old
	if res.OK {
		n.ok++
	} else {
		n.failed++
	}
	n.last = res.Duration
	a.applies.Store(&n)
}

func ackFor(d protocol.Desired, res apply.Result, st apply.State) protocol.Ack {
	ack := protocol.Ack{Nonce: d.Nonce, Version: d.Version, OK: res.OK, SHA256: res.SHA256, Restarted: res.Restarted,
		DurationMS: res.Duration.Milliseconds(), AppliedVersion: st.Version}
	if !res.OK {
		ack.Stage, ack.Error = res.Stage, textlimit.Truncate(res.Err, protocol.MaxErrorLen)
		if res.Stage == protocol.StageValidate {
			ack.Rejected = res.Rejected
		}
	}
	return ack
}

func (a *Agent) ackWithoutApply(d protocol.Desired) protocol.Ack {
	st := a.applier.Applied()
	return protocol.Ack{Nonce: d.Nonce, Version: d.Version, OK: true, SHA256: st.SHA256, AppliedVersion: st.Version}
}

func (a *Agent) reconcile(ctx context.Context) {
	// A base edit may route new hostnames (or stop routing some): the control plane learns it
	// before it decides the next version.
	a.link.BaseChanged()
	res, changed := a.applier.Reconcile(context.WithoutCancel(ctx))
	if !changed {
		return
	}
	a.recordApply(res)
	go a.refreshUnit(ctx)
	if res.OK {
		a.log.Info("config.yml re-rendered", "version", res.Version, "sha256", res.SHA256, "restarted", res.Restarted)
	} else {
		a.log.Error("re-render refused; the config in force is unchanged", "stage", res.Stage, "err", res.Err)
	}
}

// Hello implements link.Handler.
func (a *Agent) Hello() protocol.Hello {
	st := a.applier.Applied()
	return protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: textlimit.Truncate(a.cfg.Name, protocol.MaxNameLen),
		Token: a.cfg.Token, Tunnel: a.cfg.Tunnel, Build: textlimit.Truncate(a.opts.Build, protocol.MaxNameLen),
		Applied: protocol.AppliedState{Version: st.Version, SHA256: st.SHA256}}
}

// Desired implements link.Handler: every push goes through the main loop, which decides once,
// against the version in force when the push's turn comes, whether it applies.
func (a *Agent) Desired(ctx context.Context, d protocol.Desired) protocol.Ack {
	r := request{d: d, reply: make(chan protocol.Ack, 1)}
	select {
	case a.requests <- r:
	case <-ctx.Done():
		return protocol.Ack{Nonce: d.Nonce, Version: d.Version, Stage: protocol.StageWrite, Error: "agent shutting down",
			AppliedVersion: a.applier.Applied().Version}
	}
	// The apply runs to its end even if the session drops; the answer then goes nowhere, and
	// the next hello reports the result.
	select {
	case ack := <-r.reply:
		return ack
	case <-ctx.Done():
		return protocol.Ack{Nonce: d.Nonce, Version: d.Version, Stage: protocol.StageWrite, Error: "session ended before the apply finished",
			AppliedVersion: a.applier.Applied().Version}
	}
}

// Base implements link.Handler.
func (a *Agent) Base() protocol.Base { return a.applier.BaseReport() }

// Status implements link.Handler.
func (a *Agent) Status() protocol.Status {
	snap := a.applier.Snapshot()
	u := a.unitState()
	s := protocol.Status{SentAt: time.Now().UTC(), UptimeS: int64(time.Since(a.started).Seconds()),
		Applied:   protocol.AppliedState{Version: snap.State.Version, SHA256: snap.State.SHA256},
		AppliedAt: snap.State.AppliedAt, DriftCount: snap.Drift,
		Unit: protocol.UnitState{ActiveState: textlimit.Truncate(u.ActiveState, protocol.MaxStateLen), SubState: textlimit.Truncate(u.SubState, protocol.MaxStateLen),
			NRestarts: u.NRestarts, ReadyConnections: u.ReadyConnections, LastRestart: u.LastRestart}}
	if l := snap.Last; l != nil {
		s.LastApply = &protocol.ApplyResult{Version: l.Version, OK: l.OK, Stage: l.Stage, Error: textlimit.Truncate(l.Err, protocol.MaxErrorLen), At: l.At}
	}
	return s
}

// unitStates returns each replica's state as last read.
func (a *Agent) unitStates() []protocol.UnitState {
	a.unitMu.Lock()
	defer a.unitMu.Unlock()
	return append([]protocol.UnitState(nil), a.units...)
}

// unitState sums the replicas up for the control plane, whose protocol knows one cloudflared
// per agent: the state of the first replica that is not active (else of the first), restarts
// and ready connections added up, the latest start.
func (a *Agent) unitState() protocol.UnitState {
	states := a.unitStates()
	if len(states) == 0 {
		return protocol.UnitState{}
	}
	sum := states[0]
	for _, st := range states {
		if st.ActiveState != "active" {
			sum.ActiveState, sum.SubState = st.ActiveState, st.SubState
			break
		}
	}
	sum.NRestarts, sum.ReadyConnections = 0, 0
	for _, st := range states {
		sum.NRestarts += st.NRestarts
		sum.ReadyConnections += st.ReadyConnections
		if st.LastRestart.After(sum.LastRestart) {
			sum.LastRestart = st.LastRestart
		}
	}
	return sum
}

func (a *Agent) pollUnit(ctx context.Context) {
	t := time.NewTicker(a.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.refreshUnit(ctx)
	}
}

func (a *Agent) refreshUnit(ctx context.Context) {
	if len(a.opts.Units) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for i, u := range a.opts.Units {
		st, err := u.State(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			a.log.Debug("read unit state", "unit", a.cfg.Replicas()[i].Name, "err", err)
			continue
		}
		a.unitMu.Lock()
		a.units[i] = st
		a.unitMu.Unlock()
	}
}
