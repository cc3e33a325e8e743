// Package config reads and checks the agent's YAML file (docs/ARCHITECTURE.md §6), /etc/sajet-agent/agent.yml.
package config

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds agent.yml: it holds a token and a dozen paths.
const MaxFileSize = 64 << 10

// Config is agent.yml. Zero durations take the defaults of Load.
type Config struct {
	// ControlPlane is the gateway's host:port (the control plane's --agent-addr).
	ControlPlane string `yaml:"control_plane"`
	// Token is the agent token (sja_…) the control plane returned once at enrolment.
	Token string `yaml:"token"`
	// Tunnel is the tunnel's name as registered in the control plane.
	Tunnel string `yaml:"tunnel"`
	// Name is how this agent calls itself in logs and status; default the host name.
	Name string `yaml:"name"`
	// CAFile verifies the control plane's certificate chain; Fingerprint instead pins the SHA-256
	// of its leaf certificate (as `openssl x509 -fingerprint -sha256` prints it, colons optional).
	// Neither → the system roots.
	CAFile      string `yaml:"ca_file"`
	Fingerprint string `yaml:"fingerprint"`
	// ServerName overrides the name checked in the control plane's certificate (default: the
	// host of ControlPlane).
	ServerName string `yaml:"server_name"`

	// BaseConfig is the operator's cloudflared file (tunnel, credentials, own rules).
	BaseConfig string `yaml:"base_config"`
	// ConfigPath is the file cloudflared reads, which the agent owns.
	ConfigPath string `yaml:"config_path"`
	// Unit is the systemd unit to restart after a change; empty (and no Units) = render only,
	// never restart.
	Unit string `yaml:"unit"`
	// Units are replicas of the tunnel's connector (e.g. cloudflared@1.service and
	// cloudflared@2.service), each with its own ready URL. An apply restarts them one at a time,
	// the next only once the previous one is ready again, so some replica always serves. Set
	// unit (with ready_url) or units, not both.
	Units []UnitConfig `yaml:"units"`
	// CloudflaredBin, when set, also validates each config with `cloudflared tunnel --config F
	// ingress validate`.
	CloudflaredBin string `yaml:"cloudflared_bin"`
	// ReadyURL is cloudflared's /ready on its metrics port; when set, a restart counts only once
	// it answers 200 with at least one ready connection.
	ReadyURL string `yaml:"ready_url"`
	// StartGrace is how long a unit without a ready URL must stay active after a restart to
	// count as started: with Type=simple systemd reports a unit active as soon as its process
	// runs, and cloudflared exits within milliseconds on a config it refuses.
	StartGrace time.Duration `yaml:"start_grace"`
	// HealthAddr serves /healthz, /livez, /readyz, /status and /metrics; "off" disables it.
	HealthAddr string `yaml:"health_addr"`
	// StateDir holds the applied state and the pending marker across crashes.
	StateDir string `yaml:"state_dir"`

	// MinRestartInterval spaces cloudflared restarts; changes meanwhile are coalesced. Keep it
	// above 2s unless the units lift systemd's start limit: by default systemd refuses a sixth
	// start of a unit within 10s (StartLimitBurst=5, StartLimitIntervalSec=10s; the job fails and
	// the unit shows start-limit-hit), and every apply starts every unit once.
	MinRestartInterval time.Duration `yaml:"min_restart_interval"`
	// RestartTimeout bounds the restart job (systemd's own timeout may be longer).
	RestartTimeout time.Duration `yaml:"restart_timeout"`
	// ReadyTimeout bounds the wait for the unit to be active and cloudflared ready.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// StatusInterval is how often the agent reports its status to the control plane.
	StatusInterval time.Duration `yaml:"status_interval"`
	// Keepalive is the yamux keepalive interval; a silent peer is dropped after it plus the
	// write timeout.
	Keepalive time.Duration `yaml:"keepalive"`
	// RescanInterval re-hashes config.yml and the base file in case a change notification was
	// lost.
	RescanInterval time.Duration `yaml:"rescan_interval"`
}

// UnitConfig is one replica in Units.
type UnitConfig struct {
	// Name is the systemd unit, e.g. cloudflared@1.service.
	Name string `yaml:"name"`
	// ReadyURL is this replica's /ready (its own --metrics address).
	ReadyURL string `yaml:"ready_url"`
}

// Replicas returns the units to restart, in order: Units, or Unit with ReadyURL as the only
// one, or none (render only).
func (c *Config) Replicas() []UnitConfig {
	if len(c.Units) > 0 {
		return c.Units
	}
	if c.Unit != "" {
		return []UnitConfig{{Name: c.Unit, ReadyURL: c.ReadyURL}}
	}
	return nil
}

// UnitNames are the names of Replicas.
func (c *Config) UnitNames() []string {
	var names []string
	for _, u := range c.Replicas() {
		names = append(names, u.Name)
	}
	return names
}

// Defaults for the optional fields.
const (
	DefaultHealthAddr         = "127.0.0.1:9460"
	DefaultStateDir           = "/var/lib/sajet-agent"
	DefaultMinRestartInterval = 5 * time.Second
	DefaultRestartTimeout     = 90 * time.Second
	DefaultReadyTimeout       = 30 * time.Second
	DefaultStartGrace         = 2 * time.Second
	DefaultStatusInterval     = 15 * time.Second
	DefaultKeepalive          = 15 * time.Second
	DefaultRescanInterval     = 60 * time.Second
)

// Load reads and checks path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, MaxFileSize)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// Relative paths are relative to the config file, not to wherever the agent was started.
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.CAFile, &c.BaseConfig, &c.ConfigPath, &c.StateDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return c, nil
}

