package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimal = `control_plane: cp.sajet.us:7443
token: sja_abc
tunnel: tcs-sajet-tunnel
base_config: /etc/sajet-agent/base.yml
config_path: /etc/cloudflared/config.yml
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.HealthAddr != DefaultHealthAddr || c.StateDir != DefaultStateDir || c.MinRestartInterval != DefaultMinRestartInterval ||
		c.Keepalive != DefaultKeepalive || c.Unit != "" || c.Name == "" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.ServerNameOrHost() != "cp.sajet.us" {
		t.Errorf("server name = %q", c.ServerNameOrHost())
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, extra, replace, want string
	}{
		{name: "unknown key", extra: "restart_unit: x\n", want: "field restart_unit not found"},
		{name: "no port", replace: "control_plane: cp.sajet.us", want: "control_plane"},
		{name: "not an agent token", replace: "token: sjt_abc", want: "token"},
		{name: "both CA and pin", extra: "ca_file: /x\nfingerprint: " + strings.Repeat("ab", 32) + "\n", want: "set one, not both"},
		{name: "bad fingerprint", extra: "fingerprint: abcd\n", want: "64 hex digits"},
		{name: "same file twice", replace: "config_path: /etc/sajet-agent/base.yml", want: "must be different files"},
		{name: "bad ready url", extra: "ready_url: 127.0.0.1:20241/ready\n", want: "ready_url"},
		{name: "bad health addr", extra: "health_addr: 9460\n", want: "health_addr"},
		{name: "negative duration", extra: "ready_timeout: -1s\n", want: "must not be negative"},
		{name: "tiny keepalive", extra: "keepalive: 10ms\n", want: "keepalive"},
		{name: "not yaml", replace: "token: [", want: "yaml"},
		{name: "unit not a service", extra: "unit: cloudflared\n", want: "not a systemd service name"},
		{name: "unit and units", extra: "unit: cloudflared.service\nunits:\n  - name: cloudflared@1.service\n", want: "not with units"},
		{name: "ready_url and units", extra: "ready_url: http://127.0.0.1:1/ready\nunits:\n  - name: cloudflared@1.service\n", want: "not with units"},
		{name: "replica without ready url", extra: "units:\n  - {name: cloudflared@1.service, ready_url: http://127.0.0.1:1/ready}\n  - {name: cloudflared@2.service}\n", want: "units[1].ready_url: required with several units"},
		{name: "replica listed twice", extra: "units:\n  - {name: cloudflared@1.service, ready_url: http://127.0.0.1:1/ready}\n  - {name: cloudflared@1.service, ready_url: http://127.0.0.1:2/ready}\n", want: "listed twice"},
		{name: "two replicas, one ready url", extra: "units:\n  - {name: cloudflared@1.service, ready_url: http://127.0.0.1:1/ready}\n  - {name: cloudflared@2.service, ready_url: http://127.0.0.1:1/ready}\n", want: "another unit's too"},
		{name: "replica name with a quote", extra: "units:\n  - {name: 'a\"b.service'}\n", want: "units[0].name"},
		{name: "replica bad ready url", extra: "units:\n  - {name: cloudflared@1.service, ready_url: 127.0.0.1:1}\n", want: "units[0].ready_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := minimal + tc.extra
			if tc.replace != "" {
				key := strings.SplitN(tc.replace, ":", 2)[0]
				lines := strings.Split(doc, "\n")
				for i, l := range lines {
					if strings.HasPrefix(l, key+":") {
						lines[i] = tc.replace
					}
				}
				doc = strings.Join(lines, "\n")
			}
			_, err := Parse([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestFingerprintForms(t *testing.T) {
	hexs := strings.Repeat("AB", 32)
	colons := strings.TrimSuffix(strings.Repeat("ab:", 32), ":")
	for _, s := range []string{hexs, colons, "sha256:" + strings.ToLower(hexs)} {
		b, err := ParseFingerprint(s)
		if err != nil || len(b) != 32 || b[0] != 0xab {
			t.Errorf("ParseFingerprint(%q) = %x, %v", s, b, err)
		}
	}
}

func TestLoadResolvesRelativePathsAndBoundsSize(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yml")
	doc := strings.NewReplacer("/etc/sajet-agent/base.yml", "base.yml", "/etc/cloudflared/config.yml", "cf/config.yml").Replace(minimal) + "state_dir: state\nstatus_interval: 2s\n"
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseConfig != filepath.Join(dir, "base.yml") || c.ConfigPath != filepath.Join(dir, "cf/config.yml") || c.StateDir != filepath.Join(dir, "state") {
		t.Errorf("paths not resolved against the config's directory: %+v", c)
	}
	if c.StatusInterval != 2*time.Second {
		t.Errorf("status_interval = %s", c.StatusInterval)
	}
	big := filepath.Join(dir, "big.yml")
	if err := os.WriteFile(big, []byte(minimal+"# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of an oversize file = %v", err)
	}
}

func TestReplicas(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		want        []UnitConfig
	}{
		{name: "render only"},
		{name: "one unit", extra: "unit: cloudflared.service\nready_url: http://127.0.0.1:20241/ready\n",
			want: []UnitConfig{{Name: "cloudflared.service", ReadyURL: "http://127.0.0.1:20241/ready"}}},
		{name: "replicas in order", extra: "units:\n  - {name: cloudflared@2.service, ready_url: http://127.0.0.1:20242/ready}\n  - {name: cloudflared@1.service, ready_url: http://127.0.0.1:20241/ready}\n",
			want: []UnitConfig{{Name: "cloudflared@2.service", ReadyURL: "http://127.0.0.1:20242/ready"}, {Name: "cloudflared@1.service", ReadyURL: "http://127.0.0.1:20241/ready"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(minimal + tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Replicas(); !slices.Equal(got, tc.want) {
				t.Errorf("Replicas = %+v, want %+v", got, tc.want)
			}
		})
	}
}
