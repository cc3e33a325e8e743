package protocol

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Wire limits. They bound what a peer can make the other side store or log;
// semantic checks (hostname syntax, service schemes) belong to
// shared/hostname and shared/ingress, which run before a rule is stored and
// again in the agent's validate stage.
const (
	MaxHostnameLen = 253  // DNS limit on a presentation-format name
	MaxServiceLen  = 2048 // an origin URL; matches common URL length limits
	MaxTokenLen    = 256
	MaxNonceLen    = 64
	MaxNameLen     = 100 // agent, tunnel, build, boot ID
	MaxErrorLen    = 4096
	MaxStateLen    = 64 // systemd ActiveState/SubState, error codes
	MaxURLLen      = 2048
	// MaxRejections bounds Ack.Rejected: a NACK names at most this many rules (the control
	// plane leaves them out and the next NACK names the rest).
	MaxRejections = 1000
	// MaxRejectionErrorLen bounds each rejection's error: one sentence about one rule, so that a
	// NACK naming MaxRejections rules still fits MaxAckFrameSize.
	MaxRejectionErrorLen = 1024
	// MaxBaseHostnames bounds Base.Hostnames: an operator's own rules, not a tenant list.
	MaxBaseHostnames = 10_000
	// MaxRules bounds the rule count of a Desired. In practice MaxFrameSize
	// binds first (about 28,000 realistic rules fit in 8 MiB); the count
	// limit keeps a tiny-rule frame from becoming a huge slice.
	MaxRules = 100_000
	// Probe timeouts: long enough for a slow TLS handshake, short enough
	// that a diagnostics request does not hang.
	MinProbeTimeoutMS = 100
	MaxProbeTimeoutMS = 30_000
	// A probe reads at most MaxProbeBodyBytes of a response body and accepts response headers of
	// at most MaxProbeHeaderBytes: the answer's status is the point, and a backend must not be
	// able to make the agent buffer its whole response.
	MaxProbeBodyBytes   = 64 << 10
	MaxProbeHeaderBytes = 64 << 10
)

// FieldError is a validation failure of one field; Field is the JSON path
// ("rules[3].hostname").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func checkLen(field, s string, max int, required bool) error {
	if required && s == "" {
		return fieldErr(field, "required")
	}
	if len(s) > max {
		return fieldErr(field, "%d bytes, limit %d", len(s), max)
	}
	return nil
}

func checkNonNegative(field string, v int64) error {
	if v < 0 {
		return fieldErr(field, "must be >= 0, got %d", v)
	}
	return nil
}

// checkSHA256 accepts "" (nothing applied / unknown) or 64 lowercase hex
// digits, the form sha256.Sum256 + hex.EncodeToString produce.
func checkSHA256(field, s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "" {
		return fieldErr(field, "must be 64 lowercase hex digits")
	}
	return nil
}

// checkTime rejects times encoding/json accepts but cannot write back: an
// RFC 3339 offset of ±24:00 parses, yet MarshalJSON refuses it (found by
// FuzzReadFrame, testdata/fuzz/FuzzReadFrame/welcome_tz_offset_24h). A
// message that validates must re-encode, or relaying or storing it fails later.
func checkTime(field string, t time.Time) error {
	if _, err := t.MarshalJSON(); err != nil {
		return fieldErr(field, "not representable: %v", err)
	}
	return nil
}

func checkStage(field, s string) error {
	switch s {
	case StageValidate, StageWrite, StageRestart, StageVerify, StageRollback:
		return nil
	case "":
		return fieldErr(field, "required on a NACK")
	}
	return fieldErr(field, "unknown stage %.64q (want validate, write, restart, verify or rollback)", s)
}

// Validate implements Message. It does not judge ProtocolVersion beyond >= 0:
// CheckVersion does, so an old agent gets "upgrade", not "bad request".
func (h Hello) Validate() error {
	return errors.Join(
		checkNonNegative("protocol_version", int64(h.ProtocolVersion)),
		checkLen("agent", h.Agent, MaxNameLen, true),
		checkLen("token", h.Token, MaxTokenLen, true),
		checkLen("tunnel", h.Tunnel, MaxNameLen, true),
		checkLen("build", h.Build, MaxNameLen, false),
		h.Applied.validate("applied"),
	)
}

