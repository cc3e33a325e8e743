package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		applied int64
		version int64
		want    Decision
	}{
		{"a newer version is applied", 41, 42, Apply},
		{"a much newer version is applied", 1, 1 << 40, Apply},
		{"the first version on a fresh agent is applied", 0, 1, Apply},
		{"the same version is acked without applying", 42, 42, AckDuplicate},
		{"version zero on a fresh agent is a duplicate", 0, 0, AckDuplicate},
		{"an older version is acked without applying", 42, 41, AckStale},
		{"version zero after an apply is stale", 42, 0, AckStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Classify(tt.applied, Desired{Version: tt.version, Nonce: "n"})
			if got != tt.want {
				t.Errorf("Classify(%d, v%d) = %v, want %v", tt.applied, tt.version, got, tt.want)
			}
			if got.Applies() != (tt.want == Apply) {
				t.Errorf("%v.Applies() = %v", got, got.Applies())
			}
		})
	}
}

func TestDecisionStrings(t *testing.T) {
	t.Parallel()
	for d, want := range map[Decision]string{Apply: "apply", AckDuplicate: "ack_duplicate", AckStale: "ack_stale", 0: "unknown"} {
		if got := d.String(); got != want {
			t.Errorf("Decision(%d).String() = %q, want %q", int(d), got, want)
		}
	}
}

func TestNewNonceIsRandomTextAndUnique(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 1000 {
		n := NewNonce()
		if len(n) != 26 || strings.Trim(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Fatalf("nonce %q is not 26 base32 characters (128 bits)", n)
		}
		if seen[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seen[n] = true
		if err := (Desired{Nonce: n}).Validate(); err != nil {
			t.Fatalf("nonce %q does not validate: %v", n, err)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		version int
		wantMsg string // "" means supported
	}{
		{"the current version is supported", ProtocolVersion, ""},
		{"protocol 2 (hello inside yamux) is told to upgrade the agent", 2,
			"agent protocol 2 is no longer supported; upgrade sajet-agent to a build speaking protocol 3"},
		{"protocol 0 is told to upgrade the agent", 0,
			"agent protocol 0 is no longer supported; upgrade sajet-agent to a build speaking protocol 3"},
		{"a negative version is told to upgrade the agent", -3,
			"agent protocol -3 is no longer supported; upgrade sajet-agent to a build speaking protocol 3"},
		{"a newer version is told to upgrade the control plane", 4,
			"agent protocol 4 is newer than this control plane (protocol 3); upgrade sajet-controlplane first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckVersion(tt.version)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			if pe.Code != CodeUnsupportedVersion || pe.Message != tt.wantMsg {
				t.Errorf("got {%q, %q}, want {%q, %q}", pe.Code, pe.Message, CodeUnsupportedVersion, tt.wantMsg)
			}
			if err := pe.Validate(); err != nil {
				t.Errorf("the error is not a valid message: %v", err)
			}
			if pe.Retryable() {
				t.Error("unsupported_version is retryable")
			}
		})
	}
}

func TestErrorRetryable(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]bool{
		CodeRateLimited: true, CodeSuperseded: true,
		CodeUnauthorized: false, CodeUnknownTunnel: false, CodeUnsupportedVersion: false, CodeBadRequest: false, "new_code": false,
	} {
		if got := (Error{Code: code}).Retryable(); got != want {
			t.Errorf("Error{%s}.Retryable() = %v, want %v", code, got, want)
		}
	}
	if got := (Error{Code: CodeUnauthorized, Message: "bad token"}).Error(); got != "unauthorized: bad token" {
		t.Errorf("Error() = %q", got)
	}
}
