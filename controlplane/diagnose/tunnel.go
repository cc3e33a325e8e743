package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Prober asks the connected agents of a tunnel to probe a backend (*gateway.Server).
type Prober interface {
	Probe(ctx context.Context, tunnelID int64, req protocol.ProbeRequest) []gateway.ProbeOutcome
}

// TunnelEvidence is every agent of the domain's tunnel and whether it routes the domain.
type TunnelEvidence struct {
	TunnelID       int64           `json:"tunnel_id,omitempty"`
	DesiredVersion int64           `json:"desired_version"`
	InDesired      bool            `json:"in_desired" doc:"The domain's rules are in the tunnel's desired rule set"`
	Service        string          `json:"service,omitempty" doc:"Where the tunnel sends the domain (the tenant's backend URL)"`
	Agents         []AgentEvidence `json:"agents"`
}

// AgentEvidence is one agent of the tunnel.
type AgentEvidence struct {
	ID             int64      `json:"id"`
	Name           string     `json:"name"`
	Connected      bool       `json:"connected"`
	LastSeenAt     *time.Time `json:"last_seen_at,omitempty"`
	AppliedVersion *int64     `json:"applied_version"`
	// HasRules: the version the agent applied carries this domain's rules.
	HasRules bool `json:"has_rules"`
	// LastNACK is the agent's last refusal still in force: stage and error.
	LastNACK *NACK `json:"last_nack,omitempty"`
}

// NACK is an agent's refusal of a version.
type NACK struct {
	Stage string `json:"stage,omitempty"`
	Error string `json:"error"`
}

// BackendEvidence is each tunnel host's probe of the backend.
type BackendEvidence struct {
	URL    string         `json:"url,omitempty" doc:"The service probed, as the tunnel's rule names it"`
	Host   string         `json:"host" doc:"The Host header sent (the customer's hostname)"`
	Probes []ProbeOutcome `json:"probes"`
}

// ProbeOutcome is one agent's probe.
type ProbeOutcome struct {
	Agent      string  `json:"agent"`
	AgentID    int64   `json:"agent_id"`
	Verdict    Verdict `json:"verdict" enum:"ok,warn,fail,unknown"`
	Status     int     `json:"status,omitempty" doc:"The backend's HTTP status, when it answered"`
	DurationMS int64   `json:"duration_ms,omitempty"`
	Failure    string  `json:"failure,omitempty" doc:"Why no answer arrived: connection_refused, timeout, dns, tls, connection_reset, unreachable, protocol, not_in_rules, rate_limited, busy, not_probed, error"`
	Error      string  `json:"error,omitempty"`
}

// tunnelView is the tunnel's state as the database has it.
type tunnelView struct {
	tunnelID int64
	desired  store.DesiredIngress
	service  string
	agents   []store.Agent
	err      error
}

// viewTunnel reads the domain's tunnel: its id (through the tenant deployment), desired set and
// agents.
func (s *Service) viewTunnel(ctx context.Context, d store.Domain) tunnelView {
	var v tunnelView
	if d.TenantDeploymentID == nil {
		return v
	}
	td, err := s.store.GetTenantDeployment(ctx, *d.TenantDeploymentID)
	if err != nil {
		v.err = err
		return v
	}
	if td.TunnelID == nil {
		return v
	}
	v.tunnelID = *td.TunnelID
	if v.desired, err = s.store.GetDesiredIngress(ctx, v.tunnelID); err != nil {
		v.err = err
		return v
	}
	for _, r := range v.desired.Rules {
		if r.DomainID == d.ID && sameName(r.Hostname, d.ExternalDomain) {
			v.service = r.Service
		}
	}
	v.agents, v.err = s.store.TunnelAgents(ctx, v.tunnelID)
	return v
}

