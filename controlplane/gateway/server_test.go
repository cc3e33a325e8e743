package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

type gw struct {
	addr   string
	st     *store.Store
	tunnel store.Tunnel
	tenant store.TenantDeployment
	cust   store.Customer
	token  string
	agent  store.Agent
	srv    *gateway.Server
}

// newToken returns a token shaped like the ones POST /api/agents issues.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "sja_" + base64.RawURLEncoding.EncodeToString(b)
}

func startGateway(t *testing.T) *gw {
	t.Helper()
	return startGatewayWith(t, nil)
}

// startGatewayWith is startGateway with the server adjusted by tune before it serves.
func startGatewayWith(t *testing.T, tune func(*gateway.Server)) *gw {
	t.Helper()
	pool, url := storetest.NewDBURL(t)
	st := store.New(pool)
	ctx := context.Background()
	r := storetest.NewRouting(t, st, store.Customer{})
	c, tun, td := r.Customer, r.Tunnel, r.Tenant
	token := newToken()
	sum := sha256.Sum256([]byte(token))
	agent, err := st.CreateAgent(ctx, "t", tun.ID, "pct-105", sum[:])
	if err != nil {
		t.Fatal(err)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{gatewaytest.Certificate(t)}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	srv := &gateway.Server{Store: st, AckTimeout: 5 * time.Second, Failures: authlimit.New(4, time.Minute), Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	if tune != nil {
		tune(srv)
	}
	cfg, _ := pgx.ParseConfig(url)
	runCtx, cancel := context.WithCancel(context.Background())
	go func() { _ = srv.Serve(runCtx, ln) }()
	go func() { _ = (&gateway.Listener{ConnConfig: cfg, ReconcileInterval: time.Hour}).Run(runCtx, srv) }()
	t.Cleanup(cancel)
	return &gw{addr: ln.Addr().String(), st: st, tunnel: tun, tenant: td, cust: c, token: token, agent: agent, srv: srv}
}

func (g *gw) insert(t *testing.T, host, sub string) store.Domain {
	t.Helper()
	d, err := g.st.InsertDomain(context.Background(), store.NewDomain{CustomerID: g.cust.ID, TenantDeploymentID: &g.tenant.ID,
		ExternalDomain: host, Zone: "sajet.us", Subdomains: []string{sub}, Token: "t", CreatedBy: "t", PlanQuota: map[string]int{"basic": 10}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGatewayPushesChangesAndRecordsAcks(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	d1 := g.insert(t, "www.impulse-max.com", "impulse-max") // version 1 exists before the agent connects

	agent, reply := gatewaytest.Dial(t, g.addr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105",
		Token: g.token, Tunnel: "tcs-sajet-tunnel", Build: "test"})
	if _, isWelcome := reply.(protocol.Welcome); !isWelcome {
		t.Fatalf("hello answered with %#v", reply)
	}
	first := agent.Next(t, gatewaytest.ACK)
	if first.Version != 1 || len(first.Rules) != 2 || first.Rules[0].Hostname != "impulse-max.sajet.us" {
		t.Fatalf("first push %+v, want version 1 with both hostnames", first)
	}
	testwait.Until(t, 15*time.Second, "the domain's tunnel_ingress step", func() bool {
		d, _ := g.st.GetDomain(context.Background(), d1.ID)
		return d.TunnelIngressConfigured
	})

	// A change committed now reaches the connected agent through NOTIFY.
	g.insert(t, "www.techeels.io", "techeels")
	second := agent.Next(t, func(d protocol.Desired) protocol.Ack {
		return protocol.Ack{Nonce: d.Nonce, Version: d.Version, OK: false, Stage: protocol.StageValidate, Error: "rule #3: nope", AppliedVersion: 1}
	})
	if second.Version != 2 || len(second.Rules) != 4 {
		t.Fatalf("second push %+v, want version 2 with four hostnames", second)
	}
	testwait.Until(t, 15*time.Second, "the NACK on the agent's row", func() bool {
		as, err := g.st.ListAgents(context.Background(), 0, 10)
		if err != nil {
			t.Log(err)
		}
		return len(as) == 1 && as[0].LastError != nil && *as[0].AppliedVersion == 1
	})
	metrics := gather(t, g.srv)
	for series, want := range map[string]float64{
		`sajet_gateway_push_duration_seconds_count{result="ack"}`:  1,
		`sajet_gateway_push_duration_seconds_count{result="nack"}`: 1,
		`sajet_gateway_sessions`:                                   1,
	} {
		if metrics[series] != want {
			t.Errorf("%s = %v, want %v", series, metrics[series], want)
		}
	}
}

// gather reads the server's metrics as "name{labels}" → value.
func gather(t *testing.T, srv *gateway.Server) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := ""
			for _, l := range m.GetLabel() {
				labels += fmt.Sprintf(`%s=%q`, l.GetName(), l.GetValue())
			}
			if labels != "" {
				labels = "{" + labels + "}"
			}
			switch {
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				out[f.GetName()+labels] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[f.GetName()+labels] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestGatewayRefusesBadHellos(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	unknown := newToken()
	v := protocol.ProtocolVersion
	tests := []struct {
		name  string
		hello protocol.Hello
		code  string
	}{
		{"an unknown token is unauthorized", protocol.Hello{ProtocolVersion: v, Agent: "x", Token: unknown, Tunnel: "tcs-sajet-tunnel"}, protocol.CodeUnauthorized},
		{"another tunnel's name is refused", protocol.Hello{ProtocolVersion: v, Agent: "x", Token: g.token, Tunnel: "other"}, protocol.CodeUnknownTunnel},
		{"an old protocol is told to upgrade", protocol.Hello{ProtocolVersion: 2, Agent: "x", Token: g.token, Tunnel: "tcs-sajet-tunnel"}, protocol.CodeUnsupportedVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, reply := gatewaytest.Dial(t, g.addr, tc.hello)
			e, isErr := reply.(protocol.Error)
			if !isErr || e.Code != tc.code {
				t.Errorf("reply %#v, want error %s", reply, tc.code)
			}
		})
	}
	// The server counts a refusal after the agent has its answer, so wait for the counters.
	for _, tc := range tests {
		series := `sajet_gateway_refused_handshakes_total{code="` + tc.code + `"}`
		testwait.Until(t, 15*time.Second, series, func() bool { return gather(t, g.srv)[series] >= 1 })
		if got := gather(t, g.srv)[series]; got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// Repeated bad tokens from one address get rate_limited for unknown tokens, without a database
// lookup, but a valid agent token from the same address is still welcomed; malformed tokens are
// refused without a lookup at all.
func TestGatewayRateLimitsUnknownTokensOnly(t *testing.T) {
	t.Parallel()
	g := startGateway(t) // 4 failures allowed per minute
	lookups := func() float64 { return gather(t, g.srv)["sajet_gateway_unknown_token_lookups_total"] }
	hello := func(token string) protocol.Hello {
		return protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105", Token: token, Tunnel: "tcs-sajet-tunnel"}
	}
	code := func(reply protocol.Message) string {
		if e, ok := reply.(protocol.Error); ok {
			return e.Code
		}
		return reply.MessageType()
	}
	for _, malformed := range []string{"sja_wrong", "sjt_" + strings.Repeat("a", 43), "sja_" + strings.Repeat("a", 42), "sja_" + strings.Repeat("!", 43)} {
		if _, reply := gatewaytest.Dial(t, g.addr, hello(malformed)); code(reply) != protocol.CodeUnauthorized && code(reply) != protocol.CodeBadRequest {
			t.Fatalf("malformed token %q answered %#v", malformed, reply)
		}
	}
	if n := lookups(); n != 0 {
		t.Errorf("malformed tokens caused %v database lookups, want 0", n)
	}
	// The address is now blocked: an unknown well-formed token is refused before any lookup.
	unknown := newToken()
	if _, reply := gatewaytest.Dial(t, g.addr, hello(unknown)); code(reply) != protocol.CodeRateLimited {
		t.Errorf("an unknown token from a blocked address got %#v, want rate_limited", reply)
	}
	if n := lookups(); n != 0 {
		t.Errorf("a blocked address caused %v database lookups, want 0", n)
	}
	// A valid token from the same address is never refused by the limiter.
	for range 3 {
		_, reply := gatewaytest.Dial(t, g.addr, hello(g.token))
		if _, ok := reply.(protocol.Welcome); !ok {
			t.Fatalf("a valid token from a blocked address got %#v, want welcome", reply)
		}
	}
	if n := lookups(); n != 0 {
		t.Errorf("a valid token counted as %v lookups of unknown tokens", n)
	}
}

// The first unknown tokens from an address are looked up (and counted), until it is blocked.
func TestGatewayLooksUpUnknownTokensUntilBlocked(t *testing.T) {
	t.Parallel()
	g := startGateway(t) // 4 failures allowed per minute
	for i := range 6 {
		unknown := newToken()
		_, reply := gatewaytest.Dial(t, g.addr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "x", Token: unknown,
			Tunnel: "tcs-sajet-tunnel"})
		want := protocol.CodeUnauthorized
		if i >= 4 {
			want = protocol.CodeRateLimited
		}
		if e, ok := reply.(protocol.Error); !ok || e.Code != want {
			t.Errorf("unknown token #%d answered %#v, want %s", i+1, reply, want)
		}
	}
	if n := gather(t, g.srv)["sajet_gateway_unknown_token_lookups_total"]; n != 4 {
		t.Errorf("unknown token lookups = %v, want 4 (then the address is blocked)", n)
	}
}

func TestGatewayBoundsPendingHandshakes(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{gatewaytest.Certificate(t)}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	srv := &gateway.Server{Store: store.New(pool), MaxHandshakes: 2, HelloTimeout: 30 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = srv.Serve(ctx, ln) }()
	// Two connections that never say hello hold both slots.
	for range 2 {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	time.Sleep(100 * time.Millisecond)
	// A third is closed at once, before any TLS handshake completes.
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test certificate
	if err == nil {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a third pending connection was served")
	}
	if got := gather(t, srv)[`sajet_gateway_refused_handshakes_total{code="too_many_handshakes"}`]; got != 1 {
		t.Errorf("refused too_many_handshakes = %v, want 1", got)
	}
}
