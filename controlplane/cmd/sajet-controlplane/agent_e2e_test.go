package main_test

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Through the real binary: enrol an agent over REST, connect it over TLS + yamux with its token,
// and receive the tunnel's desired ingress with both hostnames of a domain created over REST.
func TestAgentReceivesDesiredIngressFromTheBinary(t *testing.T) {
	t.Parallel()
	bin, _ := proctest.Binaries(t)
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	p := proctest.Start(t, "serve", exec.Command(bin, "serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0",
		"--dns-resolver", "127.0.0.1:9", "--agent-addr", "127.0.0.1:0", "--agent-tls-cert", certFile, "--agent-tls-key", keyFile))
	listeners := proctest.WaitLines(t, p.Lines, 60*time.Second,
		regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)`), regexp.MustCompile(`agent gateway listening.*addr=(127\.0\.0\.1:\d+)`))
	apiURL, agentAddr := listeners[0], listeners[1]
	defer stop(t, p)
	admin := adminToken(t, bin, dbURL)
	for _, c := range []struct{ path, body string }{
		{"/api/customers", `{"email":"ops@impulse-max.com","company_name":"ImpulseMax"}`},
		{"/api/tunnels", `{"name":"tcs-sajet-tunnel","cloudflare_tunnel_id":"6ff42ae2-765d-4adf-8112-31c55c1551ef"}`},
		{"/api/tenant-deployments", `{"customer_id":1,"name":"odoo","tunnel_id":1,"backend_url":"http://10.10.10.105:8069"}`},
		{"/api/domains", `{"external_domain":"www.impulse-max.com","customer_id":1,"tenant_deployment_id":1}`},
	} {
		if res := call(t, "POST", apiURL+c.path, admin, c.body); res.StatusCode != 201 {
			t.Fatalf("POST %s: %d", c.path, res.StatusCode)
		}
	}
	res := call(t, "POST", apiURL+"/api/agents", admin, `{"tunnel_id":1,"name":"pct-105"}`)
	var created struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil || created.Token == "" {
		t.Fatalf("create agent: %d %v", res.StatusCode, err)
	}

	agent, reply := gatewaytest.Dial(t, agentAddr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105",
		Token: created.Token, Tunnel: "tcs-sajet-tunnel"})
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", reply)
	}
	d := agent.Next(t, gatewaytest.ACK)
	got := map[string]string{}
	for _, r := range d.Rules {
		got[r.Hostname] = r.Service
	}
	if got["impulse-max.sajet.us"] != "http://10.10.10.105:8069" || got["www.impulse-max.com"] != "http://10.10.10.105:8069" {
		t.Errorf("desired rules %+v, want both hostnames to the tenant's backend", d.Rules)
	}
}
