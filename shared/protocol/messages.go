package protocol

import (
	"time"

	"github.com/jeturing/sajet-domains/shared/ingress"
)

// Message types, the "type" of an Envelope.
const (
	TypeHello        = "hello"
	TypeWelcome      = "welcome"
	TypeError        = "error"
	TypeDesired      = "desired"
	TypeAck          = "ack"
	TypeStatus       = "status"
	TypeProbeRequest = "probe_request"
	TypeProbeResult  = "probe_result"
	TypeBase         = "base"
)

// Message is implemented by every message body. The concrete types are
// values (Hello, not *Hello), so DecodeMessage's result can be used in a type
// switch:
//
//	switch m := msg.(type) {
//	case protocol.Desired: ...
//	case protocol.Error: ...
//	}
type Message interface {
	// MessageType is the envelope type the message travels under.
	MessageType() string
	// Validate enforces the wire limits; see validate.go.
	Validate() error
}

// AppliedState identifies the configuration in force on the agent. Version 0
// means nothing has been applied yet.
type AppliedState struct {
	Version int64 `json:"version"`
	// SHA256 is the lowercase hex SHA-256 of the rendered config file, or
	// empty when nothing is applied.
	SHA256 string `json:"sha256"`
}

// Hello is the first message on the first stream, agent → control plane. The
// control plane answers with Welcome, or Error and closes the session.
type Hello struct {
	ProtocolVersion int          `json:"protocol_version"`
	Agent           string       `json:"agent"`
	Token           string       `json:"token"`
	Tunnel          string       `json:"tunnel"`
	Build           string       `json:"build"`
	Applied         AppliedState `json:"applied"`
}

// Welcome accepts a Hello. SessionEpoch increases with every accepted session
// of an agent; a session holding a lower epoch is superseded and must stop
// pushing.
type Welcome struct {
	ProtocolVersion int       `json:"protocol_version"`
	SessionEpoch    int64     `json:"session_epoch"`
	ServerTime      time.Time `json:"server_time"`
}

// Rule is one managed ingress rule: the ingress model's own type, so what the
// control plane sends is what the agent renders, with no copy in between.
// OriginRequest is cloudflared's originRequest block, passed through untouched.
type Rule = ingress.Rule

// Desired is the complete managed rule set of a tunnel (state of the world:
// a rule absent here is removed). Version increases per tunnel; Nonce is
// fresh per push and echoed by the Ack that answers it.
type Desired struct {
	Version  int64     `json:"version"`
	Nonce    string    `json:"nonce"`
	IssuedAt time.Time `json:"issued_at"`
	Rules    []Rule    `json:"rules"`
}

// Apply pipeline stages a NACK names.
const (
	StageValidate = "validate"
	StageWrite    = "write"
	StageRestart  = "restart"
	StageVerify   = "verify"
	StageRollback = "rollback"
)

// Ack answers one Desired, echoing its Nonce and Version. OK=false is a NACK:
// Stage and Error say what failed and the previous config stays in force.
//
// AppliedVersion is the version in force after handling this Desired: equal to
// Version on a successful apply, the previous version on a NACK, and the
// (higher or equal) current version when a stale or duplicate Desired is
// acknowledged without applying.
type Ack struct {
	Nonce          string `json:"nonce"`
	Version        int64  `json:"version"`
	OK             bool   `json:"ok"`
	Stage          string `json:"stage,omitempty"`
	Error          string `json:"error,omitempty"`
	SHA256         string `json:"sha256,omitempty"`
	Restarted      bool   `json:"restarted"`
	DurationMS     int64  `json:"duration_ms"`
	AppliedVersion int64  `json:"applied_version"`
	// Rejected names the managed rules a NACK at validate is attributed to (protocol 2), so the
	// control plane can leave exactly those out and push again instead of the whole tunnel
	// waiting on one bad rule. Empty when the failure is not any rule's fault (the base file is
	// invalid, a restart failed).
	Rejected []Rejection `json:"rejected,omitempty"`
}

// Rejection reasons: why a managed rule cannot be part of the agent's config.
const (
	// RejectInvalid: the rule alone fails the shared validator (shared/ingress).
	RejectInvalid = "invalid"
	// RejectBaseConflict: the operator's base file routes the same hostname.
	RejectBaseConflict = "base_conflict"
	// RejectDuplicate: an earlier managed rule has the same hostname.
	RejectDuplicate = "duplicate"
	// RejectCloudflared: `cloudflared ingress validate` refused the config with this rule and
	// accepted it without (found by bisection).
	RejectCloudflared = "cloudflared"
)

