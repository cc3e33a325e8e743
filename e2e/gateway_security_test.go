package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/internal/testwait"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Each test here replays an attack on the agent gateway against the real binaries and shows it
// no longer works. The figures (memory before and after the fix) are in
// gateway_security_bench_test.go.

// metric reads one series ("name" or `name{label="v"}`) from the control plane's /metrics; 0 when
// absent.
func (cp *controlPlane) metric(t testing.TB, series string) float64 {
	t.Helper()
	res, err := http.Get(cp.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

func (cp *controlPlane) rssMB(t testing.TB) float64 {
	t.Helper()
	rss, _ := rssKB(t, cp.p.Cmd.Process.Pid)
	return float64(rss) / 1024
}

// sampler records the peak RSS of the control plane until stopped.
type sampler struct {
	stop chan struct{}
	done chan float64
}

func sampleRSS(cp *controlPlane) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan float64, 1)}
	status := fmt.Sprintf("/proc/%d/status", cp.p.Cmd.Process.Pid)
	go func() {
		peak := 0.0
		for {
			data, _ := os.ReadFile(status) // not t: this goroutine must not end the test
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
					kb, _ := strconv.ParseFloat(f[1], 64)
					peak = max(peak, kb/1024)
				}
			}
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *sampler) peak() float64 { close(s.stop); return <-s.done }

func loopback(last byte) *net.TCPAddr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, last)} }

func helloWith(token string) protocol.Hello {
	return protocol.Hello{ProtocolVersion: protocol.ProtocolVersion, Agent: "pct-105", Token: token, Tunnel: "tcs-sajet-tunnel"}
}

// unauthenticatedPeer is one connection of the flood: it never authenticates and tries to make the
// gateway hold as much as it can for as long as it can, in one of three ways.
func unauthenticatedPeer(addr string, local *net.TCPAddr, kind int) {
	conn, err := gatewaytest.DialTLS(local, addr)
	if err != nil {
		time.Sleep(200 * time.Millisecond) // refused by the per-address cap: try again
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	switch kind {
	case 0: // speak yamux at once: open streams and push data on each (the attack)
		cfg := yamux.DefaultConfig()
		cfg.AcceptBacklog = 1024
		cfg.LogOutput = io.Discard
		ys, err := yamux.Client(conn, cfg)
		if err != nil {
			return
		}
		defer ys.Close()
		_, _ = floodStreams(ys, 64, 64<<10, nil, 3*time.Second)
	case 1: // say nothing
		_, _ = io.Copy(io.Discard, conn)
	case 2: // announce the largest hello and trickle it
		if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, protocol.MaxHelloFrameSize)); err != nil {
			return
		}
		for {
			time.Sleep(200 * time.Millisecond)
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}
}

// Unauthenticated peers from 24 addresses hold every handshake slot they can get (8 each), speak
// yamux and push data, stay silent, or trickle a hello. The control plane's memory stays bounded,
// and a real agent connects and applies a domain meanwhile.
func TestUnauthenticatedFloodIsBounded(t *testing.T) {
	// Not parallel: the flood would starve the other tests' agents of CPU on a two-core machine.
	s := newStack(t)
	// The flood takes CPU from the fake systemd too; give the agent's restart time.
	s.node.cfg["restart_timeout"], s.node.cfg["ready_timeout"] = "20s", "20s"
	rss0 := s.cp.rssMB(t)
	rss := sampleRSS(s.cp)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for a := range 24 {
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					unauthenticatedPeer(s.cp.agentAddr, loopback(byte(10+a)), w%3)
					time.Sleep(100 * time.Millisecond) // leave the two-core CI machine some CPU
				}
			}()
		}
	}
	defer func() { close(stop); wg.Wait() }()
	testwait.For(t, 30*time.Second, func() string {
		if s.cp.metric(t, `sajet_gateway_refused_handshakes_total{code="unsupported_version"}`) < 24 {
			return "the flood has not reached the gateway yet"
		}
		return ""
	})

	s.node.startAgent(t)
	s.cp.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")
	testwait.For(t, 30*time.Second, func() string {
		if s.cp.metric(t, `sajet_gateway_refused_handshakes_total{code="handshake_timeout"}`) < 1 {
			return "no silent or trickling peer was cut off at the handshake deadline yet"
		}
		return ""
	})
	peak := rss.peak()
	t.Logf("control plane RSS: %.0f MiB before the flood, %.0f MiB at its peak during it (192 connections held)", rss0, peak)
	// Before protocol 3 each such connection could make it buffer ~85-145 MiB.
	if peak-rss0 > 200 {
		t.Errorf("the control plane grew by %.0f MiB under the flood, want < 200", peak-rss0)
	}
	if !s.node.status(t).ControlPlane.Connected {
		t.Error("the real agent is not connected under the flood")
	}
}

