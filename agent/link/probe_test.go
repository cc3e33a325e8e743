package link_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/agent/link"
	"github.com/jeturing/sajet-domains/shared/ingress"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Probe implements link.Handler for the link tests that do not probe.
func (handler) Probe(_ context.Context, req protocol.ProbeRequest) protocol.ProbeResult {
	return link.NotInRules(req)
}

func TestMatchRule(t *testing.T) {
	t.Parallel()
	rules := []ingress.Rule{
		{Hostname: "impulse-max.sajet.us", Service: "http://10.10.10.105:8069"},
		{Hostname: "www.impulse-max.com", Service: "http://10.10.10.105:8069"},
		{Hostname: "shop.impulse-max.com", Path: "^/api", Service: "http://10.10.10.106:8080"},
	}
	tests := []struct {
		name string
		req  protocol.ProbeRequest
		host string // the rule found; "" when refused
	}{
		{"the service of the named hostname's rule", protocol.ProbeRequest{URL: "http://10.10.10.105:8069", Hostname: "www.impulse-max.com"}, "www.impulse-max.com"},
		{"hostnames compare as cloudflared's alias does", protocol.ProbeRequest{URL: "http://10.10.10.105:8069", Hostname: "WWW.Impulse-Max.com."}, "www.impulse-max.com"},
		{"without a hostname, the first rule of the service", protocol.ProbeRequest{URL: "http://10.10.10.105:8069"}, "impulse-max.sajet.us"},
		{"another hostname is refused", protocol.ProbeRequest{URL: "http://10.10.10.105:8069", Hostname: "evil.example.com"}, ""},
		{"another URL is refused", protocol.ProbeRequest{URL: "http://169.254.169.254", Hostname: "www.impulse-max.com"}, ""},
		{"a URL that only starts like a service is refused", protocol.ProbeRequest{URL: "http://10.10.10.105:8069/web/database/manager", Hostname: "www.impulse-max.com"}, ""},
		{"a path rule is never probed (cloudflared would match it by path)", protocol.ProbeRequest{URL: "http://10.10.10.106:8080", Hostname: "shop.impulse-max.com"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok := link.MatchRule(rules, tc.req)
			if ok != (tc.host != "") || r.Hostname != tc.host {
				t.Errorf("MatchRule = %+v, %v; want the rule of %q", r, ok, tc.host)
			}
		})
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rawServer accepts connections and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// Every way a backend can fail is reported as what it is, the way cloudflared would meet it.
func TestProbeServiceReportsWhatTheBackendDoes(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/web/login", http.StatusSeeOther) // what Odoo answers at /
	}))
	t.Cleanup(ok.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	t.Cleanup(bad.Close)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for range 1 << 12 { // 128 MiB if the prober read it all
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	selfSigned := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(selfSigned.Close)
	garbage := rawServer(t, func(c net.Conn) { _, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n\r\n")) })
	hangUp := rawServer(t, func(c net.Conn) { _, _ = io.ReadFull(c, make([]byte, 16)) })

	tests := []struct {
		name    string
		rule    ingress.Rule
		timeout time.Duration
		ok      bool
		status  int
		failure string
	}{
		{"a backend that answers", ingress.Rule{Hostname: "www.impulse-max.com", Service: ok.URL}, 5 * time.Second, true, http.StatusSeeOther, ""},
		{"a backend answering 502 still answered", ingress.Rule{Hostname: "www.impulse-max.com", Service: bad.URL}, 5 * time.Second, true, http.StatusBadGateway, ""},
		{"a backend that is down", ingress.Rule{Hostname: "www.impulse-max.com", Service: "http://" + closedAddr(t)}, 5 * time.Second, false, 0, protocol.ProbeRefused},
		{"a backend slower than the timeout", ingress.Rule{Hostname: "www.impulse-max.com", Service: slow.URL}, 300 * time.Millisecond, false, 0, protocol.ProbeTimeout},
		{"an endless body is read only up to the limit", ingress.Rule{Hostname: "www.impulse-max.com", Service: endless.URL}, 10 * time.Second, true, http.StatusOK, ""},
		{"an origin certificate cloudflared would not trust", ingress.Rule{Hostname: "www.impulse-max.com", Service: selfSigned.URL}, 5 * time.Second, false, 0, protocol.ProbeTLS},
		{"noTLSVerify, as cloudflared honours it", ingress.Rule{Hostname: "www.impulse-max.com", Service: selfSigned.URL,
			OriginRequest: map[string]any{"noTLSVerify": true}}, 5 * time.Second, true, http.StatusOK, ""},
		{"https to a plain HTTP backend", ingress.Rule{Hostname: "www.impulse-max.com", Service: strings.Replace(ok.URL, "http:", "https:", 1)}, 5 * time.Second, false, 0, protocol.ProbeProtocol},
		{"a service that does not speak HTTP", ingress.Rule{Hostname: "www.impulse-max.com", Service: "http://" + garbage}, 5 * time.Second, false, 0, protocol.ProbeProtocol},
		{"a service that hangs up", ingress.Rule{Hostname: "www.impulse-max.com", Service: "http://" + hangUp}, 5 * time.Second, false, 0, protocol.ProbeReset},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			res := link.ProbeService(ctx, tc.rule)
			if res.OK != tc.ok || res.Status != tc.status || res.Failure != tc.failure {
				t.Errorf("ProbeService = %+v; want ok=%v status=%d failure=%q", res, tc.ok, tc.status, tc.failure)
			}
			if !res.OK && res.Error == "" {
				t.Error("a failure without its detail")
			}
			if err := res.Validate(); err != nil {
				t.Errorf("the result does not validate: %v", err)
			}
		})
	}
}

// The backend sees the Host a visitor's request carries through cloudflared: the rule's
// hostname, or the rule's httpHostHeader.
func TestProbeServiceSendsTheHostCloudflaredSends(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, want string
		origin     map[string]any
	}{
		{"the rule's hostname", "www.impulse-max.com", nil},
		{"httpHostHeader replaces it", "odoo.internal", map[string]any{"httpHostHeader": "odoo.internal"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hosts := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { hosts <- r.Host }))
			t.Cleanup(srv.Close)
			res := link.ProbeService(t.Context(), ingress.Rule{Hostname: "www.impulse-max.com", Service: srv.URL, OriginRequest: tc.origin})
			if !res.OK {
				t.Fatalf("probe = %+v", res)
			}
			if h := <-hosts; h != tc.want {
				t.Errorf("Host %q, want %q", h, tc.want)
			}
		})
	}
}

