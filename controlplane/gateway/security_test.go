package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// syncBuffer collects log output written from several goroutines.
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

// captureLog makes the server log to the test and to the returned buffer.
func captureLog(t *testing.T, srv *gateway.Server) *syncBuffer {
	buf := &syncBuffer{}
	srv.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, buf), nil))
	return buf
}

func (g *gw) hello(token string) protocol.Hello {
	return protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105", Token: token, Tunnel: "tcs-sajet-tunnel"}
}

func metricAtLeast(t *testing.T, srv *gateway.Server, series string, want float64) {
	t.Helper()
	testwait.Until(t, 15*time.Second, fmt.Sprintf("%s ≥ %v", series, want), func() bool { return gather(t, srv)[series] >= want })
}

func TestWellFormedToken(t *testing.T) {
	t.Parallel()
	for token, want := range map[string]bool{
		newToken():                              true,
		"sja_" + strings.Repeat("A", 43):        true,
		"sja_" + strings.Repeat("-_", 21) + "z": true,
		"sja_wrong":                             false,
		"sja_" + strings.Repeat("a", 42):        false,
		"sja_" + strings.Repeat("a", 44):        false,
		"sjt_" + strings.Repeat("a", 43):        false,
		"sja_" + strings.Repeat("+", 43):        false,
		"":                                      false,
	} {
		if got := gateway.WellFormedToken(token); got != want {
			t.Errorf("WellFormedToken(%q) = %v, want %v", token, got, want)
		}
	}
}

// An agent older than protocol 3 (hello inside yamux) is told, in its own framing, to upgrade; the
// control plane logs a line saying so.
func TestLegacyAgentIsToldToUpgrade(t *testing.T) {
	t.Parallel()
	var logs *syncBuffer
	g := startGatewayWith(t, func(s *gateway.Server) { logs = captureLog(t, s) })
	h := g.hello(g.token)
	h.ProtocolVersion = 2
	reply, err := gatewaytest.ConnectLegacy(g.addr, h)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := reply.(protocol.Error)
	if !ok || e.Code != protocol.CodeUnsupportedVersion || !strings.Contains(e.Message, "upgrade sajet-agent") {
		t.Fatalf("a protocol-2 agent got %#v, want unsupported_version telling it to upgrade", reply)
	}
	if e.Retryable() {
		t.Error("unsupported_version must not be retryable (the agent backs off to its cap)")
	}
	metricAtLeast(t, g.srv, `sajet_gateway_refused_handshakes_total{code="unsupported_version"}`, 1)
	if !strings.Contains(logs.String(), "upgrade sajet-agent") {
		t.Errorf("the control plane did not log an upgrade line:\n%s", logs)
	}
}

// A peer that never finishes its hello is disconnected at the handshake deadline, whether it is
// silent or trickles a hello; a frame too large for a hello is refused without being read.
func TestHandshakeDeadlineAndHelloLimit(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(s *gateway.Server) { s.HelloTimeout = 300 * time.Millisecond })
	for name, send := range map[string][]byte{
		"silent":         nil,
		"partial hello":  append(binary.BigEndian.AppendUint32(nil, 200), `{"type":"hello"`...),
		"header only":    binary.BigEndian.AppendUint32(nil, 100),
		"yamux data SYN": {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := gatewaytest.DialTLS(nil, g.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(send); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			data, err := io.ReadAll(conn)
			if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("the gateway kept the connection open: %v", err)
			}
			if name == "yamux data SYN" {
				// A one-byte frame is not a hello: answered, not waited for.
				if !bytes.Contains(data, []byte(protocol.CodeBadRequest)) {
					t.Errorf("answer %q, want bad_request", data)
				}
			} else if len(data) != 0 {
				t.Errorf("an incomplete hello got an answer: %q", data)
			}
		})
	}
	metricAtLeast(t, g.srv, `sajet_gateway_refused_handshakes_total{code="handshake_timeout"}`, 3)

	conn, err := gatewaytest.DialTLS(nil, g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, 1<<20)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	reply, err := protocol.ReadMessage(conn, protocol.MaxHandshakeReplySize)
	if e, ok := reply.(protocol.Error); err != nil || !ok || e.Code != protocol.CodeBadRequest || !strings.Contains(e.Message, "8192") {
		t.Errorf("a 1 MiB hello got %#v, %v; want bad_request naming the 8 KiB limit", reply, err)
	}
}

