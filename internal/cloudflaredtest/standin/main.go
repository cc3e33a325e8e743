// Command standin stands in for `cloudflared tunnel run` where the real one cannot connect (no
// Cloudflare edge offline), for tests of replicas under real systemd: it serves /ready on its
// --metrics address like cloudflared (503 and readyConnections 0 until it is "connected", then
// 200 and 4), "connects" --ready-delay after it starts, and, like cloudflared on a config it
// refuses, exits at once with status 1 when its --config file contains --fail-marker.
//
//	standin tunnel --config /etc/cloudflared/config.yml --metrics 127.0.0.1:20241 --ready-delay 300ms run
//
// It takes cloudflared's flag syntax (--flag value or --flag=value, anywhere on the line) and
// ignores the flags it does not know. Build it statically (CGO_ENABLED=0) to run it in a
// container.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		os.Exit(1)
	}
}

// flagValue returns --name's value in args, or def.
func flagValue(args []string, name, def string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return def
}

func run(args []string) error {
	configPath := flagValue(args, "config", "/etc/cloudflared/config.yml")
	metrics := flagValue(args, "metrics", "127.0.0.1:20241")
	marker := flagValue(args, "fail-marker", "fail-start")
	delay, err := time.ParseDuration(flagValue(args, "ready-delay", "300ms"))
	if err != nil {
		return fmt.Errorf("--ready-delay: %w", err)
	}
	config, err := os.ReadFile(configPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if strings.Contains(string(config), marker) {
		return fmt.Errorf("%s contains %q: refusing to start, as cloudflared does on a config it rejects", configPath, marker)
	}
	ln, err := net.Listen("tcp", metrics)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	var connected atomic.Bool
	time.AfterFunc(delay, func() { connected.Store(true) })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !connected.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":503,"readyConnections":0}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":200,"readyConnections":4}`))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	fmt.Fprintf(os.Stderr, "standin: serving /ready on %s, connected after %s\n", ln.Addr(), delay)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