// Rejection is one managed rule the agent refused. Error describes the rule's own problem; for
// RejectBaseConflict it names the hostname only, never the operator's rules.
type Rejection struct {
	Hostname string `json:"hostname"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
}

// Base reports the operator's base file as the agent last read it (protocol 2, agent → control
// plane on a stream of its own, after Welcome and whenever the file changes): the control plane
// refuses registrations of hostnames the base already routes and leaves colliding rules out of
// the tunnel's desired set, instead of learning about the collision from a NACK.
type Base struct {
	SHA256 string `json:"sha256"`
	// Hostnames are the exact hostnames the operator's rules name, as written and in
	// cloudflared's punycode/lower-case alias form, sorted and unique. Wildcards and the
	// catch-all are left out: managed rules come first, so they never collide with those.
	Hostnames []string `json:"hostnames"`
}

// ApplyResult is the outcome of the agent's most recent apply attempt.
type ApplyResult struct {
	Version int64     `json:"version"`
	OK      bool      `json:"ok"`
	Stage   string    `json:"stage,omitempty"` // failing stage, only when !OK
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
}

// UnitState is the cloudflared unit as the agent last saw it: the one type for the unit's state,
// read from systemd (agent/systemd), shown on the agent's /status and reported here.
type UnitState struct {
	ActiveState      string `json:"active_state"`      // systemd ActiveState, e.g. "active"
	SubState         string `json:"sub_state"`         // systemd SubState, e.g. "running"
	NRestarts        int64  `json:"n_restarts"`        // restarts systemd did on its own (Restart=)
	ReadyConnections int    `json:"ready_connections"` // from cloudflared /ready
	// LastRestart is when the unit last entered "active" (systemd's ActiveEnterTimestamp),
	// whoever restarted it.
	LastRestart time.Time `json:"last_restart,omitzero"`
}

// Status is the agent's periodic report (agent → control plane), the subset
// of the agent's status JSON the control plane stores and GET /api/agents shows.
type Status struct {
	SentAt     time.Time    `json:"sent_at"`
	UptimeS    int64        `json:"uptime_s"`
	Applied    AppliedState `json:"applied"`
	AppliedAt  time.Time    `json:"applied_at,omitzero"`
	LastApply  *ApplyResult `json:"last_apply,omitempty"` // nil before the first apply
	DriftCount int64        `json:"drift_count"`
	Unit       UnitState    `json:"unit"`
}

// ProbeRequest asks the agent whether the tunnel host reaches a tenant's backend the way
// cloudflared would (protocol 3), control plane → agent on its own stream. The agent probes only
// a service in the managed rules it currently applies: URL must be the service of one of them,
// and Hostname, when given, that rule's hostname; anything else is refused with
// ProbeNotInRules, so the wire can never make the agent fetch an arbitrary URL. The request goes
// to the service with Host: the rule's hostname, as cloudflared sends a visitor's request.
type ProbeRequest struct {
	URL       string `json:"url"`
	TimeoutMS int    `json:"timeout_ms"`
	// Hostname is the customer's hostname whose rule is probed (empty in requests of builds
	// before it was added: then any rule with the service URL).
	Hostname string `json:"hostname,omitempty"`
}

// Probe failures, ProbeResult.Failure: why no HTTP response arrived, as a code programs and
// sentences can rely on. An agent may send a code this build does not know (a newer agent);
// it is then shown as ProbeError.
const (
	ProbeNotInRules  = "not_in_rules"       // the URL (and hostname) is not a rule the agent applies: refused
	ProbeRateLimited = "rate_limited"       // over the agent's probe budget: not sent
	ProbeBusy        = "busy"               // an apply holds the rules; ask again in a moment
	ProbeInvalid     = "invalid"            // the request failed validation
	ProbeRefused     = "connection_refused" // nothing listens at the service's address
	ProbeTimeout     = "timeout"            // no answer within the timeout (connect, TLS or response)
	ProbeDNS         = "dns"                // the service's host name does not resolve on the tunnel host
	ProbeTLS         = "tls"                // the TLS handshake or the origin's certificate failed
	ProbeReset       = "connection_reset"   // the connection was reset or closed before an answer
	ProbeUnreachable = "unreachable"        // no route to the service's network
	ProbeProtocol    = "protocol"           // the service did not answer HTTP
	ProbeError       = "error"              // anything else; Error says what
)

// ProbeResult answers a ProbeRequest. OK means an HTTP response arrived (any status: the
// question is the path to the backend; what the status means is the control plane's call);
// otherwise Failure says why not, with Error's detail.
type ProbeResult struct {
	URL        string `json:"url"`
	OK         bool   `json:"ok"`
	Status     int    `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Hostname   string `json:"hostname,omitempty"` // the Host the request carried
	Failure    string `json:"failure,omitempty"`  // a Probe* code when !OK
}

// MessageType implements Message.
func (Hello) MessageType() string { return TypeHello }

// MessageType implements Message.
func (Welcome) MessageType() string { return TypeWelcome }

// MessageType implements Message.
func (Error) MessageType() string { return TypeError }

// MessageType implements Message.
func (Desired) MessageType() string { return TypeDesired }

// MessageType implements Message.
func (Ack) MessageType() string { return TypeAck }

// MessageType implements Message.
func (Status) MessageType() string { return TypeStatus }

// MessageType implements Message.
func (ProbeRequest) MessageType() string { return TypeProbeRequest }

// MessageType implements Message.
func (ProbeResult) MessageType() string { return TypeProbeResult }

// MessageType implements Message.
func (Base) MessageType() string { return TypeBase }
