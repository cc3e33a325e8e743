// Package cloudflaredtest runs the real cloudflared binary from tests, so that they can ask
// cloudflared itself whether it accepts a config.yml and which rule it matches, instead of
// trusting our copy of its rules. It only uses what works offline:
// `cloudflared tunnel --config F ingress validate` and `… ingress rule URL`.
package cloudflaredtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvBinary names the environment variable that points at a cloudflared binary.
const EnvBinary = "SAJET_CLOUDFLARED"

// Path returns the cloudflared binary tests should run: $SAJET_CLOUDFLARED, else cloudflared on
// PATH, else shared/tools/cloudflared/cloudflared beside the checkout or beside one of its
// parent directories. When none is found the test
// is skipped, or fails when CI=true (a tool missing in CI must not turn tests into skips).
func Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		if !executable(p) {
			t.Fatalf("%s=%s is not an executable file", EnvBinary, p)
		}
		return p
	}
	if p, err := exec.LookPath("cloudflared"); err == nil {
		return p
	}
	// The project's build machines (and CI) keep the real binary in shared/tools/cloudflared/
	// beside the checkout; a clone made deeper (a worktree, a CI workspace) finds it higher up.
	var looked []string
	if root, err := moduleRoot(); err == nil {
		for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
			p := filepath.Join(dir, "shared", "tools", "cloudflared", "cloudflared")
			if executable(p) {
				return p
			}
			looked = append(looked, p)
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	msg := "cloudflared not found: install it (Cloudflare's package, or a release from " +
		"https://github.com/cloudflare/cloudflared/releases) so that `cloudflared` is on PATH, or set " +
		EnvBinary + "=/path/to/cloudflared"
	if len(looked) > 0 {
		msg += " (also looked for " + strings.Join(looked, ", ") + ")"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// moduleRoot walks up from the working directory (a test's package directory) to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Result is cloudflared's verdict on a config file (`ingress validate`).
type Result struct {
	// OK: exit status 0 (possibly with Warnings).
	OK bool
	// Failed is the reason after "Validation failed: ", when the rules were refused.
	Failed string
	// LoadError is why cloudflared could not load the file at all, when it did not get as far
	// as the rules: a YAML error (without the "error parsing YAML in config file at PATH: "
	// prefix), a flag of the wrong type, or "No configuration file was found…" for an empty file.
	LoadError string
	// Warnings is what cloudflared prints under "Warning: unused keys detected…" (exit 0):
	// yaml.v3's list of unknown fields.
	Warnings string
}

// Validate runs `cloudflared tunnel --config <file> ingress validate` on config.
func Validate(t testing.TB, bin string, config []byte) Result {
	t.Helper()
	path := writeConfig(t, config)
	stdout, stderr, code := run(t, bin, "tunnel", "--config", path, "ingress", "validate")
	switch code {
	case 0:
		const warn = "Warning: unused keys detected in your config file. Here is a list of unused keys:\n"
		if _, w, ok := strings.Cut(stdout, warn); ok {
			return Result{OK: true, Warnings: strings.TrimSpace(w)}
		}
		if !strings.Contains(stdout, "\nOK\n") {
			t.Fatalf("cloudflared ingress validate: exit 0 without OK or a warning:\n%s%s", stdout, stderr)
		}
		return Result{OK: true}
	case 1:
		msg := strings.TrimSpace(dropLogLines(stderr))
		if reason, ok := strings.CutPrefix(msg, "Validation failed: "); ok {
			return Result{Failed: reason}
		}
		if _, yamlErr, ok := strings.Cut(msg, "error parsing YAML in config file at "+path+": "); ok {
			msg = yamlErr
		}
		return Result{LoadError: msg}
	default:
		t.Fatalf("cloudflared ingress validate: exit status %d:\n%s%s", code, stdout, stderr)
		return Result{}
	}
}

var matched = regexp.MustCompile(`(?m)^Matched rule #(-?\d+)$`)

// MatchRule runs `cloudflared tunnel --config <file> ingress rule <url>` and returns the index of
// the rule cloudflared picks, counting from 0 as cloudflared prints it. The config must be
// valid.
func MatchRule(t testing.TB, bin string, config []byte, url string) int {
	t.Helper()
	path := writeConfig(t, config)
	stdout, stderr, code := run(t, bin, "tunnel", "--config", path, "ingress", "rule", url)
	m := matched.FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("cloudflared ingress rule %s: exit status %d:\n%s%s", url, code, stdout, stderr)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func writeConfig(t testing.TB, config []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "config-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(config); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// run runs cloudflared without the TUNNEL_* variables it reads flags from, so the environment
// cannot change a verdict.
func run(t testing.TB, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TUNNEL_") && !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMAXPROCS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// A one-shot check needs neither a collector nor threads: this saves ~15% of its CPU time,
	// which adds up over hundreds of runs.
	cmd.Env = append(cmd.Env, "GOGC=off", "GOMAXPROCS=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		t.Fatalf("running %s %s: %v\n%s", bin, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), code
}

// logLine is a zerolog line such as "2026-11-29T20:13:22Z ERR Configuration file … was empty".
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+ [A-Z]{3} `)

func dropLogLines(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !logLine.MatchString(line) {
			b.WriteString(line)
		}
	}
	return b.String()
}
