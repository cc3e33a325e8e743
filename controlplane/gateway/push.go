// Pushing a tunnel's desired state to its agents: notifications poke the sessions of a tunnel,
// and each session pushes when the agent does not run the desired version (docs/ARCHITECTURE.md §4).

package gateway

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Tunnel implements Changes: sessions of that tunnel re-check their desired state.
func (s *Server) Tunnel(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.byTunnel[id] {
		sess.poke()
	}
}

// All implements Changes: every session re-checks, and the set of valid agent tokens is reloaded
// (this is also the periodic reconcile, so a lost agent notification costs at most one interval).
func (s *Server) All() {
	s.tokens.poke()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		sess.poke()
	}
}

func (sess *session) poke() {
	select {
	case sess.kick <- struct{}{}:
	default: // a push is already due: coalesced
	}
}

// push sends the tunnel's desired state if the agent does not run it and has not refused it.
func (s *Server) push(ctx context.Context, sess *session) error {
	d, err := s.loader.get(ctx, sess.agent.TunnelID)
	if err != nil {
		return err
	}
	if d.Version == sess.applied || d.Version == sess.nacked {
		return nil
	}
	msg := protocol.Desired{Version: d.Version, Nonce: protocol.NewNonce(), IssuedAt: time.Now().UTC(), Rules: make([]protocol.Rule, 0, len(d.Rules))}
	for _, r := range d.Rules {
		msg.Rules = append(msg.Rules, protocol.Rule{Hostname: r.Hostname, Service: r.Service})
	}
	stream, err := sess.ys.OpenStream()
	if err != nil {
		return err
	}
	defer stream.Close()
	_ = stream.SetDeadline(time.Now().Add(s.AckTimeout))
	sent := time.Now()
	if err := protocol.WriteMessage(stream, msg); err != nil {
		s.metrics.observePush("error", time.Since(sent))
		return err
	}
	reply, err := protocol.ReadMessage(stream, protocol.MaxAckFrameSize)
	if err != nil {
		s.metrics.observePush("error", time.Since(sent))
		return err
	}
	ack, ok := reply.(protocol.Ack)
	if !ok || ack.Nonce != msg.Nonce || ack.Version != msg.Version {
		s.metrics.observePush("error", time.Since(sent))
		return fmt.Errorf("unexpected answer to desired version %d", msg.Version)
	}
	if ack.OK {
		s.metrics.observePush("ack", time.Since(sent))
	} else {
		s.metrics.observePush("nack", time.Since(sent))
	}
	// The agent says which version is in force after this push: the pushed one, the previous
	// one on a NACK, or a newer one when the push was stale.
	sess.applied = ack.AppliedVersion
	if !ack.OK {
		sess.nacked = ack.Version
	}
	if ack.DurationMS > 0 || ack.Restarted {
		s.metrics.apply.WithLabelValues(strconv.FormatBool(ack.Restarted)).Observe(float64(ack.DurationMS) / 1000)
	}
	rec := store.AgentAck{Version: ack.Version, OK: ack.OK, Stage: ack.Stage, Error: ack.Error, SHA256: ack.SHA256}
	for _, r := range ack.Rejected {
		rec.Rejected = append(rec.Rejected, store.RejectedRule{Hostname: r.Hostname, Reason: r.Reason, Error: r.Error})
	}
	if !ack.OK {
		s.logger().Warn("agent refused a version", "agent", sess.agent.Name, "version", ack.Version,
			"stage", ack.Stage, "err", ack.Error, "rules_refused", len(ack.Rejected))
	}
	_, err = s.Store.RecordAgentAck(ctx, sess.agent.ID, rec)
	return err
}