// tunnelPart judges whether the tunnel's agents route the domain.
func tunnelPart(d domainFacts, dom store.Domain, v tunnelView) (part, TunnelEvidence) {
	ev := TunnelEvidence{TunnelID: v.tunnelID, DesiredVersion: v.desired.Version, InDesired: v.service != "", Service: v.service,
		Agents: []AgentEvidence{}}
	p := part{name: PartTunnel, title: titleTunnel}
	switch {
	case v.err != nil:
		p.verdict, p.message = Unknown, msgTunnelUnreadable(v.err.Error())
		return p, ev
	case dom.TenantDeploymentID == nil:
		p.verdict, p.message, p.fix = Fail, msgNoDeployment(d.host), fixAssignDeployment
		return p, ev
	case v.tunnelID == 0:
		p.verdict, p.message, p.fix = Fail, msgNoTunnel(d.host), fixAssignTunnel
		return p, ev
	}
	if v.service == "" {
		reason := ingressProblemText(dom)
		if reason.IsZero() {
			reason = msgNotQualified(d.host)
		}
		p.verdict, p.message, p.fix = Fail, msgNotInTunnel(d.host, reason), fixNotInTunnel(dom)
		return p, ev
	}
	if len(v.agents) == 0 {
		p.verdict, p.message, p.fix = Fail, msgNoAgents, fixEnrolAgent
		return p, ev
	}
	var routing, missing, offline, nacked []string
	for _, a := range v.agents {
		e := AgentEvidence{ID: a.ID, Name: a.Name, Connected: a.Connected, LastSeenAt: a.LastSeenAt, AppliedVersion: a.AppliedVersion}
		e.HasRules = a.AppliedVersion != nil && dom.IngressVersion != nil && *a.AppliedVersion >= *dom.IngressVersion
		if msg := agentLastError(a); msg != "" {
			e.LastNACK = &NACK{Stage: lastApplyStage(a.Status), Error: msg}
			nacked = append(nacked, a.Name)
		}
		ev.Agents = append(ev.Agents, e)
		switch {
		case !a.Connected:
			offline = append(offline, a.Name)
		case e.HasRules:
			routing = append(routing, a.Name)
		default:
			missing = append(missing, a.Name)
		}
		p.details = append(p.details, agentDetail(e, v.desired.Version))
	}
	switch {
	case len(routing) == 0 && len(nacked) > 0:
		p.verdict, p.message, p.fix = Fail, msgTunnelNACK(d.host, nacked), fixNACK
	case len(routing) == 0 && len(missing) > 0:
		p.verdict, p.message, p.fix = Fail, msgTunnelNotApplied(d.host, missing), fixWaitAgents
	case len(routing) == 0:
		p.verdict, p.message, p.fix = Fail, msgTunnelOffline(offline), fixAgentsOffline
	case len(missing)+len(offline)+len(nacked) > 0:
		p.verdict, p.message, p.fix = Warn, msgTunnelPartial(d.host, routing, missing, offline, nacked), fixAgentsOffline
	default:
		p.verdict, p.message = OK, msgTunnelOK(d.host, routing, v.desired.Version)
	}
	return p, ev
}

// lastApplyStage reads the failing stage of the agent's last apply from its status report.
func lastApplyStage(status json.RawMessage) string {
	var st struct {
		LastApply *struct {
			OK    bool   `json:"ok"`
			Stage string `json:"stage"`
		} `json:"last_apply"`
	}
	if json.Unmarshal(status, &st) != nil || st.LastApply == nil || st.LastApply.OK {
		return ""
	}
	return st.LastApply.Stage
}

func agentDetail(e AgentEvidence, desired int64) i18n.Text {
	applied := "-"
	if e.AppliedVersion != nil {
		applied = itoa(*e.AppliedVersion)
	}
	state := i18n.T("conectado", "connected")
	if !e.Connected {
		state = i18n.T("desconectado", "disconnected")
	}
	rules := i18n.T("aplica las reglas del dominio", "applies the domain's rules")
	if !e.HasRules {
		rules = i18n.T("no aplica las reglas del dominio", "does not apply the domain's rules")
	}
	line := i18n.F("%s: %s, versión aplicada %s de %d, %s", "%s: %s, applied version %s of %d, %s", e.Name, state, applied, desired, rules)
	if e.LastNACK != nil {
		line = i18n.F("%s; último rechazo (%s): %s", "%s; last refusal (%s): %s", line, e.LastNACK.Stage, e.LastNACK.Error)
	}
	return line
}

// probeBackend asks every connected agent of the tunnel to probe the domain's service.
func (s *Service) probeBackend(ctx context.Context, d domainFacts, v tunnelView) []gateway.ProbeOutcome {
	if s.prober == nil || v.service == "" || v.tunnelID == 0 {
		return nil
	}
	return s.prober.Probe(ctx, v.tunnelID, protocol.ProbeRequest{URL: v.service, Hostname: d.host,
		TimeoutMS: int(s.cfg.ProbeTimeout / time.Millisecond)})
}

