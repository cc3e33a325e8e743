// Command sajet-agent runs on a Cloudflare Tunnel host: it holds a connection to the control
// plane, renders cloudflared's config.yml from the pushed rules, restarts cloudflared through
// systemd and rolls back when that fails.
//
//	sajet-agent --config /etc/sajet-agent/agent.yml
//	sajet-agent --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jeturing/sajet-domains/agent"
	"github.com/jeturing/sajet-domains/agent/config"
	"github.com/jeturing/sajet-domains/agent/health"
	"github.com/jeturing/sajet-domains/agent/systemd"
	"github.com/jeturing/sajet-domains/internal/envflag"
	"github.com/jeturing/sajet-domains/internal/sdnotify"
	"github.com/jeturing/sajet-domains/shared/ingress"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sajet-agent:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sajet-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "/etc/sajet-agent/agent.yml", "agent configuration file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	check := fs.Bool("check", false, "check the config file, the base file it names and the polkit rule, print what the agent would render, and exit")
	polkitRule := fs.String("polkit-rule", systemd.PolkitRule, "the polkit rule --check compares with the units of the config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envflag.Apply(fs, os.LookupEnv); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return nil
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	if *check {
		return checkConfig(cfg, *polkitRule, stdout)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return serve(ctx, cfg, logger)
}

// faultEnv names a fault-injection hook for the crash tests: the agent SIGKILLs itself when its
// apply reaches the named step (apply.Step*). It exists so that tests can prove a crash at each
// step leaves a complete config and converges after restart; ops never set it.
const faultEnv = "SAJET_AGENT_FAULT_KILL_AT"

func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	opts := agent.Options{Build: version, Logger: logger}
	if step := os.Getenv(faultEnv); step != "" {
		opts.Crash = func(s string) {
			if s == step {
				logger.Warn("fault injection: killing the agent", "step", s)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
	}
	if replicas := cfg.Replicas(); len(replicas) > 0 {
		bus := &systemd.Client{} // one bus connection for every replica
		defer bus.Close()
		for _, r := range replicas {
			opts.Units = append(opts.Units, &agent.SystemdUnit{Name: r.Name, ReadyURL: r.ReadyURL, Client: bus,
				RestartTimeout: cfg.RestartTimeout, ReadyTimeout: cfg.ReadyTimeout, StartGrace: cfg.StartGrace})
		}
	} else {
		logger.Info("no unit configured: rendering only, cloudflared is never restarted")
	}
	a, err := agent.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	if cfg.HealthAddr != "off" {
		ln, err := net.Listen("tcp", cfg.HealthAddr)
		if err != nil {
			return fmt.Errorf("health endpoint: %w", err)
		}
		srv := &http.Server{Handler: health.Handler(health.Checks{Live: a.Live, Ready: a.Ready,
			Status: func() any { return a.Report() }, Registry: a.Registry()}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		logger.Info("health endpoint listening", "addr", ln.Addr().String())
	}
	// READY=1 once recovery is done and the health endpoint answers; the control-plane link
	// comes up in the background (an unreachable control plane must not fail the unit).
	sdnotify.Ready(logger)
	// The watchdog is fed only while the main loop turns, so a stuck loop gets the agent restarted.
	go sdnotify.Watchdog(ctx, a.Live, logger)
	logger.Info("agent started", "version", version, "agent", cfg.Name, "tunnel", cfg.Tunnel,
		"control_plane", cfg.ControlPlane, "config", cfg.ConfigPath, "units", strings.Join(cfg.UnitNames(), ","), "applied_version", a.Report().Config.AppliedVersion)
	err = a.Run(ctx)
	sdnotify.Stopping()
	return err
}

// checkConfig is --check: what ops run after editing agent.yml or base.yml, before restarting.
func checkConfig(cfg *config.Config, polkitRule string, stdout io.Writer) error {
	if cfg.CAFile != "" {
		if _, err := cfg.CAPool(); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(cfg.BaseConfig)
	if err != nil {
		return fmt.Errorf("base_config: %w", err)
	}
	base, err := ingress.ParseBase(data)
	if err != nil {
		return err
	}
	if _, err := ingress.Render(base, nil); err != nil {
		return fmt.Errorf("base_config %s: %w", cfg.BaseConfig, err)
	}
	rules := base.OperatorRules() // ends with the catch-all, added when the file has none
	fmt.Fprintf(stdout, "agent config: ok (control plane %s, tunnel %s)\n%s: ok (%d operator rules, then catch-all %s)\n",
		cfg.ControlPlane, cfg.Tunnel, cfg.BaseConfig, len(rules)-1, rules[len(rules)-1].Service)
	units := cfg.UnitNames()
	if len(units) == 0 {
		fmt.Fprintln(stdout, "units: none (render only)")
		return nil
	}
	// The rules directory is polkitd's (0700): as another user than root the rule cannot be
	// read, which says nothing about it.
	err = systemd.CheckPolkitUnits(polkitRule, units)
	if errors.Is(err, fs.ErrPermission) {
		fmt.Fprintf(stdout, "units: %s; polkit rule not checked (%v: run --check as root)\n", strings.Join(units, ", "), err)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "units: %s, restarted in this order; %s allows exactly these\n", strings.Join(units, ", "), polkitRule)
	return nil
}
