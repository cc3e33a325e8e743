package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// serveAgent answers every stream the gateway opens on ys: pushes are acknowledged, probes are
// answered by answer (nil: the probe is read and never answered).
func serveAgent(t *testing.T, ys *yamux.Session, answer func(protocol.ProbeRequest) protocol.Message) {
	t.Helper()
	go func() {
		for {
			st, err := ys.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				defer st.Close()
				_ = st.SetDeadline(time.Now().Add(30 * time.Second))
				m, err := protocol.ReadMessage(st, protocol.MaxFrameSize)
				if err != nil {
					return
				}
				switch m := m.(type) {
				case protocol.Desired:
					_ = protocol.WriteMessage(st, gatewaytest.ACK(m))
				case protocol.ProbeRequest:
					if answer == nil {
						<-ys.CloseChan()
						return
					}
					_ = protocol.WriteMessage(st, answer(m))
				}
			}()
		}
	}()
}

func connectAgent(t *testing.T, g *gw) *yamux.Session {
	t.Helper()
	agent, reply := gatewaytest.Dial(t, g.addr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105",
		Token: g.token, Tunnel: "tcs-sajet-tunnel", Build: "test"})
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", reply)
	}
	return agent.Session
}

var probeReq = protocol.ProbeRequest{URL: "http://10.10.10.105:8069", TimeoutMS: 1000, Hostname: "www.impulse-max.com"}

// A probe travels over the agent's existing session and comes back as the agent answered it.
func TestProbeAsksTheConnectedAgentsOfTheTunnel(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	if out := g.srv.Probe(t.Context(), g.tunnel.ID, probeReq); len(out) != 0 {
		t.Fatalf("with no agent connected: %+v", out)
	}
	ys := connectAgent(t, g)
	serveAgent(t, ys, func(r protocol.ProbeRequest) protocol.Message {
		return protocol.ProbeResult{URL: r.URL, Hostname: r.Hostname, OK: true, Status: 502, DurationMS: 7}
	})
	var out []gateway.ProbeOutcome
	testwait.Until(t, 15*time.Second, "the session is registered", func() bool {
		out = g.srv.Probe(t.Context(), g.tunnel.ID, probeReq)
		return len(out) == 1
	})
	o := out[0]
	if o.Err != nil || o.AgentID != g.agent.ID || o.Agent != "pct-105" || !o.Result.OK || o.Result.Status != 502 || o.Result.Hostname != "www.impulse-max.com" {
		t.Errorf("outcome %+v", o)
	}
	if out := g.srv.Probe(t.Context(), g.tunnel.ID+1000, probeReq); len(out) != 0 {
		t.Errorf("another tunnel's probe reached this agent: %+v", out)
	}
}

// An agent that answers with something else, or not at all, gives an error, not a result; the
// wait ends with the caller's deadline.
func TestAProbeWithoutAUsableAnswerIsAnError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer func(protocol.ProbeRequest) protocol.Message
	}{
		{"never answered", nil},
		{"answered with another message", func(protocol.ProbeRequest) protocol.Message {
			return protocol.Status{SentAt: time.Now().UTC()}
		}},
		{"answered for another URL", func(r protocol.ProbeRequest) protocol.Message {
			return protocol.ProbeResult{URL: "http://169.254.169.254", OK: true, Status: 200}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t)
			serveAgent(t, connectAgent(t, g), tc.answer)
			testwait.Until(t, 15*time.Second, "an outcome", func() bool {
				ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
				defer cancel()
				out := g.srv.Probe(ctx, g.tunnel.ID, probeReq)
				if len(out) == 0 {
					return false
				}
				if out[0].Err == nil {
					t.Fatalf("outcome %+v, want an error", out[0])
				}
				return true
			})
		})
	}
}

// This replica's budget per agent holds: probes beyond MaxProbes in flight or beyond the burst are
// not sent.
func TestProbesPerAgentAreBounded(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(s *gateway.Server) { s.MaxProbes, s.ProbeBurst, s.ProbeInterval = 1, 2, time.Hour })
	release := make(chan struct{})
	asked := make(chan struct{}, 8)
	serveAgent(t, connectAgent(t, g), func(r protocol.ProbeRequest) protocol.Message {
		asked <- struct{}{}
		<-release
		return protocol.ProbeResult{URL: r.URL, OK: true, Status: 200}
	})
	// The first probe that finds the session (a probe of no session spends nothing) is held by
	// the agent.
	first := make(chan []gateway.ProbeOutcome, 1)
	go func() {
		for {
			if out := g.srv.Probe(context.Background(), g.tunnel.ID, probeReq); len(out) > 0 {
				first <- out
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	select {
	case <-asked:
	case <-time.After(15 * time.Second):
		t.Fatal("the agent never connected")
	}
	out := g.srv.Probe(t.Context(), g.tunnel.ID, probeReq)
	if len(out) != 1 || !errors.Is(out[0].Err, gateway.ErrProbeRateLimited) {
		t.Errorf("a probe while one runs: %+v, want rate limited", out)
	}
	close(release)
	if out := <-first; len(out) != 1 || out[0].Err != nil || !out[0].Result.OK {
		t.Errorf("the first probe: %+v", out)
	}
	if out := g.srv.Probe(t.Context(), g.tunnel.ID, probeReq); len(out) != 1 || out[0].Err != nil {
		t.Errorf("the second token: %+v", out)
	}
	if out := g.srv.Probe(t.Context(), g.tunnel.ID, probeReq); len(out) != 1 || !errors.Is(out[0].Err, gateway.ErrProbeRateLimited) {
		t.Errorf("over the burst: %+v, want rate limited", out)
	}
	if n := len(asked); n != 1 {
		t.Errorf("%d probes over the budget reached the agent", n)
	}
}