func (a AppliedState) validate(field string) error {
	return errors.Join(
		checkNonNegative(field+".version", a.Version),
		checkSHA256(field+".sha256", a.SHA256),
	)
}

// Validate implements Message.
func (w Welcome) Validate() error {
	var errs []error
	if w.ProtocolVersion < MinSupportedVersion || w.ProtocolVersion > ProtocolVersion {
		errs = append(errs, fieldErr("protocol_version", "%d not in %s", w.ProtocolVersion, versionRange()))
	}
	if w.SessionEpoch < 1 {
		errs = append(errs, fieldErr("session_epoch", "must be >= 1, got %d", w.SessionEpoch))
	}
	errs = append(errs, checkTime("server_time", w.ServerTime))
	return errors.Join(errs...)
}

// Validate implements Message. Unknown codes are accepted (a newer control
// plane may add some; the agent treats them as not retryable).
func (e Error) Validate() error {
	return errors.Join(
		checkLen("code", e.Code, MaxStateLen, true),
		checkLen("message", e.Message, MaxErrorLen, false),
	)
}

// Validate implements Message. It stops at the first bad rule: one clear
// error beats 100,000 joined ones.
func (d Desired) Validate() error {
	if err := errors.Join(
		checkNonNegative("version", d.Version),
		checkLen("nonce", d.Nonce, MaxNonceLen, true),
		checkTime("issued_at", d.IssuedAt),
	); err != nil {
		return err
	}
	if len(d.Rules) > MaxRules {
		return fieldErr("rules", "%d rules, limit %d", len(d.Rules), MaxRules)
	}
	for i, r := range d.Rules {
		// The field path is formatted only for a failing rule: Sprintf per
		// rule was measurable on a 10,000-rule push.
		if r.Hostname == "" || len(r.Hostname) > MaxHostnameLen || r.Service == "" || len(r.Service) > MaxServiceLen || len(r.Path) > MaxServiceLen {
			return validateRule(fmt.Sprintf("rules[%d]", i), r)
		}
	}
	return nil
}

func validateRule(field string, r Rule) error {
	return errors.Join(
		checkLen(field+".hostname", r.Hostname, MaxHostnameLen, true),
		checkLen(field+".path", r.Path, MaxServiceLen, false),
		checkLen(field+".service", r.Service, MaxServiceLen, true),
	)
}

// Validate implements Message. A NACK (OK=false) must name a known stage and
// carry an error; an ACK must carry neither.
func (a Ack) Validate() error {
	errs := []error{
		checkLen("nonce", a.Nonce, MaxNonceLen, true),
		checkNonNegative("version", a.Version),
		checkNonNegative("applied_version", a.AppliedVersion),
		checkNonNegative("duration_ms", a.DurationMS),
		checkSHA256("sha256", a.SHA256),
		checkLen("error", a.Error, MaxErrorLen, !a.OK),
	}
	if a.OK {
		if a.Stage != "" {
			errs = append(errs, fieldErr("stage", "only allowed on a NACK"))
		}
		if a.Error != "" {
			errs = append(errs, fieldErr("error", "only allowed on a NACK"))
		}
	} else {
		errs = append(errs, checkStage("stage", a.Stage))
	}
	if len(a.Rejected) > 0 && (a.OK || a.Stage != StageValidate) {
		errs = append(errs, fieldErr("rejected", "only allowed on a NACK at validate"))
	}
	if len(a.Rejected) > MaxRejections {
		errs = append(errs, fieldErr("rejected", "%d entries, limit %d", len(a.Rejected), MaxRejections))
	} else {
		for i, r := range a.Rejected {
			f := fmt.Sprintf("rejected[%d]", i)
			errs = append(errs,
				checkLen(f+".hostname", r.Hostname, MaxHostnameLen, true),
				checkLen(f+".error", r.Error, MaxRejectionErrorLen, true),
				checkReason(f+".reason", r.Reason))
		}
	}
	return errors.Join(errs...)
}

