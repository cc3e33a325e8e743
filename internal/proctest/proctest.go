// Package proctest runs the module's real binaries in tests: it builds sajet-controlplane and
// sajet-agent once per test process, starts commands with their output streamed line by line to
// the test log and to whoever watches it, waits for lines, and stops or kills the processes.
package proctest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const module = "github.com/jeturing/sajet-domains"

// binDirPrefix names the directories Binaries builds into; the owning test process's id follows.
const binDirPrefix = "sajet-proctest-bin-"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds sajet-controlplane and sajet-agent once per test process, side by side in one
// directory as `make build` puts them (`sajet-controlplane dev` runs the agent it finds beside
// itself), and returns their paths. A build failure fails every test that asks. The directory
// outlives the process (nothing runs when a test binary exits); the next test process removes
// those whose process is gone.
func Binaries(t testing.TB) (controlplane, agent string) {
	t.Helper()
	buildOnce.Do(func() {
		removeStaleBinDirs()
		binDir, buildErr = os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
			module+"/controlplane/cmd/sajet-controlplane", module+"/agent/cmd/sajet-agent")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "sajet-controlplane"), filepath.Join(binDir, "sajet-agent")
}

// removeStaleBinDirs removes the binary directories of test processes that have exited.
func removeStaleBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, dir := range dirs {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), binDirPrefix), "-")
		if n, err := strconv.Atoi(pid); err == nil && n > 0 && syscall.Kill(n, 0) == syscall.ESRCH {
			_ = os.RemoveAll(dir)
		}
	}
}

// Proc is a started command whose combined output is read line by line.
type Proc struct {
	// Cmd is the started command (Cmd.Process.Pid, for instance).
	Cmd *exec.Cmd
	// Lines receives every line from the first one: it is subscribed before the process starts,
	// so a line printed at once (a listening address) is never missed. Like every subscription
	// it holds 4,096 lines; lines that find it full are dropped, and it is closed when the
	// output ends.
	Lines <-chan string

	mu     sync.Mutex
	subs   []chan string
	closed bool // the output has ended: no more subscriptions
	done   chan struct{}
	err    error // set before done is closed
}

// subscriptionBuffer is how many unread lines a subscriber may have before lines are dropped for it.
const subscriptionBuffer = 4096

// Start starts cmd with its stdout and stderr streamed, line by line, to t.Log (as "name: line")
// and to the process's subscribers. The process is killed when the test ends if it still runs.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	p.Lines = p.Watch()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			t.Log(name + ": " + line)
			p.mu.Lock()
			for _, c := range p.subs {
				select {
				case c <- line:
				default: // nobody reads it any more
				}
			}
			p.mu.Unlock()
		}
		if err := sc.Err(); err != nil {
			t.Logf("%s: output no longer read line by line: %v", name, err)
		}
		_, _ = io.Copy(io.Discard, pr) // a line over 1 MiB: keep draining, so the process never blocks
		p.mu.Lock()
		for _, c := range p.subs {
			close(c)
		}
		p.subs, p.closed = nil, true
		p.mu.Unlock()
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned // the last lines are logged before Done, so never after the test ended
		p.err = err
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Watch returns a channel of the lines printed from now on (see Lines).
func (p *Proc) Watch() <-chan string {
	c := make(chan string, subscriptionBuffer)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		close(c)
	} else {
		p.subs = append(p.subs, c)
	}
	return c
}

// Done is closed once the process has exited and its output has been read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error (nil for a clean exit); only meaningful once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Kill kills the process if it still runs and waits for it.
func (p *Proc) Kill() {
	select {
	case <-p.done:
	default:
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Stop sends sig and waits up to timeout for the process to exit, failing the test if it does
// not; it returns the exit error (nil for a clean exit).
func (p *Proc) Stop(t testing.TB, sig os.Signal, timeout time.Duration) error {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		select {
		case <-p.done: // it had exited already
		default:
			t.Fatalf("%s: %v", p.Cmd.Path, err)
		}
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %s of %v", p.Cmd.Path, timeout, sig)
		return nil
	}
}

// WaitLine waits up to timeout for a line matching re on lines and returns its first submatch
// (the whole line when re has no group). It fails the test if the output ends first.
func WaitLine(t testing.TB, lines <-chan string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	return WaitLines(t, lines, timeout, re)[0]
}

// WaitLines waits up to timeout until each of res has matched a line on lines, in any order, and
// returns the first submatch of each (the whole line for one without a group), in the order of
// res; a later match of an expression already seen does not replace the first. It fails the test
// if the output ends first.
func WaitLines(t testing.TB, lines <-chan string, timeout time.Duration, res ...*regexp.Regexp) []string {
	t.Helper()
	got := make([]string, len(res))
	seen := make([]bool, len(res))
	missing := func() []string {
		var m []string
		for i, re := range res {
			if !seen[i] {
				m = append(m, re.String())
			}
		}
		return m
	}
	deadline := time.After(timeout)
	for len(missing()) > 0 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the process exited before printing %s", strings.Join(missing(), " and "))
			}
			for i, re := range res {
				if m := re.FindStringSubmatch(line); m != nil && !seen[i] {
					seen[i], got[i] = true, line
					if len(m) > 1 {
						got[i] = m[1]
					}
				}
			}
		case <-deadline:
			t.Fatalf("no line matching %s within %s", strings.Join(missing(), " and "), timeout)
		}
	}
	return got
}

// FreeAddr returns a loopback address ("127.0.0.1:port") nobody listens on right now, for a
// process that must come back on the same address after a restart.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
