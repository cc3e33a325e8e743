package main_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/store/storetest"
	"github.com/jeturing/sajet-domains/internal/proctest"
)

// Automation flags are judged at start: a bad value is refused with the flag's name before
// anything runs.
func TestServeRefusesBadAutomationFlags(t *testing.T) {
	t.Parallel()
	bin, _ := proctest.Binaries(t)
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--webhook-secret-key", "c2hvcnQ="}, "", "--webhook-secret-key"},
		{nil, "SAJET_WEBHOOK_SECRET_KEY=not-base64!", "--webhook-secret-key"},
		{[]string{"--webhook-secret-key-file", "/nonexistent/key"}, "", "--webhook-secret-key"},
		{[]string{"--smtp-tls", "sometimes"}, "", "--smtp-tls"},
		{[]string{"--smtp-port", "0"}, "", "--smtp-port"},
		{[]string{"--misconfigured-grace", "5m"}, "", "--misconfigured-grace"},
		{[]string{"--webhook-allow-net", "not-a-net"}, "", "--webhook-allow-net"},
		{[]string{"--webhook-rate", "0"}, "", "--webhook-rate"},
		{nil, "SAJET_WEBHOOK_RATE=-3", "--webhook-rate"},
	} {
		cmd := exec.Command(bin, append([]string{"serve", "--database-url", "postgres://127.0.0.1:1/none"}, c.args...)...)
		cmd.Env = os.Environ()
		if c.env != "" {
			cmd.Env = append(cmd.Env, c.env)
		}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("serve %v %s: %v, output %q; want a refusal naming %s", c.args, c.env, err, out, c.want)
		}
	}
}

// Without a webhook key or an SMTP server, serve says at start what that means; with the key
// given through its SAJET_ twin, webhooks are on.
func TestServeSaysWhatIsOff(t *testing.T) {
	t.Parallel()
	bin, _ := proctest.Binaries(t)
	_, dbURL := storetest.NewDBURL(t)
	off := proctest.Start(t, "cp", exec.Command(bin, "serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0"))
	proctest.WaitLine(t, off.Lines, regexp.MustCompile(`(webhooks disabled: give --webhook-secret-key)`), 60*time.Second)
	proctest.WaitLine(t, off.Lines, regexp.MustCompile(`(notifications are recorded and shown at GET /api/notifications)`), 60*time.Second)

	cmd := exec.Command(bin, "serve", "--database-url", dbURL, "--http-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "SAJET_WEBHOOK_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	on := proctest.Start(t, "cp2", cmd)
	line := proctest.WaitLine(t, on.Lines, regexp.MustCompile(`(webhooks disabled|control plane listening)`), 60*time.Second)
	if line != "control plane listening" {
		t.Errorf("with SAJET_WEBHOOK_SECRET_KEY: %q", line)
	}
}
