// Package protocol is the wire contract between the Sajet control plane and
// the edge agent (docs/ARCHITECTURE.md §4): message types, their limits, framing, and the
// pure ordering rules both sides rely on. It does no I/O of its own beyond
// reading and writing frames on a stream it is given.
//
// # Transport and streams (protocol 3)
//
// The agent dials the control plane over TCP + TLS 1.3. Every message is a
// frame:
//
//	+----------------+---------------------------------------------+
//	| length: uint32 | JSON: {"type": "<message type>", "body": {}} |
//	|  (big endian)  |           exactly `length` bytes            |
//	+----------------+---------------------------------------------+
//
// The handshake is two frames on the TLS connection itself, before any
// multiplexing: the agent sends Hello (at most MaxHelloFrameSize), the control
// plane answers Welcome, or Error and closes the connection. So a peer that
// has not authenticated can make the control plane hold one TLS connection
// and at most one hello's worth of bytes, and only until the handshake
// deadline; nothing is multiplexed or buffered for it.
//
// After Welcome both sides run yamux on the same connection, the agent as the
// client. Every yamux stream carries one exchange and is then closed:
//
//   - the control plane opens a stream per push: Desired → Ack;
//   - the control plane opens a stream for a request of its own, such as
//     ProbeRequest → ProbeResult, so a slow probe never delays a push;
//   - the control plane opens a stream with an Error when it ends the session
//     (the agent was revoked or its token rotated); the agent logs it and
//     closes the session as if its hello had been refused;
//   - the agent opens a stream per report, Status (periodic) or Base (after
//     Welcome and after every edit of the base file), writes the one message
//     and closes its half.
//
// A session, in order:
//
//	agent                                      control plane
//	  | == TLS 1.3 handshake ======================== |
//	  | -- hello{version, token, applied} ----------> |  handshake deadline
//	  | <-- welcome{session_epoch} ------------------ |  or error{code} + close
//	  | == yamux from here on ======================= |
//	  | <-- stream: desired{version, nonce, rules} -- |  only if desired ≠ applied
//	  | --          ack{nonce, version, ok, ...} ---> |
//	  | -- stream: status{...} (periodic) ----------> |
//	  | -- stream: base{sha256, hostnames} ---------> |
//	  | <-- stream: probe_request ------------------- |
//	  | --          probe_result -------------------> |
//	  | <-- stream: error{unauthorized} ------------- |  revoked: session ends
//
// What the control plane reads from an agent is bounded per message kind:
// MaxHelloFrameSize, MaxStatusFrameSize, MaxBaseFrameSize (one such frame at a
// time per session), and the Ack of a push. The gateway (controlplane/gateway)
// adds the deadline, caps on concurrent handshakes (in total and per address),
// a cap on the streams an agent has open and a rate for status reports.
//
// # Older agents
//
// Protocol 3 changed the first bytes on the wire (protocol 2 ran yamux from
// the first byte and sent Hello on the first stream), so the two cannot
// interoperate. Nothing older was deployed and both binaries ship from one
// repository, so the control plane refuses agents older than 3 rather than
// keep the unauthenticated yamux path the change removes: it recognises one by
// its first yamux frame (version 0, a window update with SYN; as a frame
// length that is over 65,536, larger than any hello), answers
// Error{unsupported_version} in yamux framing on the stream the agent opened,
// so the old agent logs "upgrade sajet-agent" and retries only at its backoff
// cap, and logs the same advice itself. Upgrade the control plane first, then
// the agents; an agent of protocol 3 facing an older control plane gets no
// answer to its hello and says so ("upgrade sajet-controlplane").
//
// # Desired, Ack and nonces (xDS semantics)
//
// Desired is the state of the world: the complete managed rule set of the
// tunnel, never a delta. Its Version comes from a per-tunnel sequence and
// only increases. Each push carries a fresh Nonce (NewNonce) that the Ack
// answering it echoes; the control plane ignores an Ack whose nonce is not
// the one it is waiting for on that session, so late acks from an earlier
// push or session cannot be mistaken for the current one.
//
// The agent classifies every Desired against its applied version (Classify):
// newer is applied; equal (a resend) or older (a reorder or replay) is
// acknowledged without applying or restarting anything. Ack with OK=false is
// a NACK: it names the Stage that failed (validate, write, restart, verify,
// rollback) and AppliedVersion, the version still in force, because as in
// Envoy's xDS the agent keeps its last good config. The control plane stores
// and shows the NACK's error and never resends a NACKed version: only a new
// version (the operator fixed something) is pushed. It pushes only when
// desired ≠ acknowledged, and on reconnect Hello.Applied decides whether a
// push is needed at all, so a control-plane restart does not restart
// cloudflared.
//
// # Containment
//
// A NACK at validate carries Rejected: the managed rules the refusal is
// attributed to, each with a reason (invalid, duplicate, base_conflict,
// cloudflared). The control plane leaves exactly those domains out and pushes
// a new version, so one bad rule never keeps the rest of a tunnel waiting.
// Base (agent → control plane, on a stream of its own after Welcome and after
// every edit of the operator's base file) reports the exact hostnames the
// operator routes, so the control plane refuses them at registration instead
// of learning about a collision from a NACK.
//
// # Epochs
//
// Each accepted Hello gets a SessionEpoch higher than any before it for that
// agent, from a counter in the database, so it orders sessions across
// control-plane replicas. A replica records a session's end only while its
// epoch is still the agent's newest (an old session ending late on replica A
// does not make an agent connected to replica B look offline), and a newer
// session of an agent on the same replica closes the older one. Two replicas
// may still both hold a session of one agent for a moment during a rolling
// deploy; that is safe because every push is the whole desired state at the
// tunnel's current version and the agent applies only versions newer than its
// own (Classify): an interleaved older push is acknowledged without effect.
//
// # Versions
//
// Hello carries ProtocolVersion; CheckVersion turns an incompatible one into
// Error{unsupported_version} that says which side to upgrade. DecodeMessage
// checks the version before the strict decode, so a newer agent's extra hello
// fields produce "upgrade" and not "unknown field".
//
// # Limits, and why
//
// A frame's length is checked against a hard maximum (MaxFrameSize, 8 MiB by
// default; the per-message limits above on the control plane) before anything
// is allocated: a peer announcing 2 GiB gets a *FrameTooLargeError, not an
// out-of-memory kill of the agent on a small edge host. 10,000 realistic rules encode to about 2.8 MiB, so the default leaves
// 2.8x room to grow. Decoding is strict (unknown fields and trailing data are
// errors) because both sides ship from this package: a mismatch is a bug to
// surface, not to paper over. Validate bounds every string (hostnames ≤ 253
// bytes, services ≤ 2048, tokens ≤ 256, nonces ≤ 64, names ≤ 100, errors ≤
// 4096) and count, so nothing a peer sends can make the other side store or
// log unbounded data; semantic checks of hostnames and services belong to
// shared/hostname and shared/ingress.
//
// Errors a caller must decide on are types: *FrameTooLargeError (close the
// stream), *UnknownTypeError and *FieldError (answer bad_request), and Error
// (a protocol error message, with Retryable).
package protocol
