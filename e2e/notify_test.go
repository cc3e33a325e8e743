package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/gateway/gatewaytest"
	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
)

// notifySocket listens where systemd would (NOTIFY_SOCKET) and returns the datagrams it gets.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

func expectNotify(t *testing.T, msgs <-chan string, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s sent to NOTIFY_SOCKET within 30s", want)
		}
	}
}

// Both units are Type=notify with a watchdog: without READY=1 systemd would fail the start, and
// without WATCHDOG=1 it would kill the service.
func TestBinariesNotifySystemd(t *testing.T) {
	t.Parallel()
	cpBin, agentBin := proctest.Binaries(t)
	_, dbURL := storetest.NewDBURL(t)
	certFile, keyFile := gatewaytest.CertificateFiles(t)

	sock, msgs := notifySocket(t)
	cmd := exec.Command(cpBin, "serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0", "--dns-resolver", "127.0.0.1:9",
		"--agent-addr", "127.0.0.1:0", "--agent-tls-cert", certFile, "--agent-tls-key", keyFile)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	proctest.Start(t, "cp", cmd)
	expectNotify(t, msgs, "READY=1")
	expectNotify(t, msgs, "WATCHDOG=1")

	sock2, msgs2 := notifySocket(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "base.yml"), baseFile)
	writeFile(t, filepath.Join(dir, "agent.yml"), `control_plane: 127.0.0.1:9
token: sja_unused
tunnel: tcs-sajet-tunnel
base_config: base.yml
config_path: config.yml
health_addr: 127.0.0.1:0
state_dir: state
`)
	acmd := exec.Command(agentBin, "--config", filepath.Join(dir, "agent.yml"))
	acmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock2, "WATCHDOG_USEC=200000")
	proctest.Start(t, "agent", acmd)
	// Ready although the control plane is unreachable: the link comes up in the background.
	expectNotify(t, msgs2, "READY=1")
	expectNotify(t, msgs2, "WATCHDOG=1")
}