// Parse decodes and checks one file; unknown keys are errors (a typo must not silently
// fall back to a default).
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	c.setDefaults()
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.HealthAddr == "" {
		c.HealthAddr = DefaultHealthAddr
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&c.MinRestartInterval, DefaultMinRestartInterval)
	set(&c.RestartTimeout, DefaultRestartTimeout)
	set(&c.ReadyTimeout, DefaultReadyTimeout)
	set(&c.StartGrace, DefaultStartGrace)
	set(&c.StatusInterval, DefaultStatusInterval)
	set(&c.Keepalive, DefaultKeepalive)
	set(&c.RescanInterval, DefaultRescanInterval)
}

// Check reports the first problem, naming the key.
func (c *Config) Check() error {
	if _, port, err := net.SplitHostPort(c.ControlPlane); err != nil || port == "" {
		return fmt.Errorf("control_plane: want host:port, got %q", c.ControlPlane)
	}
	if !strings.HasPrefix(c.Token, "sja_") || len(c.Token) > 256 {
		return errors.New("token: want the agent token (sja_…) that POST /api/agents returned")
	}
	if c.Tunnel == "" || len(c.Tunnel) > 255 {
		return errors.New("tunnel: required, the tunnel's name in the control plane")
	}
	if len(c.Name) > 255 {
		return errors.New("name: at most 255 bytes")
	}
	if c.CAFile != "" && c.Fingerprint != "" {
		return errors.New("ca_file and fingerprint: set one, not both")
	}
	if c.Fingerprint != "" {
		if _, err := ParseFingerprint(c.Fingerprint); err != nil {
			return fmt.Errorf("fingerprint: %w", err)
		}
	}
	if c.BaseConfig == "" || c.ConfigPath == "" {
		return errors.New("base_config and config_path: both required")
	}
	if filepath.Clean(c.BaseConfig) == filepath.Clean(c.ConfigPath) {
		return errors.New("base_config and config_path: must be different files (the agent rewrites config_path)")
	}
	if err := checkReadyURL(c.ReadyURL); err != nil {
		return fmt.Errorf("ready_url: %w", err)
	}
	if err := c.checkUnits(); err != nil {
		return err
	}
	if c.HealthAddr != "off" {
		if _, _, err := net.SplitHostPort(c.HealthAddr); err != nil {
			return fmt.Errorf("health_addr: want host:port or off, got %q", c.HealthAddr)
		}
	}
	for name, d := range map[string]time.Duration{"min_restart_interval": c.MinRestartInterval,
		"restart_timeout": c.RestartTimeout, "ready_timeout": c.ReadyTimeout, "start_grace": c.StartGrace, "status_interval": c.StatusInterval,
		"keepalive": c.Keepalive, "rescan_interval": c.RescanInterval} {
		if d < 0 {
			return fmt.Errorf("%s: must not be negative", name)
		}
	}
	if c.Keepalive < time.Second {
		return errors.New("keepalive: at least 1s")
	}
	return nil
}

func checkReadyURL(u string) error {
	if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("want an http(s) URL such as http://127.0.0.1:20241/ready, got %q", u)
	}
	return nil
}

// checkUnits checks unit and units. Several replicas each need a ready URL: a replica counts as
// restarted only once it is connected again, and that is what keeps another one serving while
// the next restarts ("active" says only that the process runs).
func (c *Config) checkUnits() error {
	if len(c.Units) == 0 {
		if c.Unit != "" && !validUnitName(c.Unit) {
			return fmt.Errorf("unit: %q is not a systemd service name such as cloudflared.service", c.Unit)
		}
		return nil
	}
	if c.Unit != "" || c.ReadyURL != "" {
		return errors.New("unit and ready_url: not with units (each entry of units has its own name and ready_url)")
	}
	names, urls := map[string]bool{}, map[string]bool{}
	for i, u := range c.Units {
		switch {
		case !validUnitName(u.Name):
			return fmt.Errorf("units[%d].name: %q is not a systemd service name such as cloudflared@1.service", i, u.Name)
		case names[u.Name]:
			return fmt.Errorf("units[%d].name: %s is listed twice", i, u.Name)
		case len(c.Units) > 1 && u.ReadyURL == "":
			return fmt.Errorf("units[%d].ready_url: required with several units (the next replica restarts only once this one is ready)", i)
		case u.ReadyURL != "" && urls[u.ReadyURL]:
			return fmt.Errorf("units[%d].ready_url: %s is another unit's too (give each replica its own --metrics address)", i, u.ReadyURL)
		}
		if err := checkReadyURL(u.ReadyURL); err != nil {
			return fmt.Errorf("units[%d].ready_url: %w", i, err)
		}
		names[u.Name], urls[u.ReadyURL] = true, true
	}
	return nil
}

// validUnitName accepts what the polkit rule and systemd can name: a .service unit, template
// instances included, without path separators, spaces or quotes.
func validUnitName(s string) bool {
	if !strings.HasSuffix(s, ".service") || len(s) > 255 || len(s) == len(".service") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@._-:\\", r)) {
			return false
		}
	}
	return true
}

// ServerNameOrHost is the name the control plane's certificate must carry.
func (c *Config) ServerNameOrHost() string {
	if c.ServerName != "" {
		return c.ServerName
	}
	host, _, _ := net.SplitHostPort(c.ControlPlane)
	return host
}

// ParseFingerprint accepts 64 hex digits, optionally separated by colons, in either case.
func ParseFingerprint(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "sha256:")
	s = strings.ReplaceAll(s, ":", "")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil, errors.New("want the SHA-256 of the control plane's certificate: 64 hex digits, colons optional")
	}
	return b, nil
}

// CAPool reads CAFile.
func (c *Config) CAPool() (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificates", c.CAFile)
	}
	return pool, nil
}
