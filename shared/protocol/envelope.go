package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Envelope is every frame's JSON: {"type": "...", "body": {...}}. The body
// stays raw until the receiver knows the type.
type Envelope struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// UnknownTypeError reports an envelope type this build does not know. Within
// one protocol version that is a peer bug; callers answer bad_request.
type UnknownTypeError struct {
	Type string
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("protocol: unknown message type %q", e.Type)
}

// Encode wraps body in an envelope of type msgType.
func Encode(msgType string, body any) (Envelope, error) {
	if msgType == "" {
		return Envelope{}, errors.New("protocol: encoding envelope: empty type")
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return Envelope{}, fmt.Errorf("protocol: encoding %s body: %w", msgType, err)
	}
	return Envelope{Type: msgType, Body: raw}, nil
}

// Decode decodes env's body into dst with the same strictness as ReadFrame:
// unknown fields and trailing data are errors. It does not check env.Type;
// DecodeMessage does.
func Decode(env Envelope, dst any) error {
	if len(env.Body) == 0 {
		return fmt.Errorf("protocol: decoding %s: missing body", env.Type)
	}
	if err := decodeStrict(env.Body, dst); err != nil {
		return fmt.Errorf("protocol: decoding %s: %w", env.Type, err)
	}
	return nil
}

// DecodeMessage decodes and validates env's body into the concrete message
// type its Type names, returned as a value for a type switch. Errors:
// *UnknownTypeError, a decode error, a validation error, or for a Hello from
// an incompatible agent the *Error from CheckVersion (checked before the strict
// decode, so a newer agent's extra hello fields produce "upgrade" rather than
// "unknown field").
func DecodeMessage(env Envelope) (Message, error) {
	switch env.Type {
	case TypeHello:
		if err := peekHelloVersion(env); err != nil {
			return nil, err
		}
		return decodeAs[Hello](env)
	case TypeWelcome:
		return decodeAs[Welcome](env)
	case TypeError:
		return decodeAs[Error](env)
	case TypeDesired:
		return decodeAs[Desired](env)
	case TypeAck:
		return decodeAs[Ack](env)
	case TypeStatus:
		return decodeAs[Status](env)
	case TypeProbeRequest:
		return decodeAs[ProbeRequest](env)
	case TypeProbeResult:
		return decodeAs[ProbeResult](env)
	case TypeBase:
		return decodeAs[Base](env)
	}
	return nil, &UnknownTypeError{Type: env.Type}
}

func decodeAs[M Message](env Envelope) (Message, error) {
	var m M
	if err := Decode(env, &m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("protocol: invalid %s: %w", env.Type, err)
	}
	return m, nil
}

// peekHelloVersion reads only protocol_version, leniently, and checks it.
func peekHelloVersion(env Envelope) error {
	var v struct {
		ProtocolVersion *int `json:"protocol_version"`
	}
	if err := json.Unmarshal(env.Body, &v); err != nil || v.ProtocolVersion == nil {
		return nil // the strict decode reports the real problem
	}
	return CheckVersion(*v.ProtocolVersion)
}

// WriteMessage validates m, wraps it in an envelope and writes it as one
// frame. Validating on the sending side too means a bug shows up where it is
// made, not as a bad_request from the peer.
func WriteMessage(w io.Writer, m Message) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("protocol: invalid %s: %w", m.MessageType(), err)
	}
	env, err := Encode(m.MessageType(), m)
	if err != nil {
		return err
	}
	return WriteFrame(w, env)
}

// ReadMessage reads one frame (limit max, see ReadFrame) and returns its
// decoded, validated message.
func ReadMessage(r io.Reader, max int) (Message, error) {
	var env Envelope
	if err := ReadFrame(r, max, &env); err != nil {
		return nil, err
	}
	return DecodeMessage(env)
}
