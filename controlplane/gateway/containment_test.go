package gateway_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

func ruleHosts(d protocol.Desired) []string {
	var out []string
	for _, r := range d.Rules {
		out = append(out, r.Hostname)
	}
	return out
}

// A NACK naming a rule is answered with a new version without it, on the same session: the
// tunnel never waits for a human because of one rule.
func TestNackNamingARuleIsAnsweredWithAVersionWithoutIt(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	bad := g.insert(t, "www.impulse-max.com", "impulse-max")
	g.insert(t, "www.techeels.io", "techeels")
	agent, _ := gatewaytest.Dial(t, g.addr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105",
		Token: g.token, Tunnel: "tcs-sajet-tunnel"})
	first := agent.Next(t, func(d protocol.Desired) protocol.Ack {
		return protocol.Ack{Nonce: d.Nonce, Version: d.Version, Stage: protocol.StageValidate,
			Error: "cloudflared: no", Rejected: []protocol.Rejection{{Hostname: "impulse-max.sajet.us", Reason: protocol.RejectCloudflared, Error: "cloudflared: no"}}}
	})
	if len(first.Rules) != 4 {
		t.Fatalf("first push %v", ruleHosts(first))
	}
	second := agent.Next(t, gatewaytest.ACK)
	if want := []string{"techeels.sajet.us", "www.techeels.io"}; second.Version <= first.Version || !slices.Equal(ruleHosts(second), want) {
		t.Fatalf("second push version %d %v, want a newer version with only %v", second.Version, ruleHosts(second), want)
	}
	d, _ := g.st.GetDomain(context.Background(), bad.ID)
	if !strings.Contains(d.IngressProblem().EN, "the tunnel agent refused the rule for impulse-max.sajet.us: cloudflared: no") {
		t.Errorf("refused domain's problem: %q", d.IngressProblem())
	}
}

// A base report that routes a customer's hostname gets a version without that domain; a later
// base without it brings the domain back.
func TestBaseReportsDecideCollisions(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	g.insert(t, "grafana.operator-internal.com", "grafana")
	g.insert(t, "www.techeels.io", "techeels")
	agent, _ := gatewaytest.Dial(t, g.addr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105",
		Token: g.token, Tunnel: "tcs-sajet-tunnel"})
	if first := agent.Next(t, gatewaytest.ACK); len(first.Rules) != 4 {
		t.Fatalf("first push %v", ruleHosts(first))
	}
	agent.Send(t, protocol.Base{SHA256: strings.Repeat("1", 64), Hostnames: []string{"grafana.operator-internal.com"}})
	if got := agent.Next(t, gatewaytest.ACK); !slices.Equal(ruleHosts(got), []string{"techeels.sajet.us", "www.techeels.io"}) {
		t.Fatalf("after the colliding base: %v", ruleHosts(got))
	}
	agent.Send(t, protocol.Base{SHA256: strings.Repeat("2", 64), Hostnames: []string{}})
	if got := agent.Next(t, gatewaytest.ACK); len(got.Rules) != 4 {
		t.Fatalf("after the base stopped routing grafana: %v", ruleHosts(got))
	}
	// The second report came within BaseInterval of the first: it waited its turn, so an agent
	// flipping between two base files cannot keep its tunnel's version churning.
	if n := gather(t, g.srv)[`sajet_gateway_delayed_reports_total{type="base"}`]; n != 1 {
		t.Errorf("delayed base reports: %v, want 1", n)
	}
}
