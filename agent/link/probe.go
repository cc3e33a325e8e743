package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/jeturing/sajet-domains/internal/textlimit"
	"github.com/jeturing/sajet-domains/shared/ingress"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Probes answer "does the request get from this tunnel host to the customer's backend?" for the
// control plane's diagnostics. Three rules keep them from being anything else:
//
//   - Only a service in the managed rules the agent applies is probed (MatchRule, called by the
//     Handler with the rules in force): the URL on the wire is a key to look a rule up by, never
//     a URL to fetch, so a control plane (or whoever took it over) cannot make the agent a proxy
//     into the tunnel host's network. The operator's own rules in the base file are never probed.
//   - Probes are bounded: DefaultMaxProbes at once and DefaultProbeBurst then one per
//     DefaultProbeInterval per agent (the rest are answered rate_limited without a request), the
//     request's timeout (at most protocol.MaxProbeTimeoutMS), and a response read up to
//     protocol.MaxProbeHeaderBytes of headers and protocol.MaxProbeBodyBytes of body.
//   - The request is what cloudflared would send (ProbeService): the rule's service, Host: the
//     rule's hostname, and the originRequest settings that change how cloudflared reaches the
//     origin.

// Probe budget of one agent; Config overrides them.
const (
	DefaultMaxProbes     = 4
	DefaultProbeBurst    = 10
	DefaultProbeInterval = 500 * time.Millisecond
)

// probeGate holds the agent's probe budget.
type probeGate struct {
	slots chan struct{}
	rate  *rate.Limiter
}

func newProbeGate(max, burst int, every time.Duration) *probeGate {
	return &probeGate{slots: make(chan struct{}, max), rate: rate.NewLimiter(rate.Every(every), burst)}
}

