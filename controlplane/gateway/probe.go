// Backend probes for diagnostics: the control plane asks the agents of a tunnel, over the
// sessions they already hold, whether their host reaches a tenant's backend (shared/protocol
// ProbeRequest → ProbeResult, one stream per probe).

package gateway

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// ProbeOutcome is one agent's answer to a probe. Err is set when no usable answer came back (the
// session ended, the agent did not answer in time, the probe was over this replica's budget for
// the agent: ErrProbeRateLimited); otherwise Result is the agent's answer, whose Failure says
// why the backend was not reached, or ProbeNotInRules when the agent refused.
type ProbeOutcome struct {
	AgentID int64
	Agent   string
	Result  protocol.ProbeResult
	Err     error
}

// ErrProbeRateLimited is a probe over this replica's budget for one agent (MaxProbes in flight,
// ProbeBurst then one per ProbeInterval): it was not sent.
var ErrProbeRateLimited = errors.New("too many probes asked of this agent; retry in a few seconds")

// probeMargin is how much longer than the probe's own timeout the control plane waits for the
// answer: the agent's rules lookup and the answer's trip back.
const probeMargin = 3 * time.Second

// Probe asks every agent of tunnelID connected to this replica to probe req (its own stream on
// each session, at once) and returns their answers by agent id. Agents of the tunnel connected
// to another replica, or not at all, are not in the result: the caller knows the tunnel's agents
// from the database and reports those as unreached. It returns within req's timeout plus a few
// seconds, or when ctx ends.
func (s *Server) Probe(ctx context.Context, tunnelID int64, req protocol.ProbeRequest) []ProbeOutcome {
	s.init()
	if err := req.Validate(); err != nil {
		return nil
	}
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.byTunnel[tunnelID]))
	for _, sess := range s.byTunnel[tunnelID] {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	out := make([]ProbeOutcome, len(sessions))
	var wg sync.WaitGroup
	for i, sess := range sessions {
		wg.Go(func() {
			out[i] = ProbeOutcome{AgentID: sess.agent.ID, Agent: sess.agent.Name}
			out[i].Result, out[i].Err = s.probeOne(ctx, sess, req)
			s.metrics.probes.WithLabelValues(probeResultLabel(out[i])).Inc()
		})
	}
	wg.Wait()
	sort.Slice(out, func(a, b int) bool { return out[a].AgentID < out[b].AgentID })
	return out
}

func probeResultLabel(o ProbeOutcome) string {
	switch {
	case errors.Is(o.Err, ErrProbeRateLimited):
		return "rate_limited"
	case o.Err != nil:
		return "error"
	case o.Result.OK:
		return "answered"
	case o.Result.Failure == protocol.ProbeNotInRules || o.Result.Failure == protocol.ProbeRateLimited:
		return "refused"
	}
	return "failed"
}

// probeOne runs one probe on one session within the agent's budget on this replica.
func (s *Server) probeOne(ctx context.Context, sess *session, req protocol.ProbeRequest) (protocol.ProbeResult, error) {
	select {
	case sess.probeSlots <- struct{}{}:
		defer func() { <-sess.probeSlots }()
	default:
		return protocol.ProbeResult{}, ErrProbeRateLimited
	}
	if !sess.probeRate.take(time.Now(), s.ProbeBurst, s.ProbeInterval) {
		return protocol.ProbeResult{}, ErrProbeRateLimited
	}
	deadline := time.Now().Add(time.Duration(req.TimeoutMS)*time.Millisecond + probeMargin)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stream, err := sess.ys.OpenStream()
	if err != nil {
		return protocol.ProbeResult{}, fmt.Errorf("open a stream to agent %s: %w", sess.agent.Name, err)
	}
	defer stream.Close()
	_ = stream.SetDeadline(deadline)
	// The stream's deadline bounds the exchange; ctx ending early (the request was cancelled)
	// closes the stream so the read returns.
	stop := context.AfterFunc(ctx, func() { stream.Close() })
	defer stop()
	if err := protocol.WriteMessage(stream, req); err != nil {
		return protocol.ProbeResult{}, fmt.Errorf("send the probe to agent %s: %w", sess.agent.Name, err)
	}
	reply, err := protocol.ReadMessage(stream, protocol.MaxProbeResultFrameSize)
	if err != nil {
		if isTimeout(err) {
			return protocol.ProbeResult{}, fmt.Errorf("agent %s did not answer the probe within %s", sess.agent.Name,
				time.Duration(req.TimeoutMS)*time.Millisecond+probeMargin)
		}
		return protocol.ProbeResult{}, fmt.Errorf("read the answer of agent %s: %w", sess.agent.Name, err)
	}
	res, ok := reply.(protocol.ProbeResult)
	if !ok || res.URL != req.URL {
		return protocol.ProbeResult{}, fmt.Errorf("agent %s answered a probe with %s", sess.agent.Name, reply.MessageType())
	}
	return res, nil
}
