package proctest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the process under test: with PROCTEST_HELPER set it plays one.
func TestMain(m *testing.M) {
	if mode := os.Getenv("PROCTEST_HELPER"); mode != "" {
		helper(mode)
		return
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	switch mode {
	case "serve": // a banner on both streams, a tick every 10ms; SIGTERM exits 0, SIGINT exits 3
		fmt.Println("starting")
		fmt.Fprintln(os.Stderr, "level=WARN msg=\"a warning\"")
		fmt.Println("msg=listening addr=127.0.0.1:4242")
		for i := 0; ; i++ {
			select {
			case sig := <-sigs:
				fmt.Println("stopping on", sig)
				if sig == syscall.SIGINT {
					os.Exit(3)
				}
				os.Exit(0)
			case <-time.After(10 * time.Millisecond):
				fmt.Println("tick", i)
			}
		}
	case "exit": // one line, then exit
		fmt.Println("bye")
	case "deaf": // ready, then nothing until killed; SIGTERM and SIGINT are ignored
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "long-line": // a line longer than the scanner takes, then more output and a clean exit
		fmt.Println(strings.Repeat("x", 2<<20))
		fmt.Println("after the long line")
	}
}

func helperCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PROCTEST_HELPER="+mode)
	return cmd
}

// recorder is a testing.TB whose Fatalf records the message and ends the goroutine, as the real
// one does; everything else goes to the real test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func fatalOf(t *testing.T, f func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r.fatal
}

func TestStartStreamsLinesToSubscribersAndStops(t *testing.T) {
	t.Parallel()
	p := Start(t, "helper", helperCmd("serve"))
	// Lines has every line from the first: the banner printed at once is there.
	got := WaitLines(t, p.Lines, 10*time.Second, regexp.MustCompile(`addr=(\S+)`), regexp.MustCompile(`^starting$`),
		regexp.MustCompile(`WARN`))
	if got[0] != "127.0.0.1:4242" || got[1] != "starting" || got[2] != `level=WARN msg="a warning"` {
		t.Errorf("WaitLines = %q, want the submatch, the whole line, and the line from stderr", got)
	}
	WaitLine(t, p.Lines, regexp.MustCompile(`^tick 2$`), 10*time.Second)
	ticks := p.Watch() // from now on: no tick before the third
	if tick, _ := strconv.Atoi(WaitLine(t, ticks, regexp.MustCompile(`^tick (\d+)$`), 10*time.Second)); tick < 3 {
		t.Errorf("a watcher subscribed after tick 2 received tick %d", tick)
	}
	if err := p.Stop(t, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Errorf("Stop after a clean exit = %v, want nil", err)
	}
	WaitLine(t, ticks, regexp.MustCompile(`stopping on terminated`), 10*time.Second)
	for range ticks { // closed once the output has ended
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done is not closed after Stop returned")
	}
	if _, ok := <-p.Watch(); ok {
		t.Error("a Watch after the exit received a line; it must be closed")
	}
}

func TestStopReturnsTheExitStatus(t *testing.T) {
	t.Parallel()
	p := Start(t, "helper", helperCmd("serve"))
	WaitLine(t, p.Lines, regexp.MustCompile(`^tick`), 10*time.Second)
	err := p.Stop(t, syscall.SIGINT, 10*time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Stop after SIGINT = %v, want exit status 3", err)
	}
	if p.Err() != err {
		t.Errorf("Err() = %v, want Stop's %v", p.Err(), err)
	}
	// Stopping an exited process returns its status again instead of failing.
	if again := p.Stop(t, syscall.SIGINT, time.Second); again != err {
		t.Errorf("a second Stop = %v, want %v", again, err)
	}
}

func TestStopFailsWhenTheProcessDoesNotExit(t *testing.T) {
	t.Parallel()
	p := Start(t, "helper", helperCmd("deaf"))
	WaitLine(t, p.Lines, regexp.MustCompile(`^ready$`), 10*time.Second) // its signal handler is in place
	msg := fatalOf(t, func(tb testing.TB) { _ = p.Stop(tb, syscall.SIGTERM, 200*time.Millisecond) })
	if !strings.Contains(msg, "did not exit within 200ms of terminated") {
		t.Errorf("Stop failure %q", msg)
	}
}