// probe runs one probe through the handler within the agent's budget. The answer always echoes
// the request's URL and hostname and always validates, whatever the handler returns.
func (l *Link) probe(ctx context.Context, req protocol.ProbeRequest) protocol.ProbeResult {
	refuse := func(code, msg string) protocol.ProbeResult {
		return protocol.ProbeResult{URL: req.URL, Hostname: req.Hostname, Failure: code, Error: msg}
	}
	select {
	case l.probes.slots <- struct{}{}:
		defer func() { <-l.probes.slots }()
	default:
		return refuse(protocol.ProbeRateLimited, fmt.Sprintf("%d probes are already running on this agent", cap(l.probes.slots)))
	}
	if !l.probes.rate.Allow() {
		return refuse(protocol.ProbeRateLimited, "too many probes on this agent; retry in a few seconds")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
	defer cancel()
	res := l.h.Probe(ctx, req)
	res.URL, res.Hostname = req.URL, req.Hostname
	res.Error = textlimit.Truncate(res.Error, protocol.MaxErrorLen)
	if res.OK {
		res.Failure, res.Error = "", ""
	} else if res.Error == "" {
		res.Error = "probe failed"
	}
	if res.Failure != "" && len(res.Failure) > protocol.MaxStateLen {
		res.Failure = protocol.ProbeError
	}
	if res.DurationMS < 0 {
		res.DurationMS = 0
	}
	if err := res.Validate(); err != nil {
		return refuse(protocol.ProbeError, "the agent produced an invalid probe result: "+err.Error())
	}
	return res
}

// MatchRule finds the managed rule a probe asks for: the rule whose service is exactly req.URL
// and, when req names one, whose hostname is req.Hostname (compared as cloudflared compares a
// rule's lower-case alias). ok is false when no rule matches: the agent refuses the probe.
func MatchRule(rules []ingress.Rule, req protocol.ProbeRequest) (rule ingress.Rule, ok bool) {
	host := strings.ToLower(strings.TrimSuffix(req.Hostname, "."))
	for _, r := range rules {
		if r.Service != req.URL || r.Path != "" {
			continue
		}
		if host == "" || strings.ToLower(r.Hostname) == host {
			return r, true
		}
	}
	return ingress.Rule{}, false
}

// NotInRules is the answer to a probe MatchRule found no rule for.
func NotInRules(req protocol.ProbeRequest) protocol.ProbeResult {
	return protocol.ProbeResult{URL: req.URL, Hostname: req.Hostname, Failure: protocol.ProbeNotInRules,
		Error: "this agent does not route " + describeProbe(req) + ": it probes only services of the rules it applies"}
}

func describeProbe(req protocol.ProbeRequest) string {
	if req.Hostname == "" {
		return textlimit.Truncate(req.URL, 300)
	}
	return textlimit.Truncate(req.Hostname, protocol.MaxHostnameLen) + " to " + textlimit.Truncate(req.URL, 300)
}

// originSettings are the originRequest keys that change how cloudflared reaches an HTTP origin
// (cloudflared ingress/origin_service.go newHTTPTransport, ingress/config.go defaults).
type originSettings struct {
	connectTimeout, tlsTimeout time.Duration
	noTLSVerify, http2         bool
	serverName, hostHeader     string
	caPool                     string
}

func settingsOf(r ingress.Rule) originSettings {
	s := originSettings{connectTimeout: 30 * time.Second, tlsTimeout: 10 * time.Second}
	o := r.OriginRequest
	if d, ok := duration(o["connectTimeout"]); ok {
		s.connectTimeout = d
	}
	if d, ok := duration(o["tlsTimeout"]); ok {
		s.tlsTimeout = d
	}
	s.noTLSVerify, _ = o["noTLSVerify"].(bool)
	s.http2, _ = o["http2Origin"].(bool)
	s.serverName, _ = o["originServerName"].(string)
	s.hostHeader, _ = o["httpHostHeader"].(string)
	s.caPool, _ = o["caPool"].(string)
	return s
}

// duration reads a cloudflared duration: a Go duration string in YAML, whole seconds in JSON.
func duration(v any) (time.Duration, bool) {
	switch x := v.(type) {
	case string:
		d, err := time.ParseDuration(x)
		return d, err == nil && d > 0
	case float64:
		return time.Duration(x * float64(time.Second)), x > 0
	case int:
		return time.Duration(x) * time.Second, x > 0
	}
	return 0, false
}

// ProbeService sends one request to rule's service the way cloudflared forwards a visitor's: GET /
// with Host: the rule's hostname (or its httpHostHeader), the origin's certificate checked against
// the system roots and caPool unless noTLSVerify, SNI from originServerName when set, cloudflared's
// connect and TLS timeouts, the proxy from the environment, redirects returned rather than
// followed. ctx bounds the whole exchange. Any HTTP response is OK (its status is reported); a
// failure is classified (protocol.Probe*).
func ProbeService(ctx context.Context, rule ingress.Rule) protocol.ProbeResult {
	res := protocol.ProbeResult{URL: rule.Service, Hostname: rule.Hostname}
	set := settingsOf(rule)
	start := time.Now()
	fail := func(code string, err error) protocol.ProbeResult {
		res.DurationMS = time.Since(start).Milliseconds()
		res.Failure, res.Error = code, textlimit.Truncate(err.Error(), protocol.MaxErrorLen)
		return res
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: set.noTLSVerify, ServerName: set.serverName} //nolint:gosec // cloudflared's noTLSVerify, the operator's choice
	if set.caPool != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(set.caPool)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			return fail(protocol.ProbeTLS, fmt.Errorf("caPool %s: cannot load its certificates: %v", set.caPool, err))
		}
		tlsCfg.RootCAs = pool
	}
	transport := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: set.connectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:    set.tlsTimeout,
		TLSClientConfig:        tlsCfg,
		ForceAttemptHTTP2:      set.http2,
		MaxResponseHeaderBytes: protocol.MaxProbeHeaderBytes,
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  0, // the ctx deadline bounds the wait for the answer
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(rule.Service, "/")+"/", nil)
	if err != nil {
		return fail(protocol.ProbeInvalid, err)
	}
	req.Host = rule.Hostname
	if set.hostHeader != "" {
		req.Host = set.hostHeader
	}
	req.Header.Set("User-Agent", "sajet-agent-probe") // names the prober in the backend's access log
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("no answer within %s: %w", time.Since(start).Round(time.Millisecond), err)
		}
		return fail(classify(err), err)
	}
	defer resp.Body.Close()
	// Read a little of the body (bounded), as a visitor's browser would start to: a backend that
	// sends headers and then stalls or resets is found out too, within the deadline.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, protocol.MaxProbeBodyBytes)); err != nil && ctx.Err() != nil {
		return fail(protocol.ProbeTimeout, fmt.Errorf("the response body stalled: %w", err))
	}
	res.DurationMS = time.Since(start).Milliseconds()
	res.OK, res.Status = true, resp.StatusCode
	return res
}

// classify turns a transport error into a protocol.Probe* code.
func classify(err error) string {
	var dnsErr *net.DNSError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var certErr x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var alert tls.AlertError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return protocol.ProbeTimeout
	case errors.As(err, &dnsErr):
		return protocol.ProbeDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return protocol.ProbeRefused
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return protocol.ProbeReset
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return protocol.ProbeUnreachable
	case errors.As(err, &hostErr) || errors.As(err, &authErr) || errors.As(err, &certErr) || errors.As(err, &verifyErr) ||
		errors.As(err, &recordErr) || errors.As(err, &alert) || strings.Contains(err.Error(), "tls: "):
		return protocol.ProbeTLS
	case strings.Contains(err.Error(), "malformed HTTP") || strings.Contains(err.Error(), "HTTP response to HTTPS"):
		return protocol.ProbeProtocol
	}
	return protocol.ProbeError
}