// One address cannot take every handshake slot: its connections beyond MaxHandshakesPerAddress are
// closed at once, while an agent from another address still connects.
func TestHandshakesAreCappedPerAddress(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(s *gateway.Server) { s.MaxHandshakesPerAddress = 2; s.HelloTimeout = time.Minute })
	for range 2 {
		conn, err := gatewaytest.DialTLS(nil, g.addr) // the TLS handshake completed: the slot is held
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	conn, err := gatewaytest.DialTLS(nil, g.addr)
	if err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || isTimeout(err) {
		t.Fatalf("a third idle connection from 127.0.0.1 was kept: %v", err)
	}
	metricAtLeast(t, g.srv, `sajet_gateway_refused_handshakes_total{code="too_many_handshakes_from_address"}`, 1)

	ys, reply, err := gatewaytest.ConnectFrom(&net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, g.addr, g.hello(g.token))
	if err != nil {
		t.Fatal(err)
	}
	defer ys.Close()
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("an agent from 127.0.0.2 got %#v, want welcome", reply)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// An authenticated agent that opens hundreds of streams and never finishes a message: streams
// beyond MaxStreams (read) + MaxStreams (backlog) are reset by yamux, the stalled ones end the
// session at ReportTimeout, and the log gets a line for the session, not one per stream.
func TestStreamFloodIsCapped(t *testing.T) {
	t.Parallel()
	var logs *syncBuffer
	g := startGatewayWith(t, func(s *gateway.Server) {
		s.MaxStreams = 4
		s.ReportTimeout = 2 * time.Second
		logs = captureLog(t, s)
	})
	agent, reply := gatewaytest.Dial(t, g.addr, g.hello(g.token))
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", reply)
	}
	const n = 300
	streams := make([]*yamux.Stream, 0, n)
	for range n {
		st, err := agent.Session.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		// A status frame announced at 1000 bytes, of which 10 arrive.
		_, _ = st.Write(append(binary.BigEndian.AppendUint32(nil, 1000), `{"type":"s`...))
		streams = append(streams, st)
	}
	var reset, held atomic.Int64
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = st.SetReadDeadline(time.Now().Add(time.Second))
			_, err := st.Read(make([]byte, 1))
			switch {
			case errors.Is(err, yamux.ErrConnectionReset):
				reset.Add(1)
			case errors.Is(err, yamux.ErrTimeout):
				held.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d streams reset, %d held", reset.Load(), held.Load())
	if reset.Load() < n-8 {
		t.Errorf("%d of %d streams were reset, want all but the 4 being read and the 4 in the backlog", reset.Load(), n)
	}
	// The stalled streams end the session.
	select {
	case <-agent.Session.CloseChan():
	case <-time.After(30 * time.Second):
		t.Fatal("the session of a flooding agent was not closed")
	}
	metricAtLeast(t, g.srv, `sajet_gateway_refused_agent_streams_total{reason="protocol_violation"}`, 1)
	if lines := strings.Count(logs.String(), "agent=pct-105"); lines > 3 {
		t.Errorf("%d log lines about the flooding agent, want at most 3:\n%s", lines, logs)
	}
}

// rawFrame writes payload as one frame on a stream of its own and closes it.
func rawFrame(t *testing.T, ys *yamux.Session, payload []byte) {
	t.Helper()
	st, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := st.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)); err != nil {
		t.Fatal(err)
	}
}

