package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Server accepts agent connections (already TLS, from the listener given to Serve), authenticates
// them, and pushes each tunnel's desired ingress whenever it differs from what the agent applied.
//
// Push rules (DESIGN §6): only when desired ≠ acknowledged; never a version the agent NACKed
// (the error is stored and shown instead); one push at a time per session, and a change arriving
// meanwhile is pushed next with the newest state (coalesced).
type Server struct {
	Store        *store.Store
	Logger       *slog.Logger
	HelloTimeout time.Duration // default 10s
	AckTimeout   time.Duration // default 2m: the agent restarts cloudflared before answering
	// Failures slows down addresses that keep failing the handshake; nil → 10 per 2s refill.
	Failures *authlimit.Limiter
	// MaxHandshakes bounds connections that have not finished their handshake (each may hold a
	// goroutine and TLS buffers for up to HelloTimeout); more are closed at once. Default 1024.
	MaxHandshakes int

	mu       sync.Mutex
	sessions map[int64]*session           // by agent id: the newest session of an agent wins
	byTunnel map[int64]map[int64]*session // tunnel id → agent id → session, for notifications

	loader     desiredLoader
	metrics    metrics
	handshakes chan struct{} // semaphore of MaxHandshakes
}

type session struct {
	agent   store.Agent
	ys      *yamux.Session
	epoch   int64
	kick    chan struct{}
	applied int64 // last version the agent runs
	nacked  int64 // last version the agent refused; not pushed again
}

func (s *Server) failures() *authlimit.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Failures == nil {
		s.Failures = authlimit.New(10, 2*time.Second)
	}
	return s.Failures
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Serve accepts connections until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.loader.store = s.Store
	s.loader.start(ctx)
	if s.MaxHandshakes <= 0 {
		s.MaxHandshakes = 1024
	}
	s.handshakes = make(chan struct{}, s.MaxHandshakes)
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept agent connection: %w", err)
		}
		select {
		case s.handshakes <- struct{}{}:
			go s.handle(ctx, conn)
		default:
			// Too many connections are still saying hello (a flood, or a fleet reconnecting
			// faster than the database answers): refuse early; agents retry with backoff.
			s.metrics.refused("too_many_handshakes")
			conn.Close()
		}
	}
}

func yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.KeepAliveInterval = 15 * time.Second
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.StreamOpenTimeout = 15 * time.Second
	cfg.LogOutput = io.Discard
	return cfg
}

func (s *Server) handle(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	released := false
	release := func() {
		if !released {
			released = true
			<-s.handshakes
		}
	}
	defer release()
	helloTimeout := s.HelloTimeout
	if helloTimeout == 0 {
		helloTimeout = 10 * time.Second
	}
	ys, err := yamux.Server(conn, yamuxConfig())
	if err != nil {
		return
	}
	defer ys.Close()
	_ = conn.SetDeadline(time.Now().Add(helloTimeout))
	stream, err := ys.AcceptStream()
	if err != nil {
		return
	}
	addr := authlimit.Key(conn.RemoteAddr().String())
	if wait := s.failures().Blocked(addr, time.Now()); wait > 0 {
		s.metrics.refused(protocol.CodeRateLimited)
		_ = protocol.WriteMessage(stream, protocol.Error{Code: protocol.CodeRateLimited,
			Message: fmt.Sprintf("too many failed handshakes from this address; retry in %s", wait.Round(time.Second))})
		stream.Close()
		linger(ys)
		return
	}
	sess, err := s.handshake(ctx, stream, conn.RemoteAddr().String())
	stream.Close()
	if err != nil {
		s.metrics.refused(refusalCode(err))
		s.failures().Fail(addr, time.Now())
		s.logger().Warn("agent refused", "remote", conn.RemoteAddr().String(), "err", err)
		linger(ys)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	release()
	sess.ys = ys
	s.register(sess)
	defer s.unregister(sess)
	defer func() {
		// The session's ctx may be gone (shutdown); recording the end still matters.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.Store.AgentDisconnected(dctx, sess.agent.ID, sess.epoch); err != nil {
			s.logger().Warn("record agent disconnection", "agent", sess.agent.Name, "err", err)
		}
	}()
	s.logger().Info("agent connected", "agent", sess.agent.Name, "tunnel", sess.agent.TunnelName, "applied", sess.applied, "epoch", sess.epoch)
	go s.acceptAgentStreams(ctx, sess)

	for {
		select {
		case <-ctx.Done():
			return
		case <-ys.CloseChan():
			return
		case <-sess.kick:
			if err := s.push(ctx, sess); err != nil {
				s.logger().Warn("push failed; closing session", "agent", sess.agent.Name, "err", err)
				return
			}
		}
	}
}

