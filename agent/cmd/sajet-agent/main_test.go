package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckAndVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("agent.yml", "control_plane: cp.sajet.us:7443\ntoken: sja_x\ntunnel: tcs-sajet-tunnel\nbase_config: base.yml\nconfig_path: config.yml\n")
	for _, tc := range []struct {
		name, base, want string
		ok               bool
	}{
		{"good base", "tunnel: x\ningress:\n  - hostname: ops.sajet.us\n    service: http://127.0.0.1:9000\n", "1 operator rules, then catch-all http_status:404", true},
		{"rule after the catch-all", "ingress:\n  - service: http_status:404\n  - service: http://y\n", "rule #1", false},
		{"unknown rule key", "ingress:\n  - hostnme: a.example.com\n    service: http://y\n", "unknown ingress rule key", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write("base.yml", tc.base)
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"--config", cfg, "--check"}, &out, &errOut)
			if tc.ok != (err == nil) {
				t.Fatalf("--check = %v, want ok=%v", err, tc.ok)
			}
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("--check said %q, want %q", got, tc.want)
			}
		})
	}
	// The units against the polkit rule.
	write("base.yml", "tunnel: x\ningress:\n  - service: http_status:404\n")
	rule := write("50-sajet-agent.rules", "(function () {\n    var units = [\"cloudflared@1.service\", \"cloudflared@2.service\"];\n})();\n")
	for _, tc := range []struct {
		name, units, want string
		ok                bool
	}{
		{"the listed replicas", "units:\n  - {name: cloudflared@1.service, ready_url: http://127.0.0.1:1/ready}\n  - {name: cloudflared@2.service, ready_url: http://127.0.0.1:2/ready}\n",
			"units: cloudflared@1.service, cloudflared@2.service, restarted in this order; " + rule + " allows exactly these", true},
		{"a unit the rule does not list", "unit: cloudflared.service\n", "it does not allow cloudflared.service (restarts would be refused)", false},
		{"render only", "", "units: none (render only)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write("agent-units.yml", "control_plane: cp.sajet.us:7443\ntoken: sja_x\ntunnel: t\nbase_config: base.yml\nconfig_path: config.yml\n"+tc.units)
			var out bytes.Buffer
			err := run(context.Background(), []string{"--config", cfg, "--check", "--polkit-rule", rule}, &out, &out)
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if tc.ok != (err == nil) || !strings.Contains(got, tc.want) {
				t.Errorf("--check = %q (%v), want ok=%v saying %q", got, err, tc.ok, tc.want)
			}
		})
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, &out); err != nil || strings.TrimSpace(out.String()) != "dev" {
		t.Errorf("--version = %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"--config", filepath.Join(dir, "missing.yml")}, &out, &out); err == nil {
		t.Error("a missing config file must fail")
	}
}
