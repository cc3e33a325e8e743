package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/secret"
	"github.com/jeturing/sajet-domains/internal/textlimit"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// agentTokenPrefix marks the tokens POST /api/agents issues (api.NewAgentToken, secret.Token).
const agentTokenPrefix = "sja_"

// WellFormedToken reports whether token has the shape of an agent token. Anything else is refused
// without a database lookup.
func WellFormedToken(token string) bool { return secret.WellFormed(token, agentTokenPrefix) }

// handshakeError is a refused handshake: the code for metrics and whether the peer was answered
// (then the connection lingers briefly so the answer is read before the close).
type handshakeError struct {
	code     string
	answered bool
	legacy   bool // answered in yamux framing: wait for the peer to close, do not close first
	err      error
}

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// authDeadline bounds the handshake's database work and the Welcome once the hello is read.
const authDeadline = 10 * time.Second

// handshake reads the hello from the TLS connection itself (protocol 3: nothing is multiplexed
// before authentication), checks version and token, and answers Welcome or Error.
func (s *Server) handshake(ctx context.Context, conn net.Conn, key, remote string) (*session, error) {
	// refuse answers the agent with e and returns it as the handshake's error.
	refuse := func(e protocol.Error) (*session, error) {
		_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		werr := protocol.WriteMessage(conn, e)
		return nil, &handshakeError{code: e.Code, answered: werr == nil, err: &e}
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		code := "closed"
		if isTimeout(err) {
			code = "handshake_timeout"
		}
		return nil, &handshakeError{code: code, err: fmt.Errorf("no hello: %w", err)}
	}
	if isYamuxOpen(hdr) {
		return nil, s.refuseLegacy(conn)
	}
	msg, err := protocol.ReadMessage(io.MultiReader(bytes.NewReader(hdr[:]), conn), protocol.MaxHelloFrameSize)
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return refuse(*perr) // an agent speaking another version
	}
	if err != nil {
		if isTimeout(err) {
			return nil, &handshakeError{code: "handshake_timeout", err: fmt.Errorf("incomplete hello: %w", err)}
		}
		return refuse(protocol.Error{Code: protocol.CodeBadRequest, Message: textlimit.Truncate(err.Error(), 1000)})
	}
	hello, ok := msg.(protocol.Hello)
	if !ok {
		return refuse(protocol.Error{Code: protocol.CodeBadRequest, Message: "the first message must be hello, not " + msg.MessageType()})
	}
	if err := protocol.CheckVersion(hello.ProtocolVersion); err != nil {
		if errors.As(err, &perr) {
			return refuse(*perr)
		}
		return nil, err
	}

	// Token. Known valid tokens skip the limiter; malformed ones never reach the database; unknown
	// ones are looked up only from an address that has not failed too often.
	now := time.Now()
	if !WellFormedToken(hello.Token) {
		s.failures().Fail(key, now)
		return refuse(protocol.Error{Code: protocol.CodeUnauthorized, Message: "malformed agent token (want sja_ and 43 characters, from POST /api/agents)"})
	}
	sum := secret.Sum(hello.Token)
	known := s.tokens.has(sum)
	if !known {
		if wait := s.failures().Blocked(key, now); wait > 0 {
			return refuse(protocol.Error{Code: protocol.CodeRateLimited,
				Message: fmt.Sprintf("too many failed handshakes from this address; retry in %s", wait.Round(time.Second))})
		}
		s.metrics.unknownLookups.Inc()
	}
	_ = conn.SetDeadline(time.Now().Add(authDeadline))
	actx, cancel := context.WithTimeout(ctx, authDeadline)
	defer cancel()
	authAt := time.Now()
	agent, err := s.Store.AgentByToken(actx, sum[:])
	if errors.Is(err, store.ErrNotFound) {
		s.failures().Fail(key, time.Now())
		return refuse(protocol.Error{Code: protocol.CodeUnauthorized, Message: "unknown or revoked agent token"})
	}
	if err != nil {
		return nil, err
	}
	if agent.TunnelName != hello.Tunnel {
		return refuse(protocol.Error{Code: protocol.CodeUnknownTunnel,
			Message: fmt.Sprintf("this token belongs to tunnel %q, not %q", agent.TunnelName, hello.Tunnel)})
	}
	epoch, err := s.Store.AgentConnected(actx, agent.ID, hello.Applied.Version, hello.Applied.SHA256, remote)
	if err != nil {
		return nil, err
	}
	if hello.Applied.Version > 0 {
		// What the agent runs counts as acknowledged: an apply it finished after losing its
		// session (or after a crash) has no other way to mark its domains configured.
		if _, err := s.Store.RecordAgentAck(actx, agent.ID, store.AgentAck{Version: hello.Applied.Version, OK: true,
			SHA256: hello.Applied.SHA256, FromHello: true}); err != nil {
			return nil, err
		}
	}
	sess := &session{agent: agent, tokenHash: sum, authAt: authAt, remote: remote, epoch: epoch,
		kick: make(chan struct{}, 1), applied: hello.Applied.Version,
		slots: make(chan struct{}, s.MaxStreams), large: make(chan struct{}, 1), probeSlots: make(chan struct{}, s.MaxProbes)}
	if err := protocol.WriteMessage(conn, protocol.Welcome{ProtocolVersion: protocol.ProtocolVersion,
		SessionEpoch: sess.epoch, ServerTime: time.Now().UTC()}); err != nil {
		return nil, err
	}
	sess.kick <- struct{}{} // resync: push if the applied version differs from desired
	return sess, nil
}

