package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func validHello() Hello     { return sampleMessages()[0].(Hello) }
func validDesired() Desired { return Desired{Version: 5, Nonce: "n", Rules: realisticRules(2)} }
func validAck() Ack         { return sampleMessages()[5].(Ack) }
func validNack() Ack        { return sampleMessages()[6].(Ack) }
func validStatus() Status   { return sampleMessages()[7].(Status) }

func TestValidate(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		msg  Message
		want string // substring of the error; "" means valid
	}{
		{"every sample message is valid", nil, ""},

		{"a hello needs an agent", with(validHello(), func(h *Hello) { h.Agent = "" }), "agent: required"},
		{"a hello agent name over 100 bytes is rejected", with(validHello(), func(h *Hello) { h.Agent = long(101) }), "agent: 101 bytes, limit 100"},
		{"a hello agent name of 100 bytes is fine", with(validHello(), func(h *Hello) { h.Agent = long(100) }), ""},
		{"a hello needs a token", with(validHello(), func(h *Hello) { h.Token = "" }), "token: required"},
		{"a hello token over 256 bytes is rejected", with(validHello(), func(h *Hello) { h.Token = long(257) }), "token: 257 bytes, limit 256"},
		{"a hello needs a tunnel", with(validHello(), func(h *Hello) { h.Tunnel = "" }), "tunnel: required"},
		{"a hello tunnel over 100 bytes is rejected", with(validHello(), func(h *Hello) { h.Tunnel = long(101) }), "tunnel: 101 bytes"},
		{"a hello build over 100 bytes is rejected", with(validHello(), func(h *Hello) { h.Build = long(101) }), "build: 101 bytes"},
		{"a hello negative applied version is rejected", with(validHello(), func(h *Hello) { h.Applied.Version = -1 }), "applied.version: must be >= 0"},
		{"a hello applied hash must be hex", with(validHello(), func(h *Hello) { h.Applied.SHA256 = strings.Repeat("G", 64) }), "applied.sha256: must be 64 lowercase hex"},
		{"a hello with nothing applied is fine", with(validHello(), func(h *Hello) { h.Applied = AppliedState{} }), ""},
		{"a hello negative protocol version is rejected", with(validHello(), func(h *Hello) { h.ProtocolVersion = -1 }), "protocol_version"},
		{"a hello from an old protocol still validates (CheckVersion judges it)", with(validHello(), func(h *Hello) { h.ProtocolVersion = 0 }), ""},
		{"a hello reports every bad field at once", with(validHello(), func(h *Hello) { h.Agent = ""; h.Token = "" }), "agent: required\ntoken: required"},

		{"a welcome needs a supported version", Welcome{ProtocolVersion: 2, SessionEpoch: 1}, "protocol_version: 2 not in 3"},
		{"a welcome needs an epoch", Welcome{ProtocolVersion: ProtocolVersion}, "session_epoch: must be >= 1"},

		{"a welcome time with a 24h offset is rejected", Welcome{ProtocolVersion: ProtocolVersion, SessionEpoch: 1, ServerTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))}, "server_time: not representable"},
		{"a desired time past year 9999 is rejected", with(validDesired(), func(d *Desired) { d.IssuedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), "issued_at: not representable"},
		{"a status time with a 24h offset is rejected", with(validStatus(), func(s *Status) { s.LastApply.At = time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -24*3600)) }), "last_apply.at: not representable"},
		{"an error needs a code", Error{Message: "x"}, "code: required"},
		{"an error message over 4096 bytes is rejected", Error{Code: "x", Message: long(4097)}, "message: 4097 bytes"},

		{"a desired needs a nonce", with(validDesired(), func(d *Desired) { d.Nonce = "" }), "nonce: required"},
		{"a desired nonce over 64 bytes is rejected", with(validDesired(), func(d *Desired) { d.Nonce = long(65) }), "nonce: 65 bytes, limit 64"},
		{"a desired nonce of 64 bytes is fine", with(validDesired(), func(d *Desired) { d.Nonce = long(64) }), ""},
		{"a desired negative version is rejected", with(validDesired(), func(d *Desired) { d.Version = -1 }), "version: must be >= 0"},
		{"a desired with no rules is fine (removes all)", with(validDesired(), func(d *Desired) { d.Rules = nil }), ""},
		{"a rule needs a hostname", with(validDesired(), func(d *Desired) { d.Rules[1].Hostname = "" }), "rules[1].hostname: required"},
		{"a hostname over 253 bytes is rejected", with(validDesired(), func(d *Desired) { d.Rules[0].Hostname = long(254) }), "rules[0].hostname: 254 bytes, limit 253"},
		{"a hostname of 253 bytes is fine", with(validDesired(), func(d *Desired) { d.Rules[0].Hostname = long(253) }), ""},
		{"a rule needs a service", with(validDesired(), func(d *Desired) { d.Rules[0].Service = "" }), "rules[0].service: required"},
		{"a service over 2048 bytes is rejected", with(validDesired(), func(d *Desired) { d.Rules[0].Service = long(2049) }), "rules[0].service: 2049 bytes, limit 2048"},
		{"more than MaxRules rules are rejected", with(validDesired(), func(d *Desired) { d.Rules = make([]Rule, MaxRules+1) }), "rules: 100001 rules, limit 100000"},

		{"an ack needs a nonce", with(validAck(), func(a *Ack) { a.Nonce = "" }), "nonce: required"},
		{"an ack nonce over 64 bytes is rejected", with(validAck(), func(a *Ack) { a.Nonce = long(65) }), "nonce: 65 bytes"},
		{"an ack negative version is rejected", with(validAck(), func(a *Ack) { a.Version = -2 }), "version: must be >= 0"},
		{"an ack negative applied version is rejected", with(validAck(), func(a *Ack) { a.AppliedVersion = -1 }), "applied_version: must be >= 0"},
		{"an ack negative duration is rejected", with(validAck(), func(a *Ack) { a.DurationMS = -1 }), "duration_ms: must be >= 0"},
		{"an ack hash must be hex", with(validAck(), func(a *Ack) { a.SHA256 = "nothex" }), "sha256: must be 64"},
		{"an ack must not name a stage", with(validAck(), func(a *Ack) { a.Stage = StageWrite }), "stage: only allowed on a NACK"},
		{"an ack must not carry an error", with(validAck(), func(a *Ack) { a.Error = "x" }), "error: only allowed on a NACK"},
		{"a nack needs a stage", with(validNack(), func(a *Ack) { a.Stage = "" }), "stage: required on a NACK"},
		{"a nack stage must be known", with(validNack(), func(a *Ack) { a.Stage = "reload" }), `stage: unknown stage "reload"`},
		{"a nack needs an error", with(validNack(), func(a *Ack) { a.Error = "" }), "error: required"},
		{"a nack error over 4096 bytes is rejected", with(validNack(), func(a *Ack) { a.Error = long(4097) }), "error: 4097 bytes"},
		{"a nack at each stage is fine", nackStages(), ""},
		{"a nack at validate may name the rules it refuses", with(validNack(), func(a *Ack) {
			a.Stage = StageValidate
			a.Rejected = []Rejection{{Hostname: "www.a.com", Reason: RejectInvalid, Error: "bad"}}
		}), ""},
		{"a nack at restart names no rules", with(validNack(), func(a *Ack) {
			a.Stage = StageRestart
			a.Rejected = []Rejection{{Hostname: "www.a.com", Reason: RejectInvalid, Error: "bad"}}
		}), "rejected: only allowed on a NACK at validate"},
		{"a rejection needs a known reason", with(validNack(), func(a *Ack) {
			a.Stage = StageValidate
			a.Rejected = []Rejection{{Hostname: "www.a.com", Reason: "because", Error: "bad"}}
		}), `rejected[0].reason: unknown reason "because"`},
		{"a rejection needs a hostname and an error", with(validNack(), func(a *Ack) {
			a.Stage = StageValidate
			a.Rejected = []Rejection{{Reason: RejectDuplicate}}
		}), "rejected[0].hostname: required\nrejected[0].error: required"},
		{"more than MaxRejections rejections are refused", with(validNack(), func(a *Ack) {
			a.Stage = StageValidate
			a.Rejected = make([]Rejection, MaxRejections+1)
		}), "rejected: 1001 entries, limit 1000"},

		{"a base report may list no hostnames", Base{}, ""},
		{"a base report hash must be hex", Base{SHA256: "x"}, "sha256: must be 64"},
		{"a base hostname over 253 bytes is rejected", Base{Hostnames: []string{long(254)}}, "hostnames[0]: 254 bytes"},
		{"more than MaxBaseHostnames base hostnames are refused", Base{Hostnames: make([]string, MaxBaseHostnames+1)}, "hostnames: 10001 entries, limit 10000"},

		{"a status negative uptime is rejected", with(validStatus(), func(s *Status) { s.UptimeS = -1 }), "uptime_s"},
		{"a status negative drift count is rejected", with(validStatus(), func(s *Status) { s.DriftCount = -1 }), "drift_count"},
		{"a status negative restart count is rejected", with(validStatus(), func(s *Status) { s.Unit.NRestarts = -1 }), "unit.n_restarts"},
		{"a status negative ready connections is rejected", with(validStatus(), func(s *Status) { s.Unit.ReadyConnections = -1 }), "unit.ready_connections"},
		{"a status unit state over 64 bytes is rejected", with(validStatus(), func(s *Status) { s.Unit.ActiveState = long(65) }), "unit.active_state: 65 bytes"},
		{"a status failed apply needs a known stage", with(validStatus(), func(s *Status) { s.LastApply.Stage = "bogus" }), "last_apply.stage: unknown stage"},
		{"a status successful apply has no stage", with(validStatus(), func(s *Status) { s.LastApply.OK = true }), "last_apply.stage: only allowed"},
		{"a status applied hash must be hex", with(validStatus(), func(s *Status) { s.Applied.SHA256 = "x" }), "applied.sha256"},

		{"a probe needs a URL", ProbeRequest{TimeoutMS: 1000}, "url: required"},
		{"a probe of an https URL is fine", ProbeRequest{URL: "https://a.example/x?y=1", TimeoutMS: 1000}, ""},
		{"a probe of an http URL with a port is fine", ProbeRequest{URL: "http://10.0.0.1:8080", TimeoutMS: 1000}, ""},
		{"a probe of a file URL is rejected", ProbeRequest{URL: "file:///etc/passwd", TimeoutMS: 1000}, `url: scheme "file" not allowed`},
		{"a probe of a unix socket is rejected", ProbeRequest{URL: "unix:/run/x.sock", TimeoutMS: 1000}, `scheme "unix" not allowed`},
		{"a probe of a relative URL is rejected", ProbeRequest{URL: "/healthz", TimeoutMS: 1000}, `scheme "" not allowed`},
		{"a probe without a host is rejected", ProbeRequest{URL: "http:///x", TimeoutMS: 1000}, "url: missing host"},
		{"a probe with a port but no host is rejected", ProbeRequest{URL: "http://:80/", TimeoutMS: 1000}, "url: missing host"},
		{"a probe with credentials is rejected", ProbeRequest{URL: "https://u:p@a.example/", TimeoutMS: 1000}, "credentials"},
		{"a probe of an unparsable URL is rejected", ProbeRequest{URL: "http://a b/%zz", TimeoutMS: 1000}, "url: not a URL"},
		{"a probe URL over 2048 bytes is rejected", ProbeRequest{URL: "https://a.example/" + long(2048), TimeoutMS: 1000}, "url: 2066 bytes"},
		{"a probe timeout under 100 ms is rejected", ProbeRequest{URL: "https://a.example", TimeoutMS: 99}, "timeout_ms: 99 not in 100..30000"},
		{"a probe timeout of zero is rejected", ProbeRequest{URL: "https://a.example"}, "timeout_ms: 0 not in"},
		{"a probe timeout over 30 s is rejected", ProbeRequest{URL: "https://a.example", TimeoutMS: 30_001}, "timeout_ms: 30001 not in"},
		{"a probe timeout of exactly 30 s is fine", ProbeRequest{URL: "https://a.example", TimeoutMS: 30_000}, ""},

		{"a failed probe result needs an error", ProbeResult{URL: "https://a.example"}, "error: required when ok is false"},
		{"a probe result status must be an HTTP status", ProbeResult{URL: "https://a.example", OK: true, Status: 42}, "status: 42"},
		{"a probe result needs the URL", ProbeResult{OK: true, Status: 200}, "url: required"},
		{"a probe result negative duration is rejected", ProbeResult{URL: "x", OK: true, DurationMS: -1}, "duration_ms"},
		{"a probe may name the rule's hostname", ProbeRequest{URL: "http://10.0.0.1:8069", TimeoutMS: 1000, Hostname: "www.x.com"}, ""},
		{"a probe hostname over 253 bytes is rejected", ProbeRequest{URL: "http://10.0.0.1:8069", TimeoutMS: 1000, Hostname: long(254)}, "hostname: 254 bytes"},
		{"a failed probe result carries its failure code", ProbeResult{URL: "x", Error: "refused", Failure: ProbeRefused}, ""},
		{"an unknown failure code from a newer agent is accepted", ProbeResult{URL: "x", Error: "e", Failure: "quic_blocked"}, ""},
		{"a failure code over 64 bytes is rejected", ProbeResult{URL: "x", Error: "e", Failure: long(65)}, "failure: 65 bytes"},
		{"a successful probe result has no failure", ProbeResult{URL: "x", OK: true, Status: 200, Failure: ProbeTimeout}, "failure: only allowed"},
		{"a probe result hostname over 253 bytes is rejected", ProbeResult{URL: "x", OK: true, Status: 200, Hostname: long(254)}, "hostname: 254 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msgs := []Message{tt.msg}
			if tt.msg == nil {
				msgs = sampleMessages()
			}
			if m, ok := tt.msg.(multi); ok {
				msgs = m
			}
			for _, m := range msgs {
				err := m.Validate()
				switch {
				case tt.want == "" && err != nil:
					t.Errorf("%s: unexpected error: %v", m.MessageType(), err)
				case tt.want != "" && err == nil:
					t.Errorf("%s: accepted, want error containing %q", m.MessageType(), tt.want)
				case tt.want != "" && !strings.Contains(err.Error(), tt.want):
					t.Errorf("%s: got %q, want it to contain %q", m.MessageType(), err, tt.want)
				}
				if err != nil {
					var fe *FieldError
					if !errors.As(err, &fe) {
						t.Errorf("error %v is not a *FieldError", err)
					}
				}
			}
		})
	}
}