// Status reports have a frame limit of their own (a status padded past it is refused, the session
// goes on) and a rate: a burst is stored, the rest dropped and counted.
func TestStatusReportsAreLimited(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, func(s *gateway.Server) { s.StatusBurst = 3; s.StatusInterval = time.Hour })
	agent, reply := gatewaytest.Dial(t, g.addr, g.hello(g.token))
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", reply)
	}
	var st bytes.Buffer
	if err := protocol.WriteMessage(&st, protocol.Status{SentAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	padded := append(bytes.Clone(st.Bytes()[4:]), bytes.Repeat([]byte(" "), protocol.MaxStatusFrameSize)...)
	rawFrame(t, agent.Session, padded)
	metricAtLeast(t, g.srv, `sajet_gateway_refused_agent_streams_total{reason="invalid"}`, 1)

	for range 10 {
		agent.Send(t, protocol.Status{SentAt: time.Now().UTC()})
	}
	metricAtLeast(t, g.srv, `sajet_gateway_dropped_reports_total{type="status"}`, 7)
	m := gather(t, g.srv)
	if m["sajet_gateway_status_reports_total"] != 3 || m[`sajet_gateway_dropped_reports_total{type="status"}`] != 7 {
		t.Errorf("stored %v and dropped %v status reports, want 3 and 7", m["sajet_gateway_status_reports_total"],
			m[`sajet_gateway_dropped_reports_total{type="status"}`])
	}
	select {
	case <-agent.Session.CloseChan():
		t.Fatal("refusing a message closed the session")
	default:
	}

	// A frame announced over the largest report ends the session.
	st2, err := agent.Session.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = st2.Write(binary.BigEndian.AppendUint32(nil, protocol.MaxBaseFrameSize+1))
	select {
	case <-agent.Session.CloseChan():
	case <-time.After(15 * time.Second):
		t.Fatal("a frame over every limit did not end the session")
	}
}

// waitForError accepts the streams the control plane opens (acknowledging pushes) until one
// carries an Error, and returns it.
func waitForError(t *testing.T, a *gatewaytest.Agent) protocol.Error {
	t.Helper()
	done := make(chan protocol.Error, 1)
	go func() {
		for {
			st, err := a.Session.AcceptStream()
			if err != nil {
				return
			}
			_ = st.SetDeadline(time.Now().Add(15 * time.Second))
			m, err := protocol.ReadMessage(st, protocol.MaxFrameSize)
			if err != nil {
				st.Close()
				continue
			}
			switch m := m.(type) {
			case protocol.Desired:
				_ = protocol.WriteMessage(st, gatewaytest.ACK(m))
			case protocol.Error:
				done <- m
				st.Close()
				return
			}
			st.Close()
		}
	}()
	select {
	case e := <-done:
		return e
	case <-time.After(15 * time.Second):
		t.Fatal("the control plane sent no error within 15s")
		return protocol.Error{}
	}
}

// Revoking an agent ends its live session with a non-retryable error, and its token is refused
// from then on.
func TestRevokedAgentLosesItsSession(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	agent, reply := gatewaytest.Dial(t, g.addr, g.hello(g.token))
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", reply)
	}
	if err := g.st.RevokeAgent(context.Background(), "t", g.agent.ID); err != nil {
		t.Fatal(err)
	}
	e := waitForError(t, agent)
	if e.Code != protocol.CodeUnauthorized || e.Retryable() {
		t.Errorf("the revoked session got %#v, want a non-retryable unauthorized", e)
	}
	select {
	case <-agent.Session.CloseChan():
	case <-time.After(15 * time.Second):
		t.Fatal("the revoked agent's session stays open")
	}
	metricAtLeast(t, g.srv, "sajet_gateway_revoked_sessions_total", 1)
	if _, reply := gatewaytest.Dial(t, g.addr, g.hello(g.token)); !isError(reply, protocol.CodeUnauthorized) {
		t.Errorf("a revoked token got %#v, want unauthorized", reply)
	}
}

func isError(m protocol.Message, code string) bool {
	e, ok := m.(protocol.Error)
	return ok && e.Code == code
}

// Rotating the token ends the session opened with the old one; the old token is refused and the
// new one welcomed.
func TestRotatedTokenEndsTheOldSession(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	agent, reply := gatewaytest.Dial(t, g.addr, g.hello(g.token))
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", reply)
	}
	fresh := newToken()
	sum := sha256.Sum256([]byte(fresh))
	if _, err := g.st.RotateAgentToken(context.Background(), "t", g.agent.ID, sum[:]); err != nil {
		t.Fatal(err)
	}
	if e := waitForError(t, agent); e.Code != protocol.CodeUnauthorized {
		t.Errorf("the old session got %#v, want unauthorized", e)
	}
	if _, reply := gatewaytest.Dial(t, g.addr, g.hello(g.token)); !isError(reply, protocol.CodeUnauthorized) {
		t.Errorf("the old token got %#v, want unauthorized", reply)
	}
	if _, reply := gatewaytest.Dial(t, g.addr, g.hello(fresh)); !isWelcome(reply) {
		t.Errorf("the new token got %#v, want welcome", reply)
	}
}

func isWelcome(m protocol.Message) bool {
	_, ok := m.(protocol.Welcome)
	return ok
}
