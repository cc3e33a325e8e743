package agent

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/agent/config"
	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// fakeCP is a minimal control plane speaking the real protocol over TLS + yamux, so tests can
// push exactly the messages they want (stale, duplicate, reordered, oversize).
type fakeCP struct {
	ln       net.Listener
	cert     tls.Certificate
	sessions chan *yamux.Session
	hellos   chan protocol.Hello
	refuse   atomic.Pointer[protocol.Error] // answer hello with this error
	statuses atomic.Int64
	accepted atomic.Int64
}

func startFakeCP(t *testing.T) *fakeCP {
	t.Helper()
	return startFakeCPWith(t, gatewaytest.Certificate(t))
}

func startFakeCPWith(t *testing.T, cert tls.Certificate) *fakeCP {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCP{ln: ln, cert: cert, sessions: make(chan *yamux.Session, 16), hellos: make(chan protocol.Hello, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go f.handle(conn)
		}
	}()
	return f
}

func (f *fakeCP) handle(conn net.Conn) {
	// Protocol 3: hello and its answer on the TLS connection, then yamux.
	msg, err := protocol.ReadMessage(conn, protocol.MaxHelloFrameSize)
	if err != nil {
		conn.Close()
		return
	}
	f.hellos <- msg.(protocol.Hello)
	if e := f.refuse.Load(); e != nil {
		_ = protocol.WriteMessage(conn, *e)
		time.Sleep(100 * time.Millisecond)
		conn.Close()
		return
	}
	f.accepted.Add(1)
	_ = protocol.WriteMessage(conn, protocol.Welcome{ProtocolVersion: protocol.ProtocolVersion, SessionEpoch: f.accepted.Load(), ServerTime: time.Now().UTC()})
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	ys, err := yamux.Server(conn, cfg)
	if err != nil {
		conn.Close()
		return
	}
	go func() { // status reports
		for {
			s, err := ys.AcceptStream()
			if err != nil {
				return
			}
			if m, err := protocol.ReadMessage(s, 64<<10); err == nil {
				if _, ok := m.(protocol.Status); ok {
					f.statuses.Add(1)
				}
			}
			s.Close()
		}
	}()
	f.sessions <- ys
}

func (f *fakeCP) session(t *testing.T) *yamux.Session {
	t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not connect within 10s")
		return nil
	}
}

// push sends d on a new stream and returns the agent's ack.
func push(t *testing.T, ys *yamux.Session, d protocol.Desired) protocol.Ack {
	t.Helper()
	st, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(20 * time.Second))
	if err := protocol.WriteMessage(st, d); err != nil {
		t.Fatal(err)
	}
	m, err := protocol.ReadMessage(st, 64<<10)
	if err != nil {
		t.Fatalf("ack for version %d: %v", d.Version, err)
	}
	ack, ok := m.(protocol.Ack)
	if !ok || ack.Nonce != d.Nonce || ack.Version != d.Version {
		t.Fatalf("answer %#v does not acknowledge version %d", m, d.Version)
	}
	return ack
}

func desired(v int64, hosts ...string) protocol.Desired {
	d := protocol.Desired{Version: v, Nonce: protocol.NewNonce(), IssuedAt: time.Now().UTC(), Rules: []protocol.Rule{}}
	for _, h := range hosts {
		d.Rules = append(d.Rules, protocol.Rule{Hostname: h, Service: "http://10.10.10.105:8069"})
	}
	return d
}

// countingUnit is cloudflared's unit for tests of the agent's loop; the D-Bus path is tested in
// agent/systemd and end to end.
type countingUnit struct {
	restarts atomic.Int64
	fail     atomic.Bool
}

func (u *countingUnit) Restart(context.Context) error {
	u.restarts.Add(1)
	if u.fail.Load() {
		return errors.New(`job for cloudflared.service finished with result "failed"`)
	}
	return nil
}
func (u *countingUnit) Verify(context.Context) error { return nil }
func (u *countingUnit) State(context.Context) (protocol.UnitState, error) {
	return protocol.UnitState{ActiveState: "active", SubState: "running"}, nil
}

