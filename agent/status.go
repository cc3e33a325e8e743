package agent

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/jeturing/sajet-domains/agent/link"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Report is the /status document.
type Report struct {
	Status       string     `json:"status"` // pass | warn | fail, as /readyz sees it
	Problem      string     `json:"problem,omitempty"`
	Version      string     `json:"version"`
	Agent        string     `json:"agent"`
	Tunnel       string     `json:"tunnel"`
	BootID       string     `json:"boot_id"`
	UptimeS      int64      `json:"uptime_s"`
	ControlPlane link.State `json:"control_plane"`
	Config       struct {
		Path           string     `json:"path"`
		AppliedVersion int64      `json:"applied_version"`
		AppliedHash    string     `json:"applied_hash"`
		AppliedAt      time.Time  `json:"applied_at,omitzero"`
		Rules          int        `json:"rules"`
		LastResult     string     `json:"last_result,omitempty"` // ok | failed
		LastError      *LastError `json:"last_error,omitempty"`
		Drift          int64      `json:"drift"`
	} `json:"config"`
	// Cloudflared sums the replicas up (unit: their names, comma-separated; the state of the
	// first one that is not active); Replicas has each one.
	Cloudflared struct {
		Unit string `json:"unit"`
		protocol.UnitState
		RestartsByAgent int64     `json:"restarts_by_agent"`
		Replicas        []Replica `json:"replicas,omitempty"`
	} `json:"cloudflared"`
}

// Replica is one unit of cloudflared as /status shows it.
type Replica struct {
	Unit     string `json:"unit"`
	ReadyURL string `json:"ready_url,omitempty"`
	protocol.UnitState
}

// LastError is the most recent failed apply.
type LastError struct {
	Stage   string    `json:"stage"`
	Msg     string    `json:"msg"`
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
}

// Report builds the status document.
func (a *Agent) Report() Report {
	var r Report
	snap := a.applier.Snapshot()
	r.Version, r.Agent, r.Tunnel, r.BootID = a.opts.Build, a.cfg.Name, a.cfg.Tunnel, a.bootID
	r.UptimeS = int64(time.Since(a.started).Seconds())
	r.ControlPlane = a.link.State()
	r.Config.Path = a.cfg.ConfigPath
	r.Config.AppliedVersion, r.Config.AppliedHash, r.Config.AppliedAt = snap.State.Version, snap.State.SHA256, snap.State.AppliedAt
	r.Config.Rules, r.Config.Drift = len(snap.State.Rules), snap.Drift
	if l := snap.Last; l != nil {
		r.Config.LastResult = "ok"
		if !l.OK {
			r.Config.LastResult = "failed"
			r.Config.LastError = &LastError{Stage: l.Stage, Msg: l.Err, Version: l.Version, At: l.At}
		}
	}
	r.Cloudflared.Unit = strings.Join(a.cfg.UnitNames(), ", ")
	r.Cloudflared.UnitState = a.unitState()
	for i, st := range a.unitStates() {
		u := a.cfg.Replicas()[i]
		r.Cloudflared.Replicas = append(r.Cloudflared.Replicas, Replica{Unit: u.Name, ReadyURL: u.ReadyURL, UnitState: st})
	}
	r.Cloudflared.RestartsByAgent = snap.Restarts
	r.Status = "pass"
	if err := a.Ready(); err != nil {
		r.Status, r.Problem = "fail", err.Error()
		// A failed apply whose rollback worked leaves a good config in force: degraded, not down.
		if l := snap.Last; l != nil && !l.OK && !snap.Degraded && r.ControlPlane.Connected && a.unitOK() == nil {
			r.Status = "warn"
		}
	}
	return r
}

// Live reports whether the main loop turned recently.
func (a *Agent) Live() error {
	// An apply legitimately holds the loop for a restart and a verify of each replica and, on
	// failure, a rollback's; only longer than that is stuck.
	n := time.Duration(max(1, len(a.opts.Units)))
	limit := 2*n*(a.cfg.RestartTimeout+a.cfg.ReadyTimeout+a.cfg.StartGrace) + a.cfg.MinRestartInterval + time.Minute
	if since := time.Since(time.Unix(0, a.heartbeat.Load())); since > limit {
		return fmt.Errorf("main loop stuck for %s", since.Round(time.Second))
	}
	return nil
}

// Ready reports whether the agent does its job: connected to the control plane, the last apply
// good, and cloudflared active (and ready when a ready URL is configured).
func (a *Agent) Ready() error {
	if err := a.Live(); err != nil {
		return err
	}
	if st := a.link.State(); !st.Connected {
		msg := "not connected to the control plane"
		if st.LastError != "" {
			msg += ": " + st.LastError
		}
		return errors.New(msg)
	}
	snap := a.applier.Snapshot()
	if snap.Degraded {
		return errors.New("the last rollback failed: the config on disk may not be what cloudflared runs")
	}
	if l := snap.Last; l != nil && !l.OK {
		return fmt.Errorf("last apply (version %d) failed at %s: %s", l.Version, l.Stage, l.Err)
	}
	return a.unitOK()
}

// unitOK checks every replica: one that is down is a problem to fix even while the others serve.
func (a *Agent) unitOK() error {
	replicas := a.cfg.Replicas()
	for i, u := range a.unitStates() {
		r := replicas[i]
		if u.ActiveState != "active" {
			return fmt.Errorf("%s is %s", r.Name, orUnknown(u.ActiveState))
		}
		if r.ReadyURL != "" && u.ReadyConnections == 0 {
			return fmt.Errorf("%s has no ready connections to Cloudflare", r.Name)
		}
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "in an unknown state"
	}
	return s
}

// Registry returns the agent's Prometheus metrics.
func (a *Agent) Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge("sajet_agent_connected", "1 while a session with the control plane is up.", func() float64 { return b2f(a.link.State().Connected) })
	gauge("sajet_agent_ready", "1 while /readyz passes.", func() float64 { return b2f(a.Ready() == nil) })
	gauge("sajet_agent_applied_version", "Tunnel config version in force.", func() float64 { return float64(a.applier.Snapshot().State.Version) })
	gauge("sajet_agent_managed_rules", "Managed ingress rules in force.", func() float64 { return float64(len(a.applier.Snapshot().State.Rules)) })
	gauge("sajet_agent_control_plane_rtt_seconds", "Last measured round trip to the control plane.", func() float64 { return a.link.State().RTTMS / 1000 })
	gauge("sajet_agent_last_apply_duration_seconds", "Duration of the last apply.", func() float64 { return a.applies.Load().last.Seconds() })
	counter("sajet_agent_reconnects_total", "Sessions with the control plane lost.", func() float64 { return float64(a.link.State().Reconnects) })
	counter("sajet_agent_applies_ok_total", "Applies that succeeded.", func() float64 { return float64(a.applies.Load().ok) })
	counter("sajet_agent_applies_failed_total", "Applies refused or rolled back.", func() float64 { return float64(a.applies.Load().failed) })
	counter("sajet_agent_drift_total", "Hand edits of config.yml detected and reverted.", func() float64 { return float64(a.applier.Snapshot().Drift) })
	counter("sajet_agent_cloudflared_restarts_total", "cloudflared restarts the agent asked for.", func() float64 { return float64(a.applier.Snapshot().Restarts) })
	return reg
}