// 1,024 idle connections from 127.0.0.1 (re-dialled as they are closed) take at most
// MaxHandshakesPerAddress slots; an agent connecting from 127.0.0.2 meanwhile is welcomed.
func TestIdleConnectionsFromOneAddressDoNotLockOthersOut(t *testing.T) {
	// Not parallel: the flood would starve the other tests' agents of CPU on a two-core machine.
	s := newStack(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var held atomic.Int64
	for range 1024 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: loopback(1), Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := d.Dial("tcp", s.cp.agentAddr)
				if err == nil {
					held.Add(1)
					_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
					_, _ = io.Copy(io.Discard, conn) // idle until the gateway closes it
					conn.Close()
				}
				time.Sleep(time.Second)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	testwait.For(t, 30*time.Second, func() string {
		if s.cp.metric(t, `sajet_gateway_refused_handshakes_total{code="too_many_handshakes_from_address"}`) < 1000 {
			return "the idle connections have not all arrived yet"
		}
		return ""
	})
	ys, reply, err := gatewaytest.ConnectFrom(loopback(2), s.cp.agentAddr, helloWith(s.node.cfg["token"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	defer ys.Close()
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("an agent from 127.0.0.2 got %#v while 127.0.0.1 floods, want welcome", reply)
	}
	if n := s.cp.metric(t, "sajet_gateway_pending_handshakes"); n > 8 {
		t.Errorf("%v handshakes pending, want at most the 8 of 127.0.0.1", n)
	}
	t.Logf("%d idle connections from 127.0.0.1 were accepted by TCP", held.Load())
}

// After many bad tokens from an address, a valid agent from the same address still connects,
// while unknown tokens from it are refused without a database lookup; malformed tokens are never
// looked up.
func TestBadTokensDoNotLockOutAValidAgent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	lookups := func() float64 { return s.cp.metric(t, "sajet_gateway_unknown_token_lookups_total") }
	refusedWith := func(token string) string {
		t.Helper()
		ys, reply, err := gatewaytest.Connect(s.cp.agentAddr, helloWith(token))
		if err != nil {
			t.Fatal(err)
		}
		ys.Close()
		if e, ok := reply.(protocol.Error); ok {
			return e.Code
		}
		return reply.MessageType()
	}
	for range 20 {
		if code := refusedWith("sja_not-a-real-token"); code != protocol.CodeUnauthorized {
			t.Fatalf("a malformed token got %s, want unauthorized", code)
		}
	}
	if n := lookups(); n != 0 {
		t.Errorf("20 malformed tokens caused %v database lookups, want 0", n)
	}
	// 127.0.0.1 is blocked now; keep it so while the real agent connects from it.
	unknown := "sja_" + strings.Repeat("A", 43)
	if code := refusedWith(unknown); code != protocol.CodeRateLimited {
		t.Fatalf("an unknown token from a blocked address got %s, want rate_limited", code)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				ys, _, err := gatewaytest.Connect(s.cp.agentAddr, helloWith("sja_still-not-a-token"))
				if err == nil {
					ys.Close()
				}
			}
		}
	}()
	s.node.startAgent(t)
	s.cp.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")
	close(stop)
	<-done
	if code := refusedWith(unknown); code != protocol.CodeRateLimited {
		t.Errorf("after the agent connected, an unknown token from its address got %s, want rate_limited", code)
	}
	if n := lookups(); n != 0 {
		t.Errorf("%v database lookups for tokens from a blocked address, want 0", n)
	}
	// The counter does count: an unknown token from an address in good standing is looked up.
	ys, reply, err := gatewaytest.ConnectFrom(loopback(3), s.cp.agentAddr, helloWith(unknown))
	if err != nil {
		t.Fatal(err)
	}
	ys.Close()
	if e, ok := reply.(protocol.Error); !ok || e.Code != protocol.CodeUnauthorized {
		t.Errorf("an unknown token from 127.0.0.3 got %#v, want unauthorized", reply)
	}
	if n := lookups(); n != 1 {
		t.Errorf("unknown token lookups = %v, want 1", n)
	}
}

