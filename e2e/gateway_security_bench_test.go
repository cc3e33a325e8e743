package e2e

import (
	"crypto/tls"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// These benchmarks measure what a peer can make the control-plane binary hold on the agent port;
// they report figures (JSON lines) and assert nothing about them. They use only what every
// protocol version has (a yamux client, gatewaytest.Connect), so the same file measures the
// gateway before protocol 3 too:
//
//	go test ./e2e/ -run '^$' -bench 'GatewayMemory' -benchtime 1x
//
// (before: copy this file into a worktree of d25fb64 and run the same command there).

// floodStreams opens streams on ys and pushes up to perStream bytes of junk on each, for at most
// hold; the peer's yamux buffers what it does not read (at most one 256 KiB window per stream).
// It returns how many streams it opened and how many of them the peer reset.
func floodStreams(ys *yamux.Session, streams, perStream int, prefix []byte, hold time.Duration) (opened, reset int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	junk := make([]byte, perStream)
	deadline := time.Now().Add(hold)
	for range streams {
		st, err := ys.OpenStream()
		if err != nil {
			break
		}
		opened++
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = st.SetDeadline(deadline)
			_, err := st.Write(append(append([]byte{}, prefix...), junk...))
			if err == nil {
				_, err = st.Read(make([]byte, 1))
			}
			if err == yamux.ErrConnectionReset {
				mu.Lock()
				reset++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return opened, reset
}

// BenchmarkGatewayMemoryUnauthenticated: connections that never say hello but speak yamux at once
// (the attack of the issue: before protocol 3 the gateway ran yamux with default limits for them)
// open 256 streams each and push 256 KiB on every one. Reported: the control plane's RSS before,
// its peak while they are held, and the growth per connection.
func BenchmarkGatewayMemoryUnauthenticated(b *testing.B) {
	const conns = 10
	for b.Loop() {
		_, dbURL := storetest.NewDBURL(b)
		certFile, keyFile := gatewaytest.CertificateFiles(b)
		cp := startControlPlane(b, dbURL, proctest.FreeAddr(b), certFile, keyFile)
		pid := cp.p.Cmd.Process.Pid
		time.Sleep(time.Second)
		rss0, _ := rssKB(b, pid)
		var wg sync.WaitGroup
		var peak int64
		var mu sync.Mutex
		resets := 0
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := tls.Dial("tcp", cp.agentAddr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) //nolint:gosec // test certificate
				if err != nil {
					return
				}
				defer conn.Close()
				cfg := yamux.DefaultConfig()
				cfg.AcceptBacklog = 4096 // open streams without waiting for the peer's answers
				cfg.LogOutput = io.Discard
				ys, err := yamux.Client(conn, cfg)
				if err != nil {
					return
				}
				defer ys.Close()
				_, n := floodStreams(ys, 256, 256<<10, nil, 8*time.Second)
				mu.Lock()
				resets += n
				mu.Unlock()
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for sampling := true; sampling; {
			select {
			case <-done:
				sampling = false
			case <-time.After(100 * time.Millisecond):
			}
			if rss, _ := rssKB(b, pid); rss > peak {
				peak = rss
			}
		}
		printJSON(b, map[string]any{"bench": "gateway_memory_unauthenticated", "connections": conns,
			"streams_per_connection": 256, "bytes_per_stream": 256 << 10, "streams_reset": resets,
			"cp_rss_mb_before": rss0 / 1024, "cp_rss_mb_peak": peak / 1024,
			"cp_rss_growth_mb_per_connection": float64(peak-rss0) / 1024 / conns})
		b.ReportMetric(float64(peak-rss0)/1024/conns, "MB/conn")
	}
}

// BenchmarkGatewayMemoryStreamFlood: one authenticated agent session opens 5,000 streams, each
// announcing a 1 MiB frame and pushing 64 KiB of it. Reported: the control plane's RSS before and
// at its peak, the growth, and how many streams it reset.
func BenchmarkGatewayMemoryStreamFlood(b *testing.B) {
	const streams = 5000
	for b.Loop() {
		_, dbURL := storetest.NewDBURL(b)
		certFile, keyFile := gatewaytest.CertificateFiles(b)
		cp := startControlPlane(b, dbURL, proctest.FreeAddr(b), certFile, keyFile)
		token := cp.seed(b)
		pid := cp.p.Cmd.Process.Pid
		ys, reply, err := gatewaytest.Connect(cp.agentAddr, protocol.Hello{ProtocolVersion: protocol.ProtocolVersion,
			Agent: "pct-105", Token: token, Tunnel: "tcs-sajet-tunnel"})
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := reply.(protocol.Welcome); !ok {
			b.Fatalf("hello answered with %#v", reply)
		}
		time.Sleep(time.Second)
		rss0, _ := rssKB(b, pid)
		lines := cp.p.Watch()
		var peak int64
		done := make(chan int)
		go func() { _, n := floodStreams(ys, streams, 64<<10, []byte{0, 0x10, 0, 0}, 10*time.Second); done <- n }()
		var resets int
		for sampling := true; sampling; {
			select {
			case resets = <-done:
				sampling = false
			case <-time.After(100 * time.Millisecond):
			}
			if rss, _ := rssKB(b, pid); rss > peak {
				peak = rss
			}
		}
		ys.Close()
		logLines := len(lines)
		printJSON(b, map[string]any{"bench": "gateway_memory_stream_flood", "streams": streams, "bytes_per_stream": 64 << 10,
			"streams_reset": resets, "cp_log_lines": logLines, "cp_rss_mb_before": rss0 / 1024, "cp_rss_mb_peak": peak / 1024,
			"cp_rss_growth_mb": float64(peak-rss0) / 1024})
		b.ReportMetric(float64(peak-rss0)/1024, "MB/session")
	}
}
