package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/cloudflare/cftest"
	"github.com/jeturing/sajet-domains/controlplane/diagnose"
	"github.com/jeturing/sajet-domains/controlplane/diagnose/zonetest"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// tenantBackend is a customer's Odoo on loopback; mode says how it answers.
type tenantBackend struct {
	url  string
	ln   net.Listener
	mode atomic.Value // "up", "502", "slow"
	host atomic.Value // the Host of the last request
}

func startTenantBackend(t *testing.T) *tenantBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &tenantBackend{url: "http://" + ln.Addr().String(), ln: ln}
	b.mode.Store("up")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.host.Store(r.Host)
		switch b.mode.Load() {
		case "502":
			w.WriteHeader(http.StatusBadGateway)
		case "slow":
			time.Sleep(2500 * time.Millisecond) // over the report's 2 s "slow", under its 5 s timeout
		default:
			http.Redirect(w, r, "/web/login", http.StatusSeeOther)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return b
}

// inspect runs `sajet-controlplane inspect` and returns its output and exit status.
func (cp *controlPlane) inspect(t *testing.T, token string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(cp.bin, append([]string{"inspect", "--api", cp.api, "--token", token}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	}
	t.Fatal(err)
	return "", 0
}

func (cp *controlPlane) diagnose(t *testing.T, token, host string) (int, diagnose.Report) {
	t.Helper()
	req, _ := http.NewRequest("GET", cp.api+"/api/domains/"+host+"/diagnose", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept-Language", "en")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r diagnose.Report
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode == 200 {
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%s", data)
		}
	}
	return res.StatusCode, r
}

func partOf(t *testing.T, r diagnose.Report, name string) diagnose.Part {
	t.Helper()
	for _, p := range r.Parts {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no part %s", name)
	return diagnose.Part{}
}

// The report, the probe and the command end to end through both binaries: a domain whose DNS
// (signed, delegated from its parent), Cloudflare record and custom hostname, tunnel (two real
// agents) and backend all work is reported working and inspect exits 0; the backend answering 502,
// slow, and down is each reported as what it is, from both tunnel hosts, and inspect exits 1.
func TestDiagnoseEndToEnd(t *testing.T) {
	t.Parallel()
	// DNS: com. delegates impulse-max.com. (signed, DS at the parent); the platform zone answers.
	dnsNet := zonetest.New(t)
	com := dnsNet.Zone("com", "127.0.0.21")
	child := dnsNet.Zone("impulse-max.com", "127.0.0.22", "127.0.0.23")
	child.Add("www.impulse-max.com. 300 IN CNAME impulse-max.sajet.us.")
	child.Sign()
	com.Delegate(child)
	sajet := dnsNet.Zone("sajet.us", "127.0.0.24")
	sajet.Add("impulse-max.sajet.us. 300 IN A 192.0.2.10")
	resolver := dnsNet.Resolver("127.0.0.25", com, sajet)
	resolver.SetValidating(true)

	cf := cftest.New(t)
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	cp := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile,
		"--dns-resolver", resolver.Addr(), "--dns-auth-port", strconv.Itoa(dnsNet.Port()),
		"--cloudflare-api-url", cf.URL(), "--cloudflare-api-token", cf.Token, "--cloudflare-zone-id", cf.ZoneID, "--cloudflare-saas")
	tokens := []string{cp.seed(t), cp.enrol(t, "pct-106")}
	b := startTenantBackend(t)
	cp.call(t, "PATCH", "/api/tenant-deployments/1", `{"backend_url":"`+b.url+`"}`, &map[string]any{})
	for i, name := range []string{"pct-105", "pct-106"} {
		n := newNode(t, cp, tokens[i])
		n.cfg["name"] = name
		n.startAgent(t)
	}
	host := "www.impulse-max.com"
	cp.createDomain(t, host)
	testwait.Until(t, 60*time.Second, "the tunnel routes the domain and Cloudflare has its custom hostname", func() bool {
		return cp.getDomain(t, host).TunnelIngressConfigured && len(cf.CustomHostnames()) == 1
	})
	cf.SetCustomHostnameStatus(host, "active", "active")

	// It works: the API's report and the command agree.
	status, r := cp.diagnose(t, cp.admin, host)
	if status != 200 || !r.Works || r.Verdict != diagnose.OK {
		data, _ := json.MarshalIndent(r, "", "  ")
		t.Fatalf("a working domain: %d\n%s", status, data)
	}
	if p := partOf(t, r, diagnose.PartDNSSEC); !strings.Contains(p.Message, "valid") {
		t.Errorf("dnssec: %s", p.Message)
	}
	if h, _ := b.host.Load().(string); h != host {
		t.Errorf("the backend saw Host %q, want the customer's hostname", h)
	}
	out, code := cp.inspect(t, cp.admin, "--lang", "en", host)
	if code != 0 || !strings.Contains(out, "The domain works") || strings.Contains(out, "[FAIL]") {
		t.Errorf("inspect of a working domain: exit %d\n%s", code, out)
	}

	// The backend answers 502 from both tunnel hosts.
	b.mode.Store("502")
	out, code = cp.inspect(t, cp.admin, "--lang", "en", host)
	if code != 1 || !strings.Contains(out, "[FAIL] Backend") || !strings.Contains(out, "the backend answers HTTP 502") ||
		!strings.Contains(out, "pct-105: HTTP 502") || !strings.Contains(out, "pct-106: HTTP 502") {
		t.Errorf("inspect with the backend answering 502: exit %d\n%s", code, out)
	}

	// Slow: it answers, late.
	b.mode.Store("slow")
	_, r = cp.diagnose(t, cp.admin, host)
	if p := partOf(t, r, diagnose.PartBackend); p.Verdict != diagnose.Warn || !strings.Contains(p.Message, "slowly") {
		t.Errorf("a slow backend: %s %s", p.Verdict, p.Message)
	}

	// Down: nothing listens any more.
	b.mode.Store("up")
	b.ln.Close()
	out, code = cp.inspect(t, cp.admin, "--json", host)
	var jr diagnose.Report
	if err := json.Unmarshal([]byte(out), &jr); err != nil || code != 1 || jr.Works {
		t.Fatalf("inspect --json with the backend down: exit %d, %v\n%s", code, err, out)
	}
	for _, pr := range partOf(t, jr, diagnose.PartBackend).Evidence.(map[string]any)["probes"].([]any) {
		if f := pr.(map[string]any)["failure"]; f != protocol.ProbeRefused {
			t.Errorf("a probe of a backend that is down: %v", pr)
		}
	}

	// A customer's token diagnoses its own domain; another customer's sees nothing.
	var other, mine struct {
		Token string `json:"token"`
	}
	var c2 map[string]any
	cp.call(t, "POST", "/api/customers", `{"email":"ops@other.example","company_name":"Other"}`, &c2)
	cp.call(t, "POST", "/api/tokens", `{"role":"customer","customer_id":2}`, &other)
	cp.call(t, "POST", "/api/tokens", `{"role":"customer","customer_id":1}`, &mine)
	if status, _ := cp.diagnose(t, other.Token, host); status != 404 {
		t.Errorf("another customer's token: %d, want 404", status)
	}
	if status, _ := cp.diagnose(t, mine.Token, host); status != 200 {
		t.Errorf("the customer's own token: %d, want 200", status)
	}

	// /readyz names its checks: the database and the agent gateway.
	res, err := http.Get(cp.api + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"agent_gateway":"ok"`) || !strings.Contains(string(body), `"database":"ok"`) {
		t.Errorf("/readyz: %d %s", res.StatusCode, body)
	}
}

// The agent binary, asked by whoever holds the control plane's end of its session to probe a URL
// that is not the service of a rule it applies, refuses without sending anything there.
func TestTheAgentBinaryProbesOnlyItsRules(t *testing.T) {
	t.Parallel()
	tenant, secret := startTenantBackend(t), startTenantBackend(t)
	secretHits := atomic.Int64{}
	secretSrv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { secretHits.Add(1) })}
	secret.ln.Close()
	ln2, err := net.Listen("tcp", strings.TrimPrefix(secret.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = secretSrv.Serve(ln2) }()
	t.Cleanup(func() { secretSrv.Close() })

	// A control plane of our own: the real protocol, answered by hand.
	cert := gatewaytest.Certificate(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	sessions := make(chan *yamux.Session, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
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
		go func() {
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
	}()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "base.yml"), baseFile)
	cfg, _ := json.Marshal(map[string]any{"control_plane": ln.Addr().String(), "token": "sja_" + strings.Repeat("A", 43),
		"tunnel": "tcs-sajet-tunnel", "name": "pct-105", "fingerprint": gatewaytest.FingerprintOf(cert),
		"base_config": filepath.Join(dir, "base.yml"), "config_path": filepath.Join(dir, "config.yml"), "unit": "",
		"health_addr": "127.0.0.1:0", "state_dir": filepath.Join(dir, "state")})
	writeFile(t, filepath.Join(dir, "agent.yml"), string(cfg))
	_, bin := proctest.Binaries(t)
	p := proctest.Start(t, "agent", exec.Command(bin, "--config", filepath.Join(dir, "agent.yml")))
	var ys *yamux.Session
	select {
	case ys = <-sessions:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not connect")
	}
	exchange := func(m protocol.Message, limit int) protocol.Message {
		t.Helper()
		st, err := ys.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(20 * time.Second))
		if err := protocol.WriteMessage(st, m); err != nil {
			t.Fatal(err)
		}
		reply, err := protocol.ReadMessage(st, limit)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	ack := exchange(protocol.Desired{Version: 1, Nonce: protocol.NewNonce(), IssuedAt: time.Now().UTC(), Rules: []protocol.Rule{
		{Hostname: "www.impulse-max.com", Service: tenant.url}}}, protocol.MaxAckFrameSize).(protocol.Ack)
	if !ack.OK {
		t.Fatalf("ack %+v", ack)
	}
	for _, tc := range []struct {
		req     protocol.ProbeRequest
		ok      bool
		failure string
	}{
		{protocol.ProbeRequest{URL: secret.url, Hostname: "www.impulse-max.com", TimeoutMS: 2000}, false, protocol.ProbeNotInRules},
		{protocol.ProbeRequest{URL: "http://169.254.169.254", TimeoutMS: 2000}, false, protocol.ProbeNotInRules},
		{protocol.ProbeRequest{URL: tenant.url, Hostname: "www.impulse-max.com", TimeoutMS: 2000}, true, ""},
	} {
		res := exchange(tc.req, protocol.MaxProbeResultFrameSize).(protocol.ProbeResult)
		if res.OK != tc.ok || res.Failure != tc.failure {
			t.Errorf("probe of %s: %+v", tc.req.URL, res)
		}
	}
	if n := secretHits.Load(); n != 0 {
		t.Errorf("the URL outside the rules received %d requests", n)
	}
	proctest.WaitLine(t, p.Lines, regexp.MustCompile(`refused a probe of a service that is not in the rules in force`), 10*time.Second)
	_ = os.Remove(filepath.Join(dir, "agent.yml"))
}
