package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// acceptAgentStreams reads the streams the agent opens after the handshake: status and base
// reports, one message per stream, after which the agent closes its half.
//
// What an agent can make the control plane hold is bounded: at most MaxStreams streams are read at
// once (the loop takes a slot before accepting), at most MaxStreams more wait in yamux's backlog
// and yamux resets any beyond that, each buffers at most one yamux window (256 KiB) and one frame
// of at most protocol.MaxStatusFrameSize, and only one frame per session may be larger (a base
// report, up to protocol.MaxBaseFrameSize). A stream that does not follow the rules (a frame over
// the limits, a stall past ReportTimeout, more data after its message) leaves data we would have
// to buffer or drain, so it ends the whole session: one log line, and the agent reconnects. A
// complete message that is invalid or unexpected is refused (counted, logged at most once per
// logEvery) and the session goes on.
func (s *Server) acceptAgentStreams(ctx context.Context, sess *session) {
	for {
		select {
		case sess.slots <- struct{}{}:
		case <-sess.ys.CloseChan():
			return
		}
		stream, err := sess.ys.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer func() { <-sess.slots }()
			defer stream.Close()
			err := s.serveAgentStream(ctx, sess, stream)
			if err == nil || sess.ys.IsClosed() {
				return
			}
			s.metrics.streamRefused("protocol_violation")
			sess.log.warn(s.logger(), "violation", "closing the session of an agent that broke the stream rules",
				"agent", sess.agent.Name, "remote", sess.remote, "err", err)
			sess.ys.Close()
		}()
	}
}

// serveAgentStream reads and handles one report. An error is a violation of the stream rules.
func (s *Server) serveAgentStream(ctx context.Context, sess *session, stream *yamux.Stream) error {
	deadline := time.Now().Add(s.ReportTimeout)
	_ = stream.SetDeadline(deadline)
	var hdr [4]byte
	if _, err := io.ReadFull(stream, hdr[:]); err != nil {
		return fmt.Errorf("reading a report: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	limit := protocol.MaxStatusFrameSize
	switch {
	case size == 0:
		return protocol.ErrEmptyFrame
	case size > protocol.MaxBaseFrameSize:
		return &protocol.FrameTooLargeError{Size: int64(size), Max: protocol.MaxBaseFrameSize}
	case size > protocol.MaxStatusFrameSize:
		// Only a base report is this large: one at a time per session.
		wait := time.NewTimer(time.Until(deadline))
		defer wait.Stop()
		select {
		case sess.large <- struct{}{}:
			defer func() { <-sess.large }()
		case <-wait.C:
			return errors.New("another large report is still being read")
		case <-sess.ys.CloseChan():
			return nil
		}
		limit = protocol.MaxBaseFrameSize
	}
	frame := make([]byte, 4+int(size))
	copy(frame, hdr[:])
	if _, err := io.ReadFull(stream, frame[4:]); err != nil {
		return fmt.Errorf("reading a report of %d bytes: %w", size, err)
	}
	// One message per stream: the agent closes its half right after it.
	var one [1]byte
	if n, err := stream.Read(one[:]); n > 0 {
		return errors.New("more than one message on a stream")
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("waiting for the end of the stream after a report: %w", err)
	}

	msg, err := protocol.ReadMessage(bytes.NewReader(frame), limit)
	if err == nil {
		if _, isStatus := msg.(protocol.Status); isStatus && size > protocol.MaxStatusFrameSize {
			err = &protocol.FrameTooLargeError{Size: int64(size), Max: protocol.MaxStatusFrameSize}
		}
	}
	if err != nil {
		s.metrics.streamRefused("invalid")
		sess.log.warn(s.logger(), "invalid", "refused a message from an agent", "agent", sess.agent.Name, "err", err)
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch m := msg.(type) {
	case protocol.Base:
		s.storeBase(dctx, sess, m)
	case protocol.Status:
		s.storeStatus(dctx, sess, m)
	default:
		s.metrics.streamRefused("unexpected")
		sess.log.warn(s.logger(), "unexpected", "unexpected message from an agent", "agent", sess.agent.Name, "type", msg.MessageType())
	}
	return nil
}

func (s *Server) storeBase(ctx context.Context, sess *session, b protocol.Base) {
	sess.baseMu.Lock()
	defer sess.baseMu.Unlock()
	if wait := time.Until(sess.baseLast.Add(s.BaseInterval)); wait > 0 {
		s.metrics.reportsDelayed.WithLabelValues(protocol.TypeBase).Inc()
		select {
		case <-time.After(wait):
		case <-sess.ys.CloseChan():
			return
		}
	}
	defer func() { sess.baseLast = time.Now() }()
	changed, err := s.Store.RecordAgentBase(ctx, sess.agent.ID, b.SHA256, b.Hostnames)
	if err != nil {
		sess.log.warn(s.logger(), "base_store", "store agent base report", "agent", sess.agent.Name, "err", err)
	} else if changed {
		// When the new base changes which domains are left out (or refusals are offered
		// again), RecordAgentBase gave the tunnel a new version; its NOTIFY reaches every
		// session, so a version refused because of the old base is never waited on.
		s.logger().Info("agent reported a new base file", "agent", sess.agent.Name, "sha256", b.SHA256,
			"hostnames", len(b.Hostnames))
	}
}

func (s *Server) storeStatus(ctx context.Context, sess *session, st protocol.Status) {
	if !sess.status.take(time.Now(), s.StatusBurst, s.StatusInterval) {
		s.metrics.reportsDropped.WithLabelValues(protocol.TypeStatus).Inc()
		sess.log.warn(s.logger(), "status_rate", "dropping status reports over the rate limit", "agent", sess.agent.Name,
			"burst", s.StatusBurst, "interval", s.StatusInterval)
		return
	}
	s.metrics.statuses.Inc()
	body, err := json.Marshal(st)
	if err != nil {
		return
	}
	if err := s.Store.RecordAgentStatus(ctx, sess.agent.ID, body); err != nil {
		sess.log.warn(s.logger(), "status_store", "store agent status", "agent", sess.agent.Name, "err", err)
	}
}