// slowHandler answers probes only when released, so a test can hold probes in flight.
type slowHandler struct {
	handler
	release chan struct{}
	started chan struct{}
}

func (h slowHandler) Probe(ctx context.Context, req protocol.ProbeRequest) protocol.ProbeResult {
	h.started <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return protocol.ProbeResult{URL: req.URL, OK: true, Status: 200}
}

// The agent's own probe budget holds whatever the control plane asks: probes beyond MaxProbes in
// flight, or beyond the burst, are answered rate_limited at once, without reaching the handler.
func TestProbesAreBoundedOnTheAgent(t *testing.T) {
	t.Parallel()
	sessions := make(chan *yamux.Session, 1)
	addr := serve(t, func(conn net.Conn) {
		if _, err := protocol.ReadMessage(conn, protocol.MaxHelloFrameSize); err != nil {
			return
		}
		_ = protocol.WriteMessage(conn, protocol.Welcome{ProtocolVersion: protocol.ProtocolVersion, SessionEpoch: 1, ServerTime: time.Now().UTC()})
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		ys, err := yamux.Server(conn, cfg)
		if err != nil {
			return
		}
		go func() { // the agent's reports
			for {
				st, err := ys.AcceptStream()
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, st)
				st.Close()
			}
		}()
		sessions <- ys
		<-ys.CloseChan()
	})
	h := slowHandler{release: make(chan struct{}), started: make(chan struct{}, 16)}
	l := link.New(link.Config{Addr: addr, TLS: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, //nolint:gosec // test certificate
		MinBackoff: time.Hour, MaxBackoff: time.Hour, MaxProbes: 2, ProbeBurst: 3, ProbeInterval: time.Hour,
		Logger: slog.New(slog.DiscardHandler)}, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var ys *yamux.Session
	select {
	case ys = <-sessions:
	case <-time.After(15 * time.Second):
		t.Fatal("the agent did not connect")
	}
	ask := func() chan protocol.ProbeResult {
		out := make(chan protocol.ProbeResult, 1)
		go func() {
			st, err := ys.OpenStream()
			if err != nil {
				t.Error(err)
				close(out)
				return
			}
			defer st.Close()
			_ = st.SetDeadline(time.Now().Add(20 * time.Second))
			_ = protocol.WriteMessage(st, protocol.ProbeRequest{URL: "http://10.10.10.105:8069", TimeoutMS: 10_000, Hostname: "www.x.com"})
			m, err := protocol.ReadMessage(st, protocol.MaxProbeResultFrameSize)
			if err != nil {
				t.Error(err)
				close(out)
				return
			}
			out <- m.(protocol.ProbeResult)
		}()
		return out
	}
	first, second := ask(), ask()
	<-h.started
	<-h.started
	if res := <-ask(); res.Failure != protocol.ProbeRateLimited || res.OK {
		t.Errorf("a third probe while two run = %+v, want rate_limited", res)
	}
	close(h.release)
	for _, c := range []chan protocol.ProbeResult{first, second} {
		if res := <-c; !res.OK || res.Hostname != "www.x.com" {
			t.Errorf("a probe within the budget = %+v", res)
		}
	}
	// The burst of 3 is spent (two ran, one was refused by the slots but took no token): one more
	// runs, the next is refused by the rate.
	if res := <-ask(); !res.OK {
		t.Errorf("the third token = %+v", res)
	}
	if res := <-ask(); res.Failure != protocol.ProbeRateLimited {
		t.Errorf("a probe over the burst = %+v, want rate_limited", res)
	}
	if n := len(h.started); n != 1 {
		t.Errorf("%d refused probes reached the handler", n)
	}
}
