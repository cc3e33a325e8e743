package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The system test's Debian root: what the issue found a booted, polkit-enabled systemd needs
// (polkitd needs libpam-systemd for logind, or debootstrap fails configuring it).
const containerPackages = "systemd,systemd-sysv,libpam-systemd,dbus,polkitd,adduser,ca-certificates,curl"

// container is a Debian root booted by systemd-nspawn: a real systemd as its PID 1, with real
// D-Bus and polkit. It shares the host's network namespace, so its loopback is the host's: the
// agent inside reaches a control plane on the host's 127.0.0.1, and the host reaches the agent's
// health endpoint and cloudflared's metrics the same way.
type container struct {
	root    string
	pid     int // the container's systemd, as the host sees it
	nspawn  *exec.Cmd
	console *syncBuffer
	exited  chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cannotRun skips the test with why this host cannot run it, or fails it when CI=true: CI must
// run the system test, so a missing piece there is a broken CI, not a reason to skip.
func cannotRun(t *testing.T, why string) {
	t.Helper()
	msg := "system test not run: " + why
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: .ci/run installs what it needs; this must not be skipped)")
	}
	t.Skip(msg)
}

// lastLines is the end of a log, for messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// bootContainer makes a fresh root from the cached base system (debootstrap builds it the first
// time, about 90 s; it is kept as a tarball like the packaging test's), boots it, and waits for
// systemd to reach running. It is stopped and removed when the test ends.
func bootContainer(t *testing.T) *container {
	t.Helper()
	if os.Geteuid() != 0 {
		cannotRun(t, "needs root (debootstrap, systemd-nspawn, nsenter)")
	}
	for tool, pkg := range map[string]string{"debootstrap": "debootstrap", "systemd-nspawn": "systemd-container", "nsenter": "util-linux", "tar": "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			cannotRun(t, tool+" not installed (apt-get install "+pkg+"; .ci/run installs it)")
		}
	}
	tarball := baseTarball(t)
	dir, err := os.MkdirTemp("", "sajet-system-")
	if err != nil {
		t.Fatal(err)
	}
	c := &container{root: filepath.Join(dir, "root"), console: &syncBuffer{}, exited: make(chan struct{})}
	t.Cleanup(func() {
		c.stop(t)
		// nspawn mounted nothing on the host (its mounts live in its own namespace).
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove %s: %v", dir, err)
		}
	})
	if err := os.MkdirAll(c.root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--numeric-owner", "-xzf", tarball, "-C", c.root).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", tarball, err, out)
	}
	// --register=no --keep-unit: the host has no systemd as PID 1 (no machined, no scope units);
	// the container stays in the caller's cgroup. No --private-network: the host's loopback is
	// the container's.
	c.nspawn = exec.Command("systemd-nspawn", "--quiet", "-D", c.root, "-b", "--register=no", "--keep-unit",
		"--console=read-only", "--machine=sajet-system-"+strconv.Itoa(os.Getpid()))
	c.nspawn.Stdout, c.nspawn.Stderr = c.console, c.console
	if err := c.nspawn.Start(); err != nil {
		cannotRun(t, "systemd-nspawn does not start: "+err.Error())
	}
	go func() { _ = c.nspawn.Wait(); close(c.exited) }()
	c.pid = c.findInit(t)
	// systemd's own wait: running, or degraded when some unit failed (listed for the log). Until
	// its socket is up systemctl cannot connect, or says "offline": ask again.
	var out, state string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err = c.exec(90*time.Second, "systemctl", "is-system-running", "--wait")
		if state = strings.TrimSpace(out); state == "running" || state == "degraded" {
			break
		}
	}
	if state != "running" && state != "degraded" {
		cannotRun(t, fmt.Sprintf("the container's systemd did not reach running: %q %v\n%s", state, err, lastLines(c.console.String(), 30)))
	}
	if state == "degraded" {
		failed, _ := c.exec(10*time.Second, "systemctl", "--failed", "--no-legend")
		t.Logf("container booted degraded; failed units:\n%s", failed)
	}
	return c
}