// handshake reads hello, checks version and token, and answers welcome or error.
func (s *Server) handshake(ctx context.Context, stream net.Conn, remote string) (*session, error) {
	// refuse answers the agent with e and returns it as the handshake's error.
	refuse := func(e protocol.Error) (*session, error) {
		_ = protocol.WriteMessage(stream, e)
		return nil, &e
	}
	msg, err := protocol.ReadMessage(stream, 64<<10)
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return refuse(*perr)
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		return refuse(protocol.Error{Code: protocol.CodeBadRequest, Message: msg})
	}
	hello, ok := msg.(protocol.Hello)
	if !ok {
		return refuse(protocol.Error{Code: protocol.CodeBadRequest, Message: "the first message must be hello, not " + msg.MessageType()})
	}
	if err := protocol.CheckVersion(hello.ProtocolVersion); err != nil {
		if errors.As(err, &perr) {
			_ = protocol.WriteMessage(stream, *perr)
		}
		return nil, err
	}
	sum := sha256.Sum256([]byte(hello.Token))
	agent, err := s.Store.AgentByToken(ctx, sum[:])
	if errors.Is(err, store.ErrNotFound) {
		return refuse(protocol.Error{Code: protocol.CodeUnauthorized, Message: "unknown or revoked agent token"})
	}
	if err != nil {
		return nil, err
	}
	if agent.TunnelName != hello.Tunnel {
		return refuse(protocol.Error{Code: protocol.CodeUnknownTunnel,
			Message: fmt.Sprintf("this token belongs to tunnel %q, not %q", agent.TunnelName, hello.Tunnel)})
	}
	epoch, err := s.Store.AgentConnected(ctx, agent.ID, hello.Applied.Version, hello.Applied.SHA256, remote)
	if err != nil {
		return nil, err
	}
	if hello.Applied.Version > 0 {
		// What the agent runs counts as acknowledged: an apply it finished after losing its
		// session (or after a crash) has no other way to mark its domains configured.
		if _, err := s.Store.RecordAgentAck(ctx, agent.ID, store.AgentAck{Version: hello.Applied.Version, OK: true,
			SHA256: hello.Applied.SHA256, FromHello: true}); err != nil {
			return nil, err
		}
	}
	sess := &session{agent: agent, epoch: epoch, kick: make(chan struct{}, 1), applied: hello.Applied.Version}
	if err := protocol.WriteMessage(stream, protocol.Welcome{ProtocolVersion: protocol.ProtocolVersion,
		SessionEpoch: sess.epoch, ServerTime: time.Now().UTC()}); err != nil {
		return nil, err
	}
	sess.kick <- struct{}{} // resync: push if the applied version differs from desired
	return sess, nil
}

// linger keeps a refused session open briefly so the agent reads the error before the connection
// closes (closing at once can drop the frame in flight), and slows down guessing a little more.
func linger(ys *yamux.Session) {
	select {
	case <-ys.CloseChan():
	case <-time.After(time.Second):
	}
}

func (s *Server) register(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions == nil {
		s.sessions = map[int64]*session{}
		s.byTunnel = map[int64]map[int64]*session{}
	}
	if old := s.sessions[sess.agent.ID]; old != nil {
		old.ys.Close() // the newest session of an agent wins
	}
	s.sessions[sess.agent.ID] = sess
	if s.byTunnel[sess.agent.TunnelID] == nil {
		s.byTunnel[sess.agent.TunnelID] = map[int64]*session{}
	}
	s.byTunnel[sess.agent.TunnelID][sess.agent.ID] = sess
}

func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.agent.ID] == sess {
		delete(s.sessions, sess.agent.ID)
		delete(s.byTunnel[sess.agent.TunnelID], sess.agent.ID)
		if len(s.byTunnel[sess.agent.TunnelID]) == 0 {
			delete(s.byTunnel, sess.agent.TunnelID)
		}
	}
}

// Tunnel implements Changes: sessions of that tunnel re-check their desired state.
func (s *Server) Tunnel(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.byTunnel[id] {
		sess.poke()
	}
}

// All implements Changes: every session re-checks.
func (s *Server) All() {
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
	ackTimeout := s.AckTimeout
	if ackTimeout == 0 {
		ackTimeout = 2 * time.Minute
	}
	_ = stream.SetDeadline(time.Now().Add(ackTimeout))
	sent := time.Now()
	if err := protocol.WriteMessage(stream, msg); err != nil {
		s.metrics.observePush("error", time.Since(sent))
		return err
	}
	reply, err := protocol.ReadMessage(stream, 64<<10)
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
	if ack.OK {
		sess.applied = ack.Version
	} else {
		sess.nacked = ack.Version
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

// maxAgentFrame bounds a message an agent sends on a stream of its own: a status report (a few
// counters and an error text) or a base report (at most protocol.MaxBaseHostnames names).
const maxAgentFrame = 1 << 20

// acceptAgentStreams reads the streams the agent opens after the handshake: status and base
// reports.
func (s *Server) acceptAgentStreams(ctx context.Context, sess *session) {
	for {
		stream, err := sess.ys.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			defer stream.Close()
			_ = stream.SetDeadline(time.Now().Add(10 * time.Second))
			msg, err := protocol.ReadMessage(stream, maxAgentFrame)
			if err != nil {
				s.logger().Warn("refused a message from an agent", "agent", sess.agent.Name, "err", err)
				return
			}
			if b, ok := msg.(protocol.Base); ok {
				changed, err := s.Store.RecordAgentBase(ctx, sess.agent.ID, b.SHA256, b.Hostnames)
				if err != nil {
					s.logger().Warn("store agent base report", "agent", sess.agent.Name, "err", err)
				} else if changed {
					// RecordAgentBase gave the tunnel a new version (its NOTIFY reaches every
					// session), so a version refused because of the old base is never waited on.
					s.logger().Info("agent reported a new base file", "agent", sess.agent.Name, "sha256", b.SHA256,
						"hostnames", len(b.Hostnames))
				}
				return
			}
			st, ok := msg.(protocol.Status)
			if ok {
				s.metrics.init()
				s.metrics.statuses.Inc()
			}
			if !ok {
				s.logger().Warn("unexpected message from an agent", "agent", sess.agent.Name, "type", msg.MessageType())
				return
			}
			body, err := json.Marshal(st)
			if err != nil {
				return
			}
			if err := s.Store.RecordAgentStatus(ctx, sess.agent.ID, body); err != nil {
				s.logger().Warn("store agent status", "agent", sess.agent.Name, "err", err)
			}
		}()
	}
}

// refusalCode is the protocol error code a refused handshake answered with, for metrics.
func refusalCode(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr.Code
	}
	return "error" // the database or the connection, not the agent
}
