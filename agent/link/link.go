// Package link is the agent's connection to the control plane (docs/ARCHITECTURE.md §4): TLS dial, hello and
// welcome as frames on the TLS connection itself (protocol 3), then a yamux client session on it:
// pushes arrive on streams the control plane opens, each answered on its own stream, and reports
// go out on streams of their own, one message each. It redials with capped exponential backoff and
// jitter; yamux keepalive detects a peer that stopped answering. An Error the control plane sends
// during the session (the agent was revoked, its token rotated) ends the session like a refused
// hello: logged, and not retried before the backoff cap unless the error is retryable.
package link

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/internal/backoff"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Handler does the agent's side of the work the control plane asks for.
type Handler interface {
	// Hello returns the hello to send (the applied state changes between sessions).
	Hello() protocol.Hello
	// Desired applies (or acknowledges) one push and returns its ack. It may block for the
	// whole apply; ctx ends when the session does.
	Desired(ctx context.Context, d protocol.Desired) protocol.Ack
	// Status is the periodic report.
	Status() protocol.Status
	// Base reports the operator's base file: sent after welcome and again after BaseChanged
	// whenever its hash differs from what this session last sent.
	Base() protocol.Base
	// Probe answers a probe of a backend (see probe.go): only a service of a managed rule in
	// force (MatchRule; NotInRules otherwise), sent with ProbeService. ctx carries the
	// request's timeout; the link has already applied the agent's probe budget.
	Probe(ctx context.Context, req protocol.ProbeRequest) protocol.ProbeResult
}

// Config of a Link.
type Config struct {
	Addr      string
	TLS       *tls.Config
	Keepalive time.Duration // yamux keepalive; default 15s
	// StatusInterval between status reports; default 15s.
	StatusInterval time.Duration
	// Backoff bounds for redialling; defaults 1s and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Probe budget: MaxProbes at once, ProbeBurst then one per ProbeInterval; defaults
	// DefaultMaxProbes, DefaultProbeBurst, DefaultProbeInterval.
	MaxProbes     int
	ProbeBurst    int
	ProbeInterval time.Duration
	Logger        *slog.Logger
}