// An authenticated agent session opens 5,000 streams, each announcing a 1 MiB frame and pushing
// 16 KiB of it: streams beyond the cap are reset, memory stays bounded, the log gets a line for
// the session rather than one per stream, and the session is closed.
func TestStreamFloodFromAnAgentIsBounded(t *testing.T) {
	// Not parallel: the flood would starve the other tests' agents of CPU on a two-core machine.
	s := newStack(t)
	ys, reply, err := gatewaytest.Connect(s.cp.agentAddr, helloWith(s.node.cfg["token"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	defer ys.Close()
	if _, ok := reply.(protocol.Welcome); !ok {
		t.Fatalf("hello answered with %#v", reply)
	}
	lines := s.cp.p.Watch()
	rss0 := s.cp.rssMB(t)
	rss := sampleRSS(s.cp)
	// The gateway's own count of the session's open streams, sampled during the flood.
	var maxOpen atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if res, err := http.Get(s.cp.api + "/metrics"); err == nil {
				sc := bufio.NewScanner(res.Body)
				for sc.Scan() {
					if v, ok := strings.CutPrefix(sc.Text(), "sajet_gateway_agent_streams "); ok {
						if n, err := strconv.ParseFloat(v, 64); err == nil && int64(n) > maxOpen.Load() {
							maxOpen.Store(int64(n))
						}
					}
				}
				res.Body.Close()
			}
		}
	}()
	const streams = 5000
	opened, resets := floodStreams(ys, streams, 16<<10, binary.BigEndian.AppendUint32(nil, 1<<20), 15*time.Second)
	select {
	case <-ys.CloseChan():
	case <-time.After(30 * time.Second):
		t.Fatal("the flooding session was not closed")
	}
	close(stopSampling)
	<-sampled
	peak := rss.peak()
	t.Logf("%d streams opened, %d reset, at most %d open in the gateway; control plane RSS %.0f MiB before, %.0f MiB at the peak",
		opened, resets, maxOpen.Load(), rss0, peak)
	// MaxStreams (16) being read, 16 waiting in the backlog, and the control plane's own.
	if n := maxOpen.Load(); n > 2*16+2 || n < 16 {
		t.Errorf("the gateway held at most %d streams of the session at once, want between 16 (it reads 16) and %d", n, 2*16+2)
	}
	if resets < 1000 {
		t.Errorf("only %d of the %d streams opened were reset", resets, opened)
	}
	if peak-rss0 > 100 {
		t.Errorf("the control plane grew by %.0f MiB, want < 100", peak-rss0)
	}
	if n := s.cp.metric(t, `sajet_gateway_refused_agent_streams_total{reason="protocol_violation"}`); n < 1 {
		t.Error("the closed session was not counted as a protocol violation")
	}
	// The session's end is logged before the test reads the log; count what arrived until then.
	mentions := 0
	for len(lines) > 0 {
		if strings.Contains(<-lines, "pct-105") {
			mentions++
		}
	}
	if mentions > 5 {
		t.Errorf("%d log lines about the flooding agent, want a handful", mentions)
	}
	// The agent itself is fine afterwards.
	s.node.startAgent(t)
	s.cp.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")
}

var refusedUnauthorized = regexp.MustCompile(`control plane refused the agent.*code=unauthorized`)

// DELETE /api/agents/{id} sent to replica A ends the agent's session on replica B within seconds;
// the agent logs the refusal and gets no more configuration, and its token is refused.
func TestRevokingAnAgentEndsItsSessionOnEveryReplica(t *testing.T) {
	t.Parallel()
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)
	a := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile)
	token := a.seed(t)
	b := startControlPlane(t, dbURL, proctest.FreeAddr(t), certFile, keyFile)
	n := newNode(t, b, token) // the agent dials replica B only
	agentLog := n.startAgent(t).Watch()
	s := &stack{cp: a, node: n}
	a.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")

	bLog := b.p.Watch()
	if code := a.call(t, "DELETE", "/api/agents/1", "", nil); code != 204 {
		t.Fatalf("DELETE /api/agents/1: %d", code)
	}
	proctest.WaitLine(t, bLog, regexp.MustCompile(`ending the session of a revoked agent.*agent=pct-105`), 15*time.Second)
	proctest.WaitLine(t, agentLog, refusedUnauthorized, 15*time.Second)
	testwait.For(t, 15*time.Second, func() string {
		if n.status(t).ControlPlane.Connected {
			return "the agent still says it is connected"
		}
		if b.metric(t, "sajet_gateway_sessions") != 0 {
			return "replica B still holds a session"
		}
		return ""
	})
	var agents struct {
		Items []struct {
			RevokedAt *time.Time `json:"revoked_at"`
		} `json:"items"`
	}
	a.call(t, "GET", "/api/agents", "", &agents)
	if len(agents.Items) != 1 || agents.Items[0].RevokedAt == nil {
		t.Errorf("GET /api/agents does not show the agent revoked: %+v", agents.Items)
	}

	a.createDomain(t, "shop.impulse-max.com")
	for _, cp := range []*controlPlane{a, b} {
		ys, reply, err := gatewaytest.Connect(cp.agentAddr, helloWith(token))
		if err != nil {
			t.Fatal(err)
		}
		ys.Close()
		if e, ok := reply.(protocol.Error); !ok || e.Code != protocol.CodeUnauthorized {
			t.Errorf("the revoked token got %#v, want unauthorized", reply)
		}
	}
	if c := n.config(t); strings.Contains(c, "shop.impulse-max.com") {
		t.Error("the revoked agent received a domain created after its revocation")
	}
}

