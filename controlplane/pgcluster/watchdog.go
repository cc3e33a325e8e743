package pgcluster

import (
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"syscall"
)

// watchdog stops the server when this process dies. It is a shell blocked reading a pipe whose
// only writer is this process (the write end is close-on-exec, so neither the server nor any
// other child inherits it). When this process exits, however it exits, the kernel closes the write
// end, the read returns end-of-file and the shell runs pg_ctl stop -m immediate: the data of a
// test cluster is disposable, and immediate mode does not wait for clients.
//
// Nothing is ever written to the pipe; cancel kills the shell instead, so a watchdog of a
// stopped Cluster cannot later stop a server that a new owner has started on the directory.
type watchdog struct {
	cmd   *exec.Cmd
	pipe  io.WriteCloser // kept open for our lifetime; closing it fires the watchdog
	done  chan struct{}  // closed when the shell has exited
	quiet chan struct{}  // closed by cancel, so the exit is not reported as unexpected
}

func startWatchdog(srv server, logger *slog.Logger) (*watchdog, error) {
	cmd := exec.Command("/bin/sh", "-c", `read -r _; exec "$0" stop -D "$1" -m immediate -s`,
		filepath.Join(srv.bin, "pg_ctl"), srv.data)
	cmd.Dir = srv.dir
	// Its own process group, so a Ctrl-C that kills the test binary does not kill the watchdog
	// too, and the server's user, because pg_ctl refuses root.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: srv.cred}
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	w := &watchdog{cmd: cmd, pipe: pipe, done: make(chan struct{}), quiet: make(chan struct{})}
	// The goroutine keeps w, and so the pipe, reachable: a finalizer closing the pipe of a
	// forgotten Cluster would stop its server.
	go func() {
		err := cmd.Wait()
		close(w.done)
		select {
		case <-w.quiet:
		default:
			logger.Warn("PostgreSQL watchdog exited; the server is no longer stopped when this process dies",
				"dir", srv.dir, "err", err)
		}
	}()
	return w, nil
}

// cancel ends the watchdog without letting it stop the server. A nil watchdog is fine.
func (w *watchdog) cancel() {
	if w == nil {
		return
	}
	select {
	case <-w.quiet:
		return
	default:
	}
	close(w.quiet)
	_ = w.cmd.Process.Kill()
	<-w.done
	_ = w.pipe.Close()
}