// findInit waits for the container's systemd: the descendant of systemd-nspawn that is PID 1 in
// its own PID namespace (nspawn's grandchild or child, depending on the version).
func (c *container) findInit(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			cannotRun(t, "systemd-nspawn exited while booting:\n"+lastLines(c.console.String(), 30))
		default:
		}
		for _, pid := range descendants(c.nspawn.Process.Pid) {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				if f := strings.Fields(line); len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
					return pid
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cannotRun(t, "no systemd inside the container within 30s:\n"+lastLines(c.console.String(), 30))
	return 0
}

// descendants lists the processes below pid, breadth first.
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
				queue = append(queue, n)
			}
		}
	}
	return out
}

// stop powers the container off (systemd-nspawn turns SIGTERM into a clean shutdown of the
// container's systemd), and kills it if that takes more than 30s.
func (c *container) stop(t *testing.T) {
	if c.nspawn == nil || c.nspawn.Process == nil {
		return
	}
	_ = c.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Logf("container did not shut down within 30s; killing it")
		_ = c.nspawn.Process.Kill()
		<-c.exited
	}
}

// baseTarball returns the cached base system, building it with debootstrap when missing. The
// cache sits beside the packaging test's ($SAJET_PKGTEST_CACHE, default ~/.cache/sajet-packaging),
// named by the suite and a hash of the package list, so a change of the list builds a new one.
func baseTarball(t *testing.T) string {
	t.Helper()
	suite := "bookworm"
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok && v != "" {
				suite = strings.Trim(v, `"`)
			}
		}
	}
	cache := os.Getenv("SAJET_PKGTEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "sajet-packaging")
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			cache = filepath.Join(x, "sajet-packaging")
		}
	}
	sum := sha256.Sum256([]byte(containerPackages))
	tarball := filepath.Join(cache, fmt.Sprintf("%s-systemd-%s.tar.gz", suite, hex.EncodeToString(sum[:4])))
	if fi, err := os.Stat(tarball); err == nil && fi.Size() > 0 {
		return tarball
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	mirror := os.Getenv("DEBIAN_MIRROR")
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	root := t.TempDir()
	t.Logf("debootstrap %s from %s (cached afterwards in %s)", suite, mirror, tarball)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+containerPackages, suite, root, mirror).CombinedOutput()
	if err != nil {
		cannotRun(t, fmt.Sprintf("debootstrap %s from %s failed (%v):\n%s", suite, mirror, err, lastLines(string(out), 20)))
	}
	tmp := tarball + ".tmp"
	if out, err := exec.Command("tar", "--numeric-owner", "-czf", tmp, "-C", root, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar the base system: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	return tarball
}

// exec runs a command inside the container (all of its namespaces, its root and working
// directory) with a clean environment, and returns its combined output.
func (c *container) exec(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"-t", strconv.Itoa(c.pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w",
		"env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s: timed out after %s", strings.Join(args, " "), timeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// sh runs a shell command inside the container as root and fails the test if it fails.
func (c *container) sh(t *testing.T, script string) string {
	t.Helper()
	out, err := c.exec(2*time.Minute, "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// asAgent runs a command inside the container as the user sajet-agent (not through a login:
// polkit judges the process's uid).
func (c *container) asAgent(args ...string) (string, error) {
	return c.exec(time.Minute, append([]string{"setpriv", "--reuid=sajet-agent", "--regid=sajet-agent", "--init-groups"}, args...)...)
}

// path is a file of the container as the host sees it.
func (c *container) path(p string) string { return filepath.Join(c.root, p) }

// write puts a file into the container.
func (c *container) write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(c.path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path(p), []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(c.path(p), mode); err != nil {
		t.Fatal(err)
	}
}

// read reads a file of the container.
func (c *container) read(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(c.path(p))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// copyIn copies a host file into the container.
func (c *container) copyIn(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	c.write(t, dst, string(data), mode)
}

// unitProps reads properties of a unit (systemctl show) into a map.
func (c *container) unitProps(t *testing.T, unit string, props ...string) map[string]string {
	t.Helper()
	out, err := c.exec(30*time.Second, "systemctl", "show", "-p", strings.Join(props, ","), unit)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}
