package agent

import (
	"context"
	"time"

	"github.com/jeturing/sajet-domains/agent/apply"
	"github.com/jeturing/sajet-domains/agent/link"
	"github.com/jeturing/sajet-domains/shared/ingress"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// rulesWait bounds how long a probe waits for the rules in force: the applier holds them during
// an apply (a cloudflared restart can take its restart timeout), and a probe must not hang on that.
const rulesWait = 2 * time.Second

// Probe implements link.Handler: it probes the backend of one managed rule the agent applies now
// (never the operator's own rules, never a URL that is not a rule's service) exactly as
// cloudflared reaches it (link.ProbeService). A probe asking for anything else is refused with
// protocol.ProbeNotInRules without any request being made.
func (a *Agent) Probe(ctx context.Context, req protocol.ProbeRequest) protocol.ProbeResult {
	rules, ok := a.rulesInForce(ctx)
	if !ok {
		return protocol.ProbeResult{URL: req.URL, Hostname: req.Hostname, Failure: protocol.ProbeBusy,
			Error: "the agent is applying a configuration; probe again in a moment"}
	}
	rule, ok := link.MatchRule(rules, req)
	if !ok {
		a.log.Warn("refused a probe of a service that is not in the rules in force", "hostname", req.Hostname, "url", req.URL)
		return link.NotInRules(req)
	}
	return link.ProbeService(ctx, rule)
}

// rulesInForce returns the managed rules of the applied state, read through the applier; false
// when an apply holds them longer than rulesWait (or ctx ends first).
func (a *Agent) rulesInForce(ctx context.Context) ([]ingress.Rule, bool) {
	got := make(chan apply.State, 1)
	go func() { got <- a.applier.Applied() }() // ends when the apply holding the state does
	wait := time.NewTimer(rulesWait)
	defer wait.Stop()
	select {
	case st := <-got:
		rules := make([]ingress.Rule, len(st.Rules))
		for i, r := range st.Rules {
			rules[i] = ingress.Rule{Hostname: r.Hostname, Path: r.Path, Service: r.Service, OriginRequest: r.OriginRequest}
		}
		return rules, true
	case <-wait.C:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}