// State is the connection as /status shows it.
type State struct {
	Connected  bool      `json:"connected"`
	Endpoint   string    `json:"endpoint"`
	Epoch      int64     `json:"epoch"`
	Since      time.Time `json:"since,omitzero"`
	RTTMS      float64   `json:"rtt_ms"`
	Reconnects int64     `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
}

// Link keeps one session to the control plane alive.
type Link struct {
	cfg Config
	h   Handler

	mu    sync.Mutex
	state State

	baseKick chan struct{}
	probes   *probeGate
}

// New returns a Link; Run starts it.
func New(cfg Config, h Handler) *Link {
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 15 * time.Second
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 15 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxProbes <= 0 {
		cfg.MaxProbes = DefaultMaxProbes
	}
	if cfg.ProbeBurst <= 0 {
		cfg.ProbeBurst = DefaultProbeBurst
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	return &Link{cfg: cfg, h: h, state: State{Endpoint: cfg.Addr}, baseKick: make(chan struct{}, 1),
		probes: newProbeGate(cfg.MaxProbes, cfg.ProbeBurst, cfg.ProbeInterval)}
}

// BaseChanged tells the link that the base file may have changed; the session reports it again
// if its hash differs from the last report.
func (l *Link) BaseChanged() {
	select {
	case l.baseKick <- struct{}{}:
	default:
	}
}

// State returns the connection state.
func (l *Link) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

func (l *Link) update(f func(*State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.state)
}

// Run connects and reconnects until ctx ends.
func (l *Link) Run(ctx context.Context) {
	retry := backoff.New(l.cfg.MinBackoff, l.cfg.MaxBackoff)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		start := time.Now()
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		l.update(func(s *State) {
			s.Connected = false
			s.LastError = err.Error()
			if attempt > 0 || !s.Since.IsZero() {
				s.Reconnects++
			}
		})
		// A session that lived a while resets the backoff: the next failure is a new incident.
		if time.Since(start) > l.cfg.MaxBackoff {
			retry.Reset()
		}
		var perr *protocol.Error
		if errors.As(err, &perr) && !perr.Retryable() {
			// An operator must act (token, tunnel, upgrade): retry at the cap, not in a loop.
			retry.Max()
			l.cfg.Logger.Error("control plane refused the agent", "code", perr.Code, "err", perr.Message)
		} else {
			l.cfg.Logger.Warn("control plane connection lost; redialling", "in", retry.Peek(), "err", err)
		}
		// The jitter spreads a fleet's reconnects after a control-plane restart.
		if !backoff.Sleep(ctx, retry.Next()) {
			return
		}
	}
}

func (l *Link) yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = true
	c.KeepAliveInterval = l.cfg.Keepalive
	// A ping waits at most the write timeout for its answer, so a silent peer is noticed within
	// keepalive + write timeout.
	c.ConnectionWriteTimeout = min(10*time.Second, l.cfg.Keepalive)
	c.StreamOpenTimeout = 15 * time.Second
	c.LogOutput = io.Discard
	return c
}

// session runs one connection until it fails.
func (l *Link) session(ctx context.Context) error {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: l.cfg.Keepalive}
	tlsDialer := &tls.Dialer{NetDialer: dialer, Config: l.cfg.TLS}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := tlsDialer.DialContext(dctx, "tcp", l.cfg.Addr)
	cancel()
	if err != nil {
		return fmt.Errorf("dial %s: %w", l.cfg.Addr, err)
	}
	welcome, err := l.handshake(conn)
	if err != nil {
		conn.Close()
		return err
	}
	ys, err := yamux.Client(conn, l.yamuxConfig())
	if err != nil {
		conn.Close()
		return err
	}
	defer ys.Close()
	l.update(func(s *State) {
		s.Connected, s.Epoch, s.Since, s.LastError = true, welcome.SessionEpoch, time.Now().UTC(), ""
	})
	l.cfg.Logger.Info("connected to the control plane", "endpoint", l.cfg.Addr, "epoch", welcome.SessionEpoch)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-sctx.Done():
			ys.Close()
		case <-ys.CloseChan():
		}
	}()
	go l.statusLoop(sctx, ys)
	go l.baseLoop(sctx, ys)
	// ended is the Error the control plane ended the session with, if it did.
	var ended atomic.Pointer[protocol.Error]
	endWith := func(e protocol.Error) {
		ended.CompareAndSwap(nil, &e)
		stop()
	}
	for {
		stream, err := ys.AcceptStreamWithContext(sctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if e := ended.Load(); e != nil {
				return e
			}
			if errors.Is(err, yamux.ErrKeepAliveTimeout) {
				return errors.New("control plane stopped answering (keepalive timeout)")
			}
			return fmt.Errorf("session ended: %w", err)
		}
		go l.serveStream(sctx, stream, endWith)
	}
}

// baseLoop reports the base file at the start of the session and whenever it changes.
func (l *Link) baseLoop(ctx context.Context, ys *yamux.Session) {
	sent := "-" // never a hash: the first report always goes
	for {
		if b := l.h.Base(); b.SHA256 != sent {
			if err := l.send(ys, b); err != nil {
				if ctx.Err() == nil {
					l.cfg.Logger.Debug("base report failed", "err", err)
				}
			} else {
				sent = b.SHA256
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-l.baseKick:
		}
	}
}

// handshake sends the hello and reads the answer on the TLS connection itself, before yamux
// starts (protocol 3), within 10 s.
func (l *Link) handshake(conn net.Conn) (protocol.Welcome, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := protocol.WriteMessage(conn, l.h.Hello()); err != nil {
		return protocol.Welcome{}, fmt.Errorf("send hello: %w", err)
	}
	reply, err := protocol.ReadMessage(conn, protocol.MaxHandshakeReplySize)
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &ne) && ne.Timeout()) {
		return protocol.Welcome{}, fmt.Errorf("read welcome: the control plane did not answer the hello "+
			"(busy, or older than protocol %d, which never answers one: then upgrade sajet-controlplane): %w", protocol.ProtocolVersion, err)
	}
	if err != nil {
		return protocol.Welcome{}, fmt.Errorf("read welcome: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	switch m := reply.(type) {
	case protocol.Welcome:
		return m, nil
	case protocol.Error:
		return protocol.Welcome{}, &m
	default:
		return protocol.Welcome{}, fmt.Errorf("control plane answered hello with %s", m.MessageType())
	}
}

// serveStream answers one request the control plane opened a stream for; an Error on it ends the
// session (endWith). Any error closes the stream (yamux#142: a stream left open after a failed
// write can hang the peer's read).
func (l *Link) serveStream(ctx context.Context, stream *yamux.Stream, endWith func(protocol.Error)) {
	defer stream.Close()
	_ = stream.SetReadDeadline(time.Now().Add(30 * time.Second))
	msg, err := protocol.ReadMessage(stream, protocol.MaxFrameSize)
	if err != nil {
		l.cfg.Logger.Warn("refused a message from the control plane", "err", err)
		return
	}
	_ = stream.SetReadDeadline(time.Time{})
	var reply protocol.Message
	switch m := msg.(type) {
	case protocol.Desired:
		reply = l.h.Desired(ctx, m)
	case protocol.Error:
		endWith(m)
		return
	case protocol.ProbeRequest:
		reply = l.probe(ctx, m)
	default:
		l.cfg.Logger.Warn("unexpected message from the control plane", "type", m.MessageType())
		return
	}
	_ = stream.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := protocol.WriteMessage(stream, reply); err != nil {
		l.cfg.Logger.Warn("answer to the control plane failed", "type", reply.MessageType(), "err", err)
	}
}

// statusLoop reports status and measures the round trip until ctx ends.
func (l *Link) statusLoop(ctx context.Context, ys *yamux.Session) {
	t := time.NewTicker(l.cfg.StatusInterval)
	defer t.Stop()
	for {
		if rtt, err := ys.Ping(); err == nil {
			l.update(func(s *State) { s.RTTMS = float64(rtt.Microseconds()) / 1000 })
		}
		if err := l.sendStatus(ys); err != nil && ctx.Err() == nil {
			l.cfg.Logger.Debug("status report failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Link) sendStatus(ys *yamux.Session) error {
	return l.send(ys, l.h.Status())
}

// send writes one message on a stream of its own.
func (l *Link) send(ys *yamux.Session, m protocol.Message) error {
	stream, err := ys.OpenStream()
	if err != nil {
		return err
	}
	defer stream.Close()
	_ = stream.SetDeadline(time.Now().Add(10 * time.Second))
	return protocol.WriteMessage(stream, m)
}

// TLSConfig builds the client TLS config: a CA pool, or a pinned SHA-256 of the control plane's
// leaf certificate (the chain and name are then not checked: the pin is the identity), or the
// system roots when both are nil.
func TLSConfig(serverName string, roots *x509.CertPool, pin []byte) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: serverName, RootCAs: roots}
	if pin != nil {
		c.InsecureSkipVerify = true //nolint:gosec // replaced by the pin check below
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("control plane sent no certificate")
			}
			sum := sha256.Sum256(raw[0])
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("control plane certificate fingerprint %x does not match the pinned fingerprint", sum)
			}
			return nil
		}
	}
	return c
}
