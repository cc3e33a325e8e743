package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Defaults of the Server's limits; each is documented on its field.
const (
	DefaultHelloTimeout            = 5 * time.Second
	DefaultMaxHandshakes           = 1024
	DefaultMaxHandshakesPerAddress = 8
	DefaultMaxStreams              = 16
	DefaultReportTimeout           = 10 * time.Second
	DefaultStatusBurst             = 5
	DefaultStatusInterval          = time.Second
	DefaultBaseInterval            = 5 * time.Second
	DefaultTokenReloadInterval     = time.Minute
	DefaultMaxProbes               = 4
	DefaultProbeBurst              = 10
	DefaultProbeInterval           = time.Second
)

// Server accepts agent connections (already TLS, from the listener given to Serve), authenticates
// them, and pushes each tunnel's desired ingress whenever it differs from what the agent applied.
//
// Push rules (docs/ARCHITECTURE.md §4): only when desired ≠ acknowledged; never a version the agent NACKed
// (the error is stored and shown instead); one push at a time per session, and a change arriving
// meanwhile is pushed next with the newest state (coalesced).
//
// Until a peer has authenticated it costs the gateway one goroutine, its TLS state and at most
// protocol.MaxHelloFrameSize of hello: the hello is read from the TLS connection itself and yamux
// starts only after Welcome (protocol 3). Connections still in that phase are bounded in total
// (MaxHandshakes) and per address (MaxHandshakesPerAddress, keyed like the bad-token limiter: the
// IPv4 address or the IPv6 /64), and each has HelloTimeout to finish. After Welcome, the agent's
// session has a bounded yamux backlog, at most MaxStreams streams of its own in flight and
// per-message frame limits (see streams.go).
type Server struct {
	Store  *store.Store
	Logger *slog.Logger
	// HelloTimeout is the handshake deadline: from accepting the connection to having read the
	// hello, TLS handshake included. A peer that has not said hello by then is disconnected.
	// Default 5s.
	HelloTimeout time.Duration
	AckTimeout   time.Duration // default 2m: the agent restarts cloudflared before answering
	// Failures counts unknown and malformed agent tokens per address; an address with an empty
	// bucket gets rate_limited for tokens that are not in the set of valid tokens, without a
	// database lookup. A valid token is never refused by it. nil → 10 per 2s refill.
	Failures *authlimit.Limiter
	// MaxHandshakes bounds connections that have not finished their handshake (each holds a
	// goroutine and TLS buffers for up to HelloTimeout); more are closed at once. Default 1024.
	MaxHandshakes int
	// MaxHandshakesPerAddress bounds them per address (IPv4 address or IPv6 /64), so one address
	// cannot take every handshake slot and lock every agent out. Default 8.
	MaxHandshakesPerAddress int
	// MaxStreams bounds the streams an agent has open towards the control plane (status and base
	// reports, one message each) that are being read; it is also the yamux accept backlog, and
	// streams beyond both are reset by yamux. Default 16.
	MaxStreams int
	// ReportTimeout bounds reading one report on a stream the agent opened, from its first byte to
	// the agent closing its half; a stream that takes longer ends the session. Default 10s.
	ReportTimeout time.Duration
	// StatusBurst and StatusInterval rate-limit the status reports stored per session: a burst,
	// then one per interval; reports over it are dropped (the next one carries the newer state).
	// Defaults 5 and 1s.
	StatusBurst    int
	StatusInterval time.Duration
	// BaseInterval spaces the base reports stored per session: a new base file gives the tunnel
	// a new version (a push to every agent of it), so an agent alternating two base files could
	// otherwise keep its tunnel busy. A report arriving sooner waits. Default 5s.
	BaseInterval time.Duration
	// TokenReloadInterval is how often the set of valid agent tokens is reloaded even without a
	// notification on store.AgentChannel (notifications are lost while the listener reconnects).
	// Default 1m.
	TokenReloadInterval time.Duration
	// MaxProbes, ProbeBurst and ProbeInterval bound the backend probes this replica asks of one
	// agent (see Probe): MaxProbes at once, ProbeBurst then one per ProbeInterval; a probe over
	// the budget is not sent. Defaults 4, 10 and 1s.
	MaxProbes     int
	ProbeBurst    int
	ProbeInterval time.Duration

	mu       sync.Mutex
	sessions map[int64]*session           // by agent id: the newest session of an agent wins
	byTunnel map[int64]map[int64]*session // tunnel id → agent id → session, for notifications

	serving  atomic.Bool // Serve is accepting connections (Ready)
	initOnce sync.Once
	loader   desiredLoader
	metrics  metrics
	tokens   tokenSet

	hsMu      sync.Mutex
	hsTotal   int            // connections in their handshake
	hsPerAddr map[string]int // the same, by authlimit.Key

	hsLog logThrottle // warnings about connections that never authenticated
}