// POST /api/agents/{id}/rotate-token: the session opened with the old token ends, the old token is
// refused, and the agent works again with the new one.
func TestRotatingAnAgentTokenEndsTheOldSession(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	agentLog := s.node.startAgent(t).Watch()
	s.cp.createDomain(t, "www.impulse-max.com")
	s.waitConfigured(t, "www.impulse-max.com")
	old := s.node.cfg["token"].(string)

	var rotated struct {
		Token string `json:"token"`
	}
	s.cp.call(t, "POST", "/api/agents/1/rotate-token", "", &rotated)
	if !strings.HasPrefix(rotated.Token, "sja_") || rotated.Token == old {
		t.Fatalf("rotate-token returned %q", rotated.Token)
	}
	proctest.WaitLine(t, agentLog, refusedUnauthorized, 15*time.Second)
	ys, reply, err := gatewaytest.Connect(s.cp.agentAddr, helloWith(old))
	if err != nil {
		t.Fatal(err)
	}
	ys.Close()
	if e, ok := reply.(protocol.Error); !ok || e.Code != protocol.CodeUnauthorized {
		t.Errorf("the old token got %#v, want unauthorized", reply)
	}

	s.node.agent.Stop(t, syscall.SIGTERM, 30*time.Second)
	s.node.cfg["token"] = rotated.Token
	s.node.startAgent(t)
	s.cp.createDomain(t, "shop.impulse-max.com")
	s.waitConfigured(t, "shop.impulse-max.com")
}
