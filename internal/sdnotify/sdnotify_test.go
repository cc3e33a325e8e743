package sdnotify

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// On a real notify socket: READY=1, then watchdog pings only while alive() is nil.
func TestReadyAndWatchdogOnANotifySocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	logger := slog.New(slog.DiscardHandler)

	Ready(logger)
	if got := read(t, conn); got != "READY=1" {
		t.Fatalf("first message %q, want READY=1", got)
	}
	var dead atomic.Bool
	dead.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watchdog(ctx, func() error {
		if dead.Load() {
			return errors.New("stuck")
		}
		return nil
	}, logger)
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := conn.ReadFrom(make([]byte, 64)); err == nil {
		t.Fatalf("a ping (%d bytes) went out while alive() failed", n)
	}
	dead.Store(false)
	if got := read(t, conn); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1 once alive", got)
	}
}

func read(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}
