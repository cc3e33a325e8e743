package protocol

import "fmt"

// Protocol versions. An agent's Hello carries the version it speaks; the
// control plane accepts MinSupportedVersion..ProtocolVersion and answers with
// its own in Welcome. Version 2 added Ack.Rejected and the Base message.
// Version 3 moves Hello and Welcome out of yamux onto the TLS connection
// itself, so nothing is multiplexed (or buffered) for a peer that has not
// authenticated. That changes the first bytes on the wire, so a control plane
// speaking 3 cannot talk to an older agent at all: it recognises one by its
// first yamux frame, answers Error{unsupported_version} in yamux framing and
// logs "upgrade sajet-agent" (see doc.go, "Older agents").
const (
	ProtocolVersion     = 3
	MinSupportedVersion = 3
)

// Error codes carried by Error.
const (
	CodeUnsupportedVersion = "unsupported_version"
	CodeUnauthorized       = "unauthorized"
	CodeUnknownTunnel      = "unknown_tunnel"
	CodeRateLimited        = "rate_limited"
	CodeSuperseded         = "superseded"
	CodeBadRequest         = "bad_request"
)

// Error is both a message (control plane → agent, after which the sender
// closes the session) and a Go error, so the code that produced it can return
// it and the code that sends it can errors.As it.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Retryable reports whether the agent may reconnect with its normal backoff
// and expect a different answer. The other codes need an operator (new token,
// tunnel, or binary); the agent still reconnects, but at its backoff cap, and
// surfaces the error on /readyz. A revoked agent, or one whose token was
// rotated, gets unauthorized: not retryable.
func (e Error) Retryable() bool {
	switch e.Code {
	case CodeRateLimited, CodeSuperseded:
		return true
	}
	return false
}

// CheckVersion reports whether the control plane can talk to an agent
// speaking protocol v. It returns nil or an *Error with code
// unsupported_version whose message tells the operator which side to upgrade.
func CheckVersion(v int) error {
	switch {
	case v < MinSupportedVersion:
		return &Error{
			Code: CodeUnsupportedVersion,
			Message: fmt.Sprintf("agent protocol %d is no longer supported; upgrade sajet-agent to a build speaking protocol %s",
				v, versionRange()),
		}
	case v > ProtocolVersion:
		return &Error{
			Code: CodeUnsupportedVersion,
			Message: fmt.Sprintf("agent protocol %d is newer than this control plane (protocol %d); upgrade sajet-controlplane first",
				v, ProtocolVersion),
		}
	}
	return nil
}

func versionRange() string {
	if MinSupportedVersion == ProtocolVersion {
		return fmt.Sprint(ProtocolVersion)
	}
	return fmt.Sprintf("%d to %d", MinSupportedVersion, ProtocolVersion)
}