// refusedHandshake counts a refused handshake, logs it (at most one line per code and logEvery:
// an unauthenticated peer must not be able to fill the log) and, when the peer was answered,
// lingers so it reads the answer before the close.
func (s *Server) refusedHandshake(conn net.Conn, remote string, err error) {
	code := "error" // the database or the connection, not the agent
	var he *handshakeError
	if errors.As(err, &he) {
		code = he.code
	}
	s.metrics.refused(code)
	if code != "closed" {
		s.hsLog.warn(s.logger(), code, "agent refused", "code", code, "remote", remote, "err", err)
	}
	if he != nil && he.answered {
		linger(conn, !he.legacy)
	}
}

// linger keeps a refused connection open briefly so the agent reads the answer before the close
// (closing with unread input can turn into a reset that drops the answer in flight): it sends
// TLS close_notify (unless closeWrite is false: a yamux client whose session ends on it may fail
// a write it already made instead of reading the answer) and reads (and drops) at most 64 KiB
// until the peer closes or a second passes. The connection still holds its handshake slot.
func linger(conn net.Conn, closeWrite bool) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && closeWrite {
		_ = cw.CloseWrite()
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// yamux frame header (hashicorp/yamux spec.md): version, type, flags, stream id, length.
const (
	yamuxHeaderSize       = 12
	yamuxTypeData         = 0
	yamuxTypeWindowUpdate = 1
	yamuxFlagSYN          = 1
	yamuxFlagACK          = 2
	yamuxFlagFIN          = 4
)

// isYamuxOpen recognises the first bytes an agent older than protocol 3 sends: yamux version 0, a
// window update with SYN (the yamux client opening its first stream for the hello). As a frame
// length they read 65,537+, more than any hello, so no protocol-3 peer is mistaken for one.
func isYamuxOpen(hdr [4]byte) bool {
	return hdr[0] == 0 && hdr[1] == yamuxTypeWindowUpdate && binary.BigEndian.Uint16(hdr[2:4])&yamuxFlagSYN != 0
}

// legacyAgentError is what an agent older than protocol 3 is told.
var legacyAgentError = protocol.Error{Code: protocol.CodeUnsupportedVersion,
	Message: fmt.Sprintf("this control plane speaks agent protocol %d (hello before yamux); upgrade sajet-agent", protocol.ProtocolVersion)}

// refuseLegacy answers an agent older than protocol 3 in its own framing, so it logs why it is
// refused (unsupported_version: it retries only at its backoff cap) instead of a bare EOF: a yamux
// data frame on the stream it opened carrying a protocol Error, then the stream's FIN. Nothing it
// sends is multiplexed or buffered: its hello is read and dropped (at most MaxHelloFrameSize), then
// linger's bounded drain.
func (s *Server) refuseLegacy(conn net.Conn) error {
	var rest [yamuxHeaderSize - 4]byte
	id := uint32(1) // a yamux client's first stream
	if _, err := io.ReadFull(conn, rest[:]); err == nil {
		id = binary.BigEndian.Uint32(rest[0:4])
	}
	// Wait for its hello (the data frame that follows) and drop it: answering before the agent has
	// written it would make its write, not its read, fail, and it would log a bare "session shutdown".
	var hdr [yamuxHeaderSize]byte
	if _, err := io.ReadFull(conn, hdr[:]); err == nil && hdr[1] == yamuxTypeData {
		if n := binary.BigEndian.Uint32(hdr[8:12]); n <= protocol.MaxHelloFrameSize+4 {
			_, _ = io.CopyN(io.Discard, conn, int64(n))
		}
	}
	var payload bytes.Buffer
	_ = protocol.WriteMessage(&payload, legacyAgentError)
	// The data with ACK, then FIN in a window update of its own: yamux applies a frame's flags
	// before its data, so a FIN on the data frame could let the reader see the end of the stream
	// before the data.
	frame := make([]byte, 2*yamuxHeaderSize+payload.Len())
	frame[1] = yamuxTypeData
	binary.BigEndian.PutUint16(frame[2:4], yamuxFlagACK)
	binary.BigEndian.PutUint32(frame[4:8], id)
	binary.BigEndian.PutUint32(frame[8:12], uint32(payload.Len()))
	copy(frame[yamuxHeaderSize:], payload.Bytes())
	fin := frame[yamuxHeaderSize+payload.Len():]
	fin[1] = yamuxTypeWindowUpdate
	binary.BigEndian.PutUint16(fin[2:4], yamuxFlagFIN)
	binary.BigEndian.PutUint32(fin[4:8], id)
	_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, werr := conn.Write(frame)
	return &handshakeError{code: protocol.CodeUnsupportedVersion, answered: werr == nil, legacy: true,
		err: errors.New("an agent older than protocol 3 (hello inside yamux) connected; upgrade sajet-agent on that host")}
}