// backendPart judges the probes: the request must reach the backend from every tunnel host,
// since Cloudflare spreads visitors over all of the tunnel's connectors.
func (s *Service) backendPart(d domainFacts, v tunnelView, outcomes []gateway.ProbeOutcome) (part, BackendEvidence) {
	ev := BackendEvidence{URL: v.service, Host: d.host, Probes: []ProbeOutcome{}}
	p := part{name: PartBackend, title: titleBackend}
	switch {
	case s.prober == nil:
		p.verdict, p.message = Unknown, msgGatewayOff
		return p, ev
	case v.tunnelID == 0 || v.service == "":
		p.verdict, p.message = Unknown, msgNothingToProbe(d.host)
		return p, ev
	case len(v.agents) == 0:
		p.verdict, p.message, p.fix = Fail, msgNoAgents, fixEnrolAgent
		return p, ev
	}
	byAgent := map[int64]gateway.ProbeOutcome{}
	for _, o := range outcomes {
		byAgent[o.AgentID] = o
	}
	var good, slow, bad, unknown []string
	var badSample ProbeOutcome
	for _, a := range v.agents {
		o, probed := byAgent[a.ID]
		po := ProbeOutcome{Agent: a.Name, AgentID: a.ID}
		switch {
		case !probed:
			po.Verdict, po.Failure = Unknown, "not_probed"
		case o.Err != nil:
			po.Verdict, po.Failure, po.Error = Unknown, "error", o.Err.Error()
			if errors.Is(o.Err, gateway.ErrProbeRateLimited) {
				po.Failure = protocol.ProbeRateLimited
			}
		case o.Result.OK:
			po.Status, po.DurationMS = o.Result.Status, o.Result.DurationMS
			switch {
			case o.Result.Status >= 500:
				po.Verdict = Fail
			case o.Result.Status >= 400:
				po.Verdict = Warn
			case time.Duration(o.Result.DurationMS)*time.Millisecond > s.cfg.SlowBackend:
				po.Verdict = Warn
			default:
				po.Verdict = OK
			}
		default:
			po.DurationMS, po.Failure, po.Error = o.Result.DurationMS, o.Result.Failure, o.Result.Error
			po.Verdict = Fail
			if po.Failure == protocol.ProbeRateLimited || po.Failure == protocol.ProbeBusy {
				po.Verdict = Unknown
			}
		}
		ev.Probes = append(ev.Probes, po)
		p.details = append(p.details, probeDetail(po, a.Connected))
		switch po.Verdict {
		case OK:
			good = append(good, a.Name)
		case Warn:
			slow = append(slow, a.Name)
			if badSample.Agent == "" {
				badSample = po
			}
		case Fail:
			if len(bad) == 0 {
				badSample = po
			}
			bad = append(bad, a.Name)
		default:
			unknown = append(unknown, a.Name)
		}
	}
	switch {
	case len(bad) > 0:
		p.verdict, p.message, p.fix = Fail, msgBackendFails(d.host, badSample, len(bad), len(v.agents), v.service), fixBackend(badSample, v.service)
	case len(slow) > 0:
		p.verdict, p.message, p.fix = Warn, msgBackendSlow(badSample, s.cfg.SlowBackend), fixBackendSlow(badSample)
	case len(good) == 0:
		p.verdict, p.message = Unknown, msgBackendUnprobed(unknown)
	case len(unknown) > 0:
		p.verdict, p.message = Warn, msgBackendPartlyProbed(good, unknown)
	default:
		p.verdict, p.message = OK, msgBackendOK(d.host, good, v.service)
	}
	return p, ev
}

func probeDetail(po ProbeOutcome, connected bool) i18n.Text {
	switch {
	case po.Status != 0:
		return i18n.F("%s: HTTP %d en %d ms", "%s: HTTP %d in %d ms", po.Agent, po.Status, po.DurationMS)
	case po.Failure == "not_probed":
		return i18n.F("%s: %s", "%s: %s", po.Agent, msgNotProbed(connected))
	}
	return i18n.F("%s: %s (%s)", "%s: %s (%s)", po.Agent, failureText(po.Failure), po.Error)
}
