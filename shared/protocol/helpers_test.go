package protocol

import (
	"fmt"
	"strings"
	"time"
)

var testTime = time.Date(2026, 11, 29, 1, 2, 3, 456789000, time.UTC)

var testSHA = strings.Repeat("ab", 32)

// realisticRules builds n rules shaped like production ones: a customer
// domain routed to an HTTPS origin with a Host header and TLS name override,
// every third one with noTLSVerify.
func realisticRules(n int) []Rule {
	rules := make([]Rule, n)
	for i := range rules {
		host := fmt.Sprintf("shop-%05d.customer-%04d.example-tenant-domain.com", i, i%1000)
		r := Rule{
			Hostname: host,
			Service:  fmt.Sprintf("https://10.%d.%d.%d:8443", i/65536%256, i/256%256, i%256),
			OriginRequest: map[string]any{
				"httpHostHeader":   host,
				"originServerName": host,
				"connectTimeout":   "10s",
			},
		}
		if i%3 == 0 {
			r.OriginRequest["noTLSVerify"] = true
		}
		rules[i] = r
	}
	return rules
}

// sampleMessages is one valid instance of every message type.
func sampleMessages() []Message {
	return []Message{
		Hello{ProtocolVersion: ProtocolVersion, Agent: "edge-1", Token: "tok_secret", Tunnel: "sajet-main",
			Build: "v1.2.3", Applied: AppliedState{Version: 41, SHA256: testSHA}},
		Welcome{ProtocolVersion: ProtocolVersion, SessionEpoch: 7, ServerTime: testTime},
		Error{Code: CodeUnauthorized, Message: "token not recognised"},
		Desired{Version: 42, Nonce: "0123456789abcdef0123456789abcdef", IssuedAt: testTime, Rules: realisticRules(3)},
		Desired{Version: 0, Nonce: "n", IssuedAt: testTime, Rules: []Rule{}},
		Ack{Nonce: "n1", Version: 42, OK: true, SHA256: testSHA, Restarted: true, DurationMS: 1234, AppliedVersion: 42},
		Ack{Nonce: "n2", Version: 43, OK: false, Stage: StageVerify, Error: "readyConnections stayed 0", Restarted: true, DurationMS: 30000, AppliedVersion: 42},
		Status{SentAt: testTime, UptimeS: 3600, Applied: AppliedState{Version: 42, SHA256: testSHA}, AppliedAt: testTime,
			LastApply:  &ApplyResult{Version: 43, OK: false, Stage: StageValidate, Error: "rule #2: bad service", At: testTime},
			DriftCount: 2, Unit: UnitState{ActiveState: "active", SubState: "running", NRestarts: 3, ReadyConnections: 4, LastRestart: testTime}},
		Status{SentAt: testTime},
		ProbeRequest{URL: "https://backend.internal:8443/healthz", TimeoutMS: 5000},
		ProbeResult{URL: "https://backend.internal:8443/healthz", OK: true, Status: 200, DurationMS: 12},
		ProbeResult{URL: "http://10.0.0.1/", OK: false, Error: "dial tcp 10.0.0.1:80: connect: connection refused", DurationMS: 3},
		ProbeRequest{URL: "http://10.10.10.105:8069", TimeoutMS: 5000, Hostname: "www.impulse-max.com"},
		ProbeResult{URL: "http://10.10.10.105:8069", OK: false, Error: "dial tcp 10.10.10.105:8069: connect: connection refused",
			DurationMS: 1, Hostname: "www.impulse-max.com", Failure: ProbeRefused},
		ProbeResult{URL: "http://10.10.10.105:8069", OK: true, Status: 502, DurationMS: 4, Hostname: "www.impulse-max.com"},
	}
}