func checkReason(field, s string) error {
	switch s {
	case RejectInvalid, RejectBaseConflict, RejectDuplicate, RejectCloudflared:
		return nil
	}
	return fieldErr(field, "unknown reason %.64q", s)
}

// Validate implements Message.
func (b Base) Validate() error {
	errs := []error{checkSHA256("sha256", b.SHA256)}
	if len(b.Hostnames) > MaxBaseHostnames {
		return errors.Join(append(errs, fieldErr("hostnames", "%d entries, limit %d", len(b.Hostnames), MaxBaseHostnames))...)
	}
	for i, h := range b.Hostnames {
		errs = append(errs, checkLen(fmt.Sprintf("hostnames[%d]", i), h, MaxHostnameLen, true))
	}
	return errors.Join(errs...)
}

// Validate implements Message.
func (s Status) Validate() error {
	errs := []error{
		checkTime("sent_at", s.SentAt),
		checkTime("applied_at", s.AppliedAt),
		checkTime("unit.last_restart", s.Unit.LastRestart),
		checkNonNegative("uptime_s", s.UptimeS),
		s.Applied.validate("applied"),
		checkNonNegative("drift_count", s.DriftCount),
		checkLen("unit.active_state", s.Unit.ActiveState, MaxStateLen, false),
		checkLen("unit.sub_state", s.Unit.SubState, MaxStateLen, false),
		checkNonNegative("unit.n_restarts", s.Unit.NRestarts),
		checkNonNegative("unit.ready_connections", int64(s.Unit.ReadyConnections)),
	}
	if la := s.LastApply; la != nil {
		errs = append(errs,
			checkNonNegative("last_apply.version", la.Version),
			checkTime("last_apply.at", la.At),
			checkLen("last_apply.error", la.Error, MaxErrorLen, false),
		)
		if la.OK && la.Stage != "" {
			errs = append(errs, fieldErr("last_apply.stage", "only allowed on a failed apply"))
		}
		if !la.OK {
			errs = append(errs, checkStage("last_apply.stage", la.Stage))
		}
	}
	return errors.Join(errs...)
}

// Validate implements Message. Only absolute http and https URLs with a host
// are probed: the agent must not become a proxy for file:, unix: or other
// schemes on the tunnel host.
func (p ProbeRequest) Validate() error {
	return errors.Join(
		checkProbeURL("url", p.URL),
		checkProbeTimeout("timeout_ms", p.TimeoutMS),
		checkLen("hostname", p.Hostname, MaxHostnameLen, false),
	)
}

func checkProbeURL(field, raw string) error {
	if err := checkLen(field, raw, MaxURLLen, true); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fieldErr(field, "not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fieldErr(field, "scheme %.20q not allowed (want http or https)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fieldErr(field, "missing host")
	}
	if u.User != nil {
		return fieldErr(field, "credentials in URL not allowed")
	}
	return nil
}

func checkProbeTimeout(field string, ms int) error {
	if ms < MinProbeTimeoutMS || ms > MaxProbeTimeoutMS {
		return fieldErr(field, "%d not in %d..%d", ms, MinProbeTimeoutMS, MaxProbeTimeoutMS)
	}
	return nil
}

// Validate implements Message. The URL is only length-checked: a result
// echoes what was asked and must be storable even if odd. Failure is a code of at most
// MaxStateLen bytes; codes this build does not know are accepted (a newer agent's).
func (p ProbeResult) Validate() error {
	errs := []error{
		checkLen("url", p.URL, MaxURLLen, true),
		checkNonNegative("duration_ms", p.DurationMS),
		checkLen("error", p.Error, MaxErrorLen, false),
	}
	if p.Status != 0 && (p.Status < 100 || p.Status > 999) {
		errs = append(errs, fieldErr("status", "%d is not an HTTP status", p.Status))
	}
	if !p.OK && p.Error == "" {
		errs = append(errs, fieldErr("error", "required when ok is false"))
	}
	errs = append(errs, checkLen("hostname", p.Hostname, MaxHostnameLen, false),
		checkLen("failure", p.Failure, MaxStateLen, false))
	if p.OK && p.Failure != "" {
		errs = append(errs, fieldErr("failure", "only allowed when ok is false"))
	}
	return errors.Join(errs...)
}