type session struct {
	agent     store.Agent
	tokenHash [32]byte
	authAt    time.Time // when the token lookup that accepted this session started
	remote    string
	ys        *yamux.Session
	epoch     int64
	kick      chan struct{}
	applied   int64 // last version the agent runs
	nacked    int64 // last version the agent refused; not pushed again

	slots    chan struct{} // agent-opened streams being read: MaxStreams
	large    chan struct{} // one frame over protocol.MaxStatusFrameSize (a base report) at a time
	baseMu   sync.Mutex    // base reports are stored one at a time
	baseLast time.Time     // when the last base report was stored (under baseMu)
	status   bucket        // status reports stored
	log      logThrottle
	ending   sync.Once

	probeSlots chan struct{} // probes in flight on this session: MaxProbes
	probeRate  bucket        // probes asked of this agent
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

// init fills in the defaults once.
func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.HelloTimeout <= 0 {
			s.HelloTimeout = DefaultHelloTimeout
		}
		if s.MaxHandshakes <= 0 {
			s.MaxHandshakes = DefaultMaxHandshakes
		}
		if s.MaxHandshakesPerAddress <= 0 {
			s.MaxHandshakesPerAddress = DefaultMaxHandshakesPerAddress
		}
		if s.MaxStreams <= 0 {
			s.MaxStreams = DefaultMaxStreams
		}
		if s.ReportTimeout <= 0 {
			s.ReportTimeout = DefaultReportTimeout
		}
		if s.StatusBurst <= 0 {
			s.StatusBurst = DefaultStatusBurst
		}
		if s.StatusInterval <= 0 {
			s.StatusInterval = DefaultStatusInterval
		}
		if s.BaseInterval <= 0 {
			s.BaseInterval = DefaultBaseInterval
		}
		if s.TokenReloadInterval <= 0 {
			s.TokenReloadInterval = DefaultTokenReloadInterval
		}
		if s.AckTimeout <= 0 {
			s.AckTimeout = 2 * time.Minute
		}
		if s.MaxProbes <= 0 {
			s.MaxProbes = DefaultMaxProbes
		}
		if s.ProbeBurst <= 0 {
			s.ProbeBurst = DefaultProbeBurst
		}
		if s.ProbeInterval <= 0 {
			s.ProbeInterval = DefaultProbeInterval
		}
		s.hsPerAddr = map[string]int{}
		s.tokens.reload = make(chan struct{}, 1)
		s.metrics.init()
	})
}

// Serve accepts connections until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.init()
	s.loader.store = s.Store
	s.loader.start(ctx)
	// The first set of valid tokens before the first connection, so a valid token is never
	// mistaken for an unknown one at start (if the database is down, the set fills in later).
	s.reloadTokens(ctx)
	go s.runTokens(ctx)
	go func() { <-ctx.Done(); ln.Close() }()
	s.serving.Store(true)
	defer s.serving.Store(false)
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
		key := authlimit.Key(conn.RemoteAddr().String())
		if code := s.admit(key); code != "" {
			// A flood, or a fleet reconnecting faster than the database answers: refuse before
			// the TLS handshake; agents retry with backoff.
			s.metrics.refused(code)
			conn.Close()
			continue
		}
		go s.handle(ctx, conn, key)
	}
}

// admit takes a handshake slot for a connection from key, or returns the refusal code.
func (s *Server) admit(key string) string {
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	switch {
	case s.hsTotal >= s.MaxHandshakes:
		return "too_many_handshakes"
	case s.hsPerAddr[key] >= s.MaxHandshakesPerAddress:
		return "too_many_handshakes_from_address"
	}
	s.hsTotal++
	s.hsPerAddr[key]++
	return ""
}

func (s *Server) release(key string) {
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	s.hsTotal--
	if s.hsPerAddr[key]--; s.hsPerAddr[key] <= 0 {
		delete(s.hsPerAddr, key)
	}
}

func (s *Server) pendingHandshakes() int {
	s.hsMu.Lock()
	defer s.hsMu.Unlock()
	return s.hsTotal
}

// sessionConfig is yamux's configuration for an authenticated session.
func (s *Server) sessionConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	// Streams the agent opened that wait for the accept loop; beyond this yamux resets them.
	cfg.AcceptBacklog = s.MaxStreams
	cfg.KeepAliveInterval = 15 * time.Second
	cfg.ConnectionWriteTimeout = 10 * time.Second
	cfg.StreamOpenTimeout = 15 * time.Second
	// A stream we closed whose other half the agent never closes is reset after this.
	cfg.StreamCloseTimeout = 30 * time.Second
	cfg.LogOutput = io.Discard
	return cfg
}

func (s *Server) handle(ctx context.Context, conn net.Conn, key string) {
	defer conn.Close()
	admitted := true
	release := func() {
		if admitted {
			admitted = false
			s.release(key)
		}
	}
	defer release()
	remote := conn.RemoteAddr().String()
	_ = conn.SetDeadline(time.Now().Add(s.HelloTimeout))
	sess, err := s.handshake(ctx, conn, key, remote)
	if err != nil {
		s.refusedHandshake(conn, remote, err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	release()
	ys, err := yamux.Server(conn, s.sessionConfig())
	if err != nil {
		return
	}
	defer ys.Close()
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
	s.logger().Info("agent connected", "agent", sess.agent.Name, "tunnel", sess.agent.TunnelName, "applied", sess.applied,
		"epoch", sess.epoch, "remote", remote)
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

// endSession tells the agent why its session ends (e, on a stream of its own, which the agent
// logs; see protocol.Error.Retryable for how fast it comes back) and closes the session.
func (s *Server) endSession(sess *session, e protocol.Error) {
	sess.ending.Do(func() {
		go func() {
			defer sess.ys.Close()
			st, err := sess.ys.OpenStream()
			if err != nil {
				return
			}
			_ = st.SetDeadline(time.Now().Add(2 * time.Second))
			if protocol.WriteMessage(st, e) == nil {
				_ = st.Close()
				// The agent closes the session once it has read the error.
				select {
				case <-sess.ys.CloseChan():
				case <-time.After(2 * time.Second):
				}
			}
		}()
	})
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
	// A token revoked or rotated after this session's lookup started, whose reload finished
	// before this registration, ends the session now (a later reload sees it registered).
	if !s.tokens.stillValid(sess) {
		s.revoked(sess)
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