func TestWaitLineFails(t *testing.T) {
	t.Parallel()
	t.Run("when the output ends first", func(t *testing.T) {
		t.Parallel()
		p := Start(t, "helper", helperCmd("exit"))
		msg := fatalOf(t, func(tb testing.TB) { WaitLine(tb, p.Lines, regexp.MustCompile(`never`), 10*time.Second) })
		if msg != "the process exited before printing never" {
			t.Errorf("WaitLine failure %q", msg)
		}
	})
	t.Run("after its timeout", func(t *testing.T) {
		t.Parallel()
		p := Start(t, "helper", helperCmd("deaf"))
		WaitLine(t, p.Lines, regexp.MustCompile(`^ready$`), 10*time.Second)
		start := time.Now()
		msg := fatalOf(t, func(tb testing.TB) {
			WaitLines(tb, p.Lines, 100*time.Millisecond, regexp.MustCompile(`never`), regexp.MustCompile(`nor`))
		})
		if msg != "no line matching never and nor within 100ms" || time.Since(start) < 100*time.Millisecond {
			t.Errorf("WaitLines failure %q after %v", msg, time.Since(start))
		}
	})
}

// A process still running when its test ends is killed then.
func TestRunningProcessIsKilledWhenTheTestEnds(t *testing.T) {
	t.Parallel()
	var p *Proc
	t.Run("inner", func(t *testing.T) { p = Start(t, "helper", helperCmd("deaf")) })
	select {
	case <-p.Done():
	default:
		t.Fatal("the process outlived its test")
	}
	if err := syscall.Kill(p.Cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill -0 on the process after its test: %v, want ESRCH", err)
	}
}

// A line longer than the scanner takes does not block the process: the rest of its output is
// drained and it exits.
func TestOverlongLineDoesNotBlockTheProcess(t *testing.T) {
	t.Parallel()
	p := Start(t, "helper", helperCmd("long-line"))
	select {
	case <-p.Done():
		if err := p.Err(); err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the process blocked writing its output")
	}
}

func TestFreeAddrIsListenable(t *testing.T) {
	t.Parallel()
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr = %q, want a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on FreeAddr's %s: %v", addr, err)
	}
	ln.Close()
}

// Both binaries, side by side, built once.
func TestBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	t.Parallel()
	cp, agent := Binaries(t)
	if filepath.Dir(cp) != filepath.Dir(agent) || filepath.Base(cp) != "sajet-controlplane" || filepath.Base(agent) != "sajet-agent" {
		t.Errorf("Binaries = %s, %s; want sajet-controlplane and sajet-agent in one directory", cp, agent)
	}
	for _, bin := range []string{cp, agent} {
		out, _ := exec.Command(bin, "--help").CombinedOutput()
		if !strings.Contains(strings.ToLower(string(out)), "usage") {
			t.Errorf("%s --help printed %q", bin, out)
		}
	}
	if cp2, agent2 := Binaries(t); cp2 != cp || agent2 != agent {
		t.Errorf("a second call built again: %s %s", cp2, agent2)
	}
}

// The binary directories of exited test processes are removed; those of live ones are kept.
func TestStaleBinDirsAreRemoved(t *testing.T) {
	t.Parallel()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	var stale, live string
	for _, d := range []struct {
		dir *string
		pid int
	}{{&stale, gone.Process.Pid}, {&live, os.Getpid()}} {
		dir, err := os.MkdirTemp("", binDirPrefix+strconv.Itoa(d.pid)+"-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		*d.dir = dir
	}
	removeStaleBinDirs()
	if _, err := os.Stat(stale); !os.IsNotExist(err) && errors.Is(syscall.Kill(gone.Process.Pid, 0), syscall.ESRCH) {
		t.Errorf("the directory of an exited test process was kept (stat: %v)", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the directory of this live process was removed: %v", err)
	}
}
