package devenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/store"
)

// The local agent's identity. The tunnel ID is a fixed, obviously fake UUID: dev never talks to
// Cloudflare.
const (
	devTunnel   = "dev-tunnel"
	devTunnelID = "00000000-0000-4000-8000-00000000de0f"
	devAgent    = "dev-agent"
)

// devBase is the operator's base file the local agent renders on: what a real tunnel host has,
// with a placeholder credentials path.
const devBase = `# Base file of the dev tunnel: the agent renders config.yml from this plus the managed rules.
# Edit it (add your own rules above the catch-all) and watch config.yml follow.
tunnel: ` + devTunnelID + `
credentials-file: /etc/cloudflared/` + devTunnelID + `.json
ingress:
  - service: http_status:404
`

// localAgent holds what the dev stack needs to start its agent once the gateway listens.
type localAgent struct {
	dir      string // <dev>/cloudflared
	stateDir string
	token    string
	certPEM  []byte
	tunnelID int64
}

// prepareAgent creates the TLS material, the tunnel, the agent and its base file.
func prepareAgent(ctx context.Context, st *store.Store, dir string) (*localAgent, string, string, error) {
	certFile, keyFile, certPEM, err := ensureCertificate(filepath.Join(dir, "tls"))
	if err != nil {
		return nil, "", "", err
	}
	secret, hash := api.NewAgentToken()
	a, err := st.EnsureLocalAgent(ctx, "dev", devTunnel, devTunnelID, devAgent, hash)
	if err != nil {
		return nil, "", "", err
	}
	la := &localAgent{dir: filepath.Join(dir, "cloudflared"), stateDir: filepath.Join(dir, "agent-state"), token: secret,
		certPEM: certPEM, tunnelID: a.TunnelID}
	// The rendered config names every customer's hostname and backend: the owner's only.
	if err := privateDir(la.dir, 0o700); err != nil {
		return nil, "", "", err
	}
	base := filepath.Join(la.dir, "base.yml")
	if _, err := os.Stat(base); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(base, []byte(devBase), 0o600); err != nil {
			return nil, "", "", err
		}
	}
	for _, f := range []string{base, filepath.Join(la.dir, "config.yml")} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, "", "", err
		}
	}
	return la, certFile, keyFile, nil
}

// agentBinary finds sajet-agent beside this executable (make build puts both in bin/).
func agentBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this executable: %w", err)
	}
	bin := filepath.Join(filepath.Dir(self), "sajet-agent")
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("the local agent needs %s: build it with `make build` (make run does)", bin)
	}
	return bin, nil
}

// start runs bin/sajet-agent as a child process against the gateway at addr, rendering only (no
// cloudflared restart), as a tunnel host runs it. It returns at once; the process is stopped with
// SIGTERM when ctx ends, and done receives how it ended. Its output goes to out.
func (la *localAgent) start(ctx context.Context, bin, addr string, out io.Writer) (done <-chan error, err error) {
	block, _ := pem.Decode(la.certPEM)
	sum := sha256.Sum256(block.Bytes)
	// The token is rotated at every dev start, and the file lives in the private dev directory
	// only while the agent runs.
	cfg := fmt.Sprintf(`control_plane: %q
token: %q
tunnel: %s
name: %s
fingerprint: %s
base_config: %q
config_path: %q
unit: ""
health_addr: "off"
state_dir: %q
status_interval: 5s
`, addr, la.token, devTunnel, devAgent, hex.EncodeToString(sum[:]), filepath.Join(la.dir, "base.yml"),
		filepath.Join(la.dir, "config.yml"), la.stateDir)
	cfgPath := filepath.Join(la.stateDir, "agent.yml")
	if err := privateDir(la.stateDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("local agent config: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	// Ctrl-C reaches the agent's process group too; ctx ending (an error elsewhere) must stop it
	// the same way, and an apply in progress is given time to finish.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		os.Remove(cfgPath)
		return nil, fmt.Errorf("start the local agent: %w", err)
	}
	ch := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		os.Remove(cfgPath)
		if ctx.Err() != nil {
			err = nil // stopped because dev is stopping
		}
		ch <- err
	}()
	return ch, nil
}

// ensureCertificate keeps a self-signed certificate for the local gateway under dir, valid for
// ten years: dev state outlives many runs.
func ensureCertificate(dir string) (certFile, keyFile string, certPEM []byte, err error) {
	certFile, keyFile = filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key")
	if data, err := os.ReadFile(certFile); err == nil {
		if _, err := os.Stat(keyFile); err == nil {
			return certFile, keyFile, data, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "sajet dev gateway"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", nil, err
	}
	return certFile, keyFile, certPEM, nil
}