// multi lets one table row check several messages; it is only a Message so
// it fits the table's field.
type multi []Message

func (multi) MessageType() string { return "multi" }
func (multi) Validate() error     { return nil }

func nackStages() multi {
	var ms multi
	for _, s := range []string{StageValidate, StageWrite, StageRestart, StageVerify, StageRollback} {
		ms = append(ms, with(validNack(), func(a *Ack) { a.Stage = s }))
	}
	return ms
}

// with returns a modified copy of m; deep enough for the slices it touches.
func with[M any](m M, f func(*M)) M {
	if d, ok := any(&m).(*Desired); ok {
		d.Rules = append([]Rule(nil), d.Rules...)
	}
	if s, ok := any(&m).(*Status); ok && s.LastApply != nil {
		la := *s.LastApply
		s.LastApply = &la
	}
	f(&m)
	return m
}

func TestDecodeMessageValidates(t *testing.T) {
	t.Parallel()
	env, err := Encode(TypeDesired, Desired{Version: 1, Rules: []Rule{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeMessage(env); err == nil || !strings.Contains(err.Error(), "invalid desired: nonce: required") {
		t.Fatalf("got %v, want invalid desired", err)
	}
}

func TestDecodeMessageRejectsUnknownTypesAndMissingBodies(t *testing.T) {
	t.Parallel()
	_, err := DecodeMessage(Envelope{Type: "push", Body: json.RawMessage(`{}`)})
	var ute *UnknownTypeError
	if !errors.As(err, &ute) || ute.Type != "push" {
		t.Fatalf("got %v, want *UnknownTypeError{push}", err)
	}
	if _, err := DecodeMessage(Envelope{Type: TypeAck}); err == nil || !strings.Contains(err.Error(), "missing body") {
		t.Fatalf("got %v, want missing body", err)
	}
	if _, err := Encode("", Ack{}); err == nil {
		t.Fatal("Encode accepted an empty type")
	}
}

func TestHelloFromIncompatibleAgentGetsUpgradeErrorNotUnknownField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"a newer agent with extra fields is told to upgrade the control plane",
			`{"protocol_version":4,"agent":"a","token":"t","tunnel":"x","capabilities":["delta"]}`, "upgrade sajet-controlplane"},
		{"an old agent is told to upgrade itself",
			`{"protocol_version":0,"agent":"a","token":"t","tunnel":"x"}`, "agent protocol 0 is no longer supported; upgrade sajet-agent to a build speaking protocol 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeMessage(Envelope{Type: TypeHello, Body: json.RawMessage(tt.body)})
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != CodeUnsupportedVersion {
				t.Fatalf("got %v, want *Error{unsupported_version}", err)
			}
			if !strings.Contains(pe.Message, tt.want) {
				t.Errorf("got %q, want it to contain %q", pe.Message, tt.want)
			}
		})
	}
}