const testBase = "tunnel: t1\ncredentials-file: /etc/cloudflared/t1.json\ningress:\n  - service: http_status:404\n"

type harness struct {
	cfg  *config.Config
	unit *countingUnit
	cp   *fakeCP
	a    *Agent
}

// startAgent runs an agent against cp (a new fake control plane when nil).
func startAgent(t *testing.T, cp *fakeCP, edit func(*config.Config)) *harness {
	t.Helper()
	if cp == nil {
		cp = startFakeCP(t)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "base.yml"), testBase)
	cfg, err := config.Parse([]byte(`control_plane: ` + cp.ln.Addr().String() + `
token: sja_test
tunnel: tcs-sajet-tunnel
name: pct-105
base_config: ` + filepath.Join(dir, "base.yml") + `
config_path: ` + filepath.Join(dir, "config.yml") + `
unit: cloudflared.service
state_dir: ` + filepath.Join(dir, "state") + `
keepalive: 1s
status_interval: 200ms
min_restart_interval: 1ms
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Fingerprint = gatewaytest.FingerprintOf(cp.cert)
	if edit != nil {
		edit(cfg)
	}
	h := &harness{cfg: cfg, unit: &countingUnit{}, cp: cp}
	h.run(t)
	return h
}

// run starts (or restarts) the agent process-equivalent: a new Agent on the same files.
func (h *harness) run(t *testing.T) {
	t.Helper()
	a, err := New(context.Background(), h.cfg, Options{Build: "test", Units: []UnitControl{h.unit}, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h.a = a
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestStaleDuplicateAndReorderedPushes(t *testing.T) {
	h := startAgent(t, nil, nil)
	ys := h.cp.session(t)
	if hello := <-h.cp.hellos; hello.Applied.Version != 0 || hello.Token != "sja_test" || hello.ProtocolVersion != protocol.ProtocolVersion {
		t.Fatalf("hello = %+v", hello)
	}

	ack := push(t, ys, desired(2, "www.impulse-max.com", "impulse-max.sajet.us"))
	if !ack.OK || ack.AppliedVersion != 2 || !ack.Restarted {
		t.Fatalf("ack v2 = %+v", ack)
	}
	file := readFile(t, h.cfg.ConfigPath)
	if !strings.Contains(file, "hostname: www.impulse-max.com") || !strings.Contains(file, "hostname: impulse-max.sajet.us") {
		t.Fatalf("config.yml lacks the pushed hostnames:\n%s", file)
	}

	for _, tc := range []struct {
		name string
		d    protocol.Desired
	}{
		{"duplicate", desired(2, "www.impulse-max.com", "impulse-max.sajet.us")},
		{"stale", desired(1, "old.example.com")},
		{"stale with other rules", desired(2, "evil.example.com")},
	} {
		ack := push(t, ys, tc.d)
		if !ack.OK || ack.Restarted || ack.AppliedVersion != 2 {
			t.Errorf("%s: ack = %+v, want acknowledged without applying", tc.name, ack)
		}
	}
	if got := readFile(t, h.cfg.ConfigPath); got != file {
		t.Errorf("a stale or duplicate push changed config.yml:\n%s", got)
	}
	if n := h.unit.restarts.Load(); n != 1 {
		t.Errorf("restarts = %d, want 1", n)
	}

	// Reordered: v4 arrives before v3; v3 is then stale.
	if ack := push(t, ys, desired(4, "d.example.com")); !ack.OK || ack.AppliedVersion != 4 {
		t.Fatalf("ack v4 = %+v", ack)
	}
	if ack := push(t, ys, desired(3, "c.example.com")); !ack.OK || ack.Restarted || ack.AppliedVersion != 4 {
		t.Errorf("ack v3 after v4 = %+v, want stale", ack)
	}
	if got := readFile(t, h.cfg.ConfigPath); !strings.Contains(got, "d.example.com") || strings.Contains(got, "c.example.com") {
		t.Errorf("config.yml after reorder:\n%s", got)
	}
}

func TestInvalidPushIsNackedAndChangesNothing(t *testing.T) {
	h := startAgent(t, nil, nil)
	ys := h.cp.session(t)
	push(t, ys, desired(1, "a.example.com"))
	before := readFile(t, h.cfg.ConfigPath)
	ack := push(t, ys, desired(2, "a.example.com", "a.example.com"))
	if ack.OK || ack.Stage != protocol.StageValidate || ack.AppliedVersion != 1 || !strings.Contains(ack.Error, "rule #") {
		t.Fatalf("ack = %+v, want a NACK at validate naming the rule", ack)
	}
	if readFile(t, h.cfg.ConfigPath) != before || h.unit.restarts.Load() != 1 {
		t.Error("a refused push changed the file or restarted cloudflared")
	}
	if err := h.a.Ready(); err == nil || !strings.Contains(err.Error(), "validate") {
		t.Errorf("Ready() = %v, want the failed apply", err)
	}
	rep := h.a.Report()
	if rep.Config.LastError == nil || rep.Config.LastError.Stage != protocol.StageValidate || rep.Status != "warn" {
		t.Errorf("report = %+v, want status warn with the last error", rep)
	}
}

func TestOversizeFrameIsRefusedWithoutAllocating(t *testing.T) {
	h := startAgent(t, nil, nil)
	ys := h.cp.session(t)
	st, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], protocol.MaxFrameSize+1)
	_, _ = st.Write(hdr[:])
	_, _ = st.Write([]byte(`{"type":"desired","body":{`))
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := st.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("agent answered an oversize frame (n=%d err=%v)", n, err)
	}
	st.Close()
	if _, err := os.Stat(h.cfg.ConfigPath); !errors.Is(err, os.ErrNotExist) {
		t.Error("an oversize frame wrote a config")
	}
	// The session survives and the next push works.
	if ack := push(t, ys, desired(1, "a.example.com")); !ack.OK {
		t.Fatalf("push after oversize frame: %+v", ack)
	}
}

func TestPushesDuringTheRestartIntervalAreCoalesced(t *testing.T) {
	h := startAgent(t, nil, func(c *config.Config) { c.MinRestartInterval = 500 * time.Millisecond })
	ys := h.cp.session(t)
	push(t, ys, desired(1, "a.example.com"))
	var wg sync.WaitGroup
	acks := make([]protocol.Ack, 3)
	for i, v := range []int64{2, 3, 4} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 20 * time.Millisecond) // arrive in order, inside the interval
			acks[i] = push(t, ys, desired(v, "a.example.com", "v"+string(rune('0'+v))+".example.com"))
		}()
	}
	wg.Wait()
	for i, ack := range acks {
		if !ack.OK || ack.AppliedVersion != 4 {
			t.Errorf("ack %d = %+v, want ok with version 4 in force", i+2, ack)
		}
	}
	if n := h.unit.restarts.Load(); n != 2 {
		t.Errorf("restarts = %d, want 2 (the first push, then one for the coalesced three)", n)
	}
	if got := readFile(t, h.cfg.ConfigPath); !strings.Contains(got, "v4.example.com") || strings.Contains(got, "v3.example.com") {
		t.Errorf("config.yml is not version 4:\n%s", got)
	}
}

func TestRefusedHelloIsReported(t *testing.T) {
	cp := startFakeCP(t)
	cp.refuse.Store(&protocol.Error{Code: protocol.CodeUnauthorized, Message: "unknown or revoked agent token"})
	h := startAgent(t, cp, nil)
	<-cp.hellos
	testwait.Until(t, 10*time.Second, "the refusal in the link state", func() bool { return strings.Contains(h.a.link.State().LastError, "unauthorized") })
	if err := h.a.Ready(); err == nil || !strings.Contains(err.Error(), "unknown or revoked agent token") {
		t.Errorf("Ready() = %v, want the refusal", err)
	}
	if rep := h.a.Report(); rep.Status != "fail" || rep.ControlPlane.Connected {
		t.Errorf("report status %q connected %v, want fail and not connected", rep.Status, rep.ControlPlane.Connected)
	}
}

// freezingProxy forwards TCP to target; freeze makes the connections open so far silently stop
// forwarding in both directions (a half-open peer: no FIN, no RST), while new ones still work.
type freezingProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen []*atomic.Bool
}

func startProxy(t *testing.T, target string) *freezingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			var frozen atomic.Bool
			p.mu.Lock()
			p.frozen = append(p.frozen, &frozen)
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						if !frozen.Load() {
							dst.Close()
						}
						return
					}
					if frozen.Load() {
						continue // swallow: the peer looks alive at TCP level but never answers
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
			}
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	return p
}

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frozen {
		f.Store(true)
	}
}

func TestHalfOpenConnectionIsDetectedAndRedialled(t *testing.T) {
	cp := startFakeCP(t)
	px := startProxy(t, cp.ln.Addr().String())
	h := startAgent(t, cp, func(c *config.Config) { c.ControlPlane = px.ln.Addr().String() })
	ys := cp.session(t)
	<-cp.hellos
	if ack := push(t, ys, desired(1, "a.example.com")); !ack.OK {
		t.Fatal(ack)
	}
	epoch := h.a.link.State().Epoch
	start := time.Now()
	px.freeze()
	// The agent notices within keepalive (1s) + write timeout (1s) and dials again.
	select {
	case hello := <-cp.hellos:
		t.Logf("redialled %s after the freeze", time.Since(start).Round(time.Millisecond))
		if hello.Applied.Version != 1 {
			t.Errorf("hello after redial reports version %d, want 1", hello.Applied.Version)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not redial within 20s of the peer going silent")
	}
	testwait.Until(t, 10*time.Second, "a new session", func() bool { s := h.a.link.State(); return s.Connected && s.Epoch != epoch })
	if s := h.a.link.State(); s.Reconnects < 1 {
		t.Errorf("reconnects = %d, want ≥ 1", s.Reconnects)
	}
	if n := h.unit.restarts.Load(); n != 1 {
		t.Errorf("restarts = %d; a reconnect must not restart cloudflared", n)
	}
}

func TestTLSTrust(t *testing.T) {
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("CA file", func(t *testing.T) {
		cp := startFakeCPWith(t, cert)
		h := startAgent(t, cp, func(c *config.Config) { c.Fingerprint, c.CAFile = "", certFile })
		<-cp.hellos
		testwait.Until(t, 10*time.Second, "the connection", func() bool { return h.a.link.State().Connected })
	})
	t.Run("wrong pin", func(t *testing.T) {
		cp := startFakeCPWith(t, cert)
		h := startAgent(t, cp, func(c *config.Config) { c.Fingerprint = strings.Repeat("00", 32) })
		testwait.Until(t, 10*time.Second, "the pin mismatch in the link state", func() bool {
			return strings.Contains(h.a.link.State().LastError, "does not match the pinned fingerprint")
		})
		select {
		case <-cp.hellos:
			t.Fatal("the agent sent its hello (and token) to a server whose certificate does not match the pin")
		default:
		}
	})
	t.Run("CA that did not sign the server", func(t *testing.T) {
		cp := startFakeCP(t) // another certificate
		h := startAgent(t, cp, func(c *config.Config) { c.Fingerprint, c.CAFile = "", certFile })
		testwait.Until(t, 10*time.Second, "the certificate error in the link state", func() bool {
			return strings.Contains(h.a.link.State().LastError, "certificate")
		})
		select {
		case <-cp.hellos:
			t.Fatal("hello sent over an unverified connection")
		default:
		}
	})
}
