package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// Through the real binary: enrol an agent over REST, connect it over TLS + yamux with its token,
// and receive the tunnel's desired ingress with both hostnames of a domain created over REST.
func TestAgentReceivesDesiredIngressFromTheBinary(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := writeCert(t)
	p := startAndCollect(t, exec.Command(bin, "serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0",
		"--dns-resolver", "127.0.0.1:9", "--agent-addr", "127.0.0.1:0", "--agent-tls-cert", certFile, "--agent-tls-key", keyFile))
	var apiURL, agentAddr string
	deadline := time.After(60 * time.Second)
	for apiURL == "" || agentAddr == "" {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatal("serve exited")
			}
			if m := regexp.MustCompile(`api=(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(line); m != nil {
				apiURL = m[1]
			}
			if m := regexp.MustCompile(`agent gateway listening.*addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(line); m != nil {
				agentAddr = m[1]
			}
		case <-deadline:
			t.Fatal("serve did not start both listeners")
		}
	}
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

	conn, err := tls.Dial("tcp", agentAddr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) //nolint:gosec // test certificate
	if err != nil {
		t.Fatal(err)
	}
	ys, err := yamux.Client(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ys.Close()
	hs, _ := ys.OpenStream()
	_ = hs.SetDeadline(time.Now().Add(10 * time.Second))
	if err := protocol.WriteMessage(hs, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105",
		Token: created.Token, Tunnel: "tcs-sajet-tunnel", BootID: "b1"}); err != nil {
		t.Fatal(err)
	}
	if m, err := protocol.ReadMessage(hs, 1<<20); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", m)
	}
	push, err := ys.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	_ = push.SetDeadline(time.Now().Add(10 * time.Second))
	m, err := protocol.ReadMessage(push, protocol.MaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	d := m.(protocol.Desired)
	got := map[string]string{}
	for _, r := range d.Rules {
		got[r.Hostname] = r.Service
	}
	if got["impulse-max.sajet.us"] != "http://10.10.10.105:8069" || got["www.impulse-max.com"] != "http://10.10.10.105:8069" {
		t.Errorf("desired rules %+v, want both hostnames to the tenant's backend", d.Rules)
	}
}
