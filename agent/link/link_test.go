package link_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/agent/link"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

type handler struct{}

func (handler) Hello() protocol.Hello {
	return protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105", Token: "sja_x", Tunnel: "t"}
}
func (handler) Desired(_ context.Context, d protocol.Desired) protocol.Ack {
	return protocol.Ack{Nonce: d.Nonce, Version: d.Version, OK: true, AppliedVersion: d.Version}
}
func (handler) Status() protocol.Status { return protocol.Status{SentAt: time.Now().UTC()} }
func (handler) Base() protocol.Base     { return protocol.Base{} }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve accepts one connection on ln and runs cp on it.
func serve(t *testing.T, cp func(conn net.Conn)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{gatewaytest.Certificate(t)}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		cp(conn)
	}()
	return ln.Addr().String()
}

func run(t *testing.T, addr string) (*link.Link, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	l := link.New(link.Config{Addr: addr, TLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, //nolint:gosec // test certificate
		MinBackoff: time.Hour, MaxBackoff: time.Hour, Logger: slog.New(slog.NewTextHandler(logs, nil))}, handler{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return l, logs
}

// Protocol 3: the hello and the welcome are frames on the TLS connection, yamux comes after; an
// Error the control plane sends later on a stream of its own (the agent was revoked) ends the
// session and is logged as a refusal.
func TestErrorDuringTheSessionEndsIt(t *testing.T) {
	t.Parallel()
	got := make(chan protocol.Hello, 1)
	addr := serve(t, func(conn net.Conn) {
		m, err := protocol.ReadMessage(conn, protocol.MaxHelloFrameSize)
		if err != nil {
			t.Error(err)
			return
		}
		got <- m.(protocol.Hello)
		if err := protocol.WriteMessage(conn, protocol.Welcome{ProtocolVersion: protocol.ProtocolVersion, SessionEpoch: 1, ServerTime: time.Now().UTC()}); err != nil {
			t.Error(err)
			return
		}
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		ys, err := yamux.Server(conn, cfg)
		if err != nil {
			t.Error(err)
			return
		}
		defer ys.Close()
		time.Sleep(100 * time.Millisecond)
		st, err := ys.OpenStream()
		if err != nil {
			t.Error(err)
			return
		}
		_ = protocol.WriteMessage(st, protocol.Error{Code: protocol.CodeUnauthorized, Message: "this agent's token was revoked"})
		st.Close()
		<-ys.CloseChan() // the agent closes the session
	})
	l, logs := run(t, addr)
	select {
	case h := <-got:
		if h.Token != "sja_x" {
			t.Errorf("hello %+v", h)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no hello on the TLS connection")
	}
	testwait.Until(t, 15*time.Second, "the session ends with the error", func() bool {
		s := l.State()
		return !s.Connected && strings.Contains(s.LastError, "revoked")
	})
	if s := l.State(); s.Epoch != 1 {
		t.Errorf("state %+v: the session was never up", s)
	}
	if out := logs.String(); !strings.Contains(out, "control plane refused the agent") || !strings.Contains(out, "code=unauthorized") {
		t.Errorf("the refusal was not logged as one:\n%s", out)
	}
}

// A control plane that never answers the hello (busy, or older than protocol 3) gets a hint.
func TestUnansweredHelloSaysWhy(t *testing.T) {
	t.Parallel()
	addr := serve(t, func(conn net.Conn) {
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, 1)) // reads a byte, then closes
	})
	l, _ := run(t, addr)
	testwait.Until(t, 15*time.Second, "the unanswered hello is reported", func() bool {
		return strings.Contains(l.State().LastError, "upgrade sajet-controlplane")
	})
}
