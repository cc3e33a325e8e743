// Package devenv is `sajet-controlplane dev`: the whole control plane on one machine that has only
// Go and the PostgreSQL server binaries. It keeps a private PostgreSQL cluster under the dev
// directory (state survives restarts), applies migrations, prints the web UI's address with a
// one-time sign-in link (api.NewSigninCode), the API URL and a fresh admin token, serves, runs bin/sajet-agent (found beside this executable) as a child process rendering
// the dev tunnel's config, and on Ctrl-C stops the agent, the API and then the cluster. The
// control-plane binary links no agent code: dev runs the agent the way a tunnel host does.
//
// The admin token is created anew at each start and the previous run's is revoked, so no secret is
// ever kept in plain text on disk.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jeturing/sajet-domains/controlplane/api"
	"github.com/jeturing/sajet-domains/controlplane/app"
	"github.com/jeturing/sajet-domains/controlplane/pgcluster"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/controlplane/webhooks"
	"github.com/jeturing/sajet-domains/migrations"
)

// Options configures a dev run.
type Options struct {
	Dir string     // state directory, e.g. ./.dev
	App app.Config // API settings; DatabaseURL is filled in here
	Out io.Writer  // where the banner goes
	// AgentOut receives the local agent's log; nil → standard error.
	AgentOut io.Writer
}

const devTokenName = "dev"

// Run starts the dev stack and blocks until ctx is cancelled.
func Run(ctx context.Context, opts Options) (err error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return fmt.Errorf("dev dir: %w", err)
	}
	// Readable by its owner only: it holds the database, the TLS key and the rendered config. As
	// root the private PostgreSQL runs as the postgres user, which must traverse it (0711: enter,
	// never list); everything inside has modes of its own.
	mode := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		mode = 0o711
	}
	if err := privateDir(dir, mode); err != nil {
		return fmt.Errorf("create dev dir: %w", err)
	}
	logger := opts.App.Logger
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "postgres"), Fsync: true, Logger: logger})
	if err != nil {
		return fmt.Errorf("start private PostgreSQL: %w", err)
	}
	defer func() {
		// ctx is already cancelled here; stopping must not depend on it.
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if stopErr := cluster.Stop(stopCtx); stopErr != nil && err == nil {
			err = fmt.Errorf("stop private PostgreSQL: %w", stopErr)
		}
		fmt.Fprintln(opts.Out, "private PostgreSQL stopped")
	}()
	if err := cluster.CreateDatabase(ctx, "sajet"); err != nil {
		return err
	}
	dbURL := cluster.URL("sajet")

	pool, err := app.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	token, tokenID, err := prepare(ctx, pool, nil)
	if err != nil {
		pool.Close()
		return err
	}
	code, err := api.NewSigninCode(ctx, store.New(pool), tokenID)
	if err != nil {
		pool.Close()
		return err
	}
	local, certFile, keyFile, err := prepareAgent(ctx, store.New(pool), dir)
	pool.Close()
	if err != nil {
		return err
	}

	cfg := opts.App
	cfg.DatabaseURL = dbURL
	// Webhooks work in dev: a key of this state directory's own, made on first run.
	if len(cfg.WebhookSecretKey) == 0 {
		if cfg.WebhookSecretKey, err = devWebhookKey(dir); err != nil {
			return err
		}
	}
	mailbox := "recorded, not sent (no --smtp-host): see them in the log and at GET " + "/api/notifications"
	if cfg.SMTP.Host != "" {
		mailbox = "sent through " + cfg.SMTP.Host
	}
	// The local agent's gateway: loopback only, on a port of the kernel's choosing unless the
	// user picked one.
	if cfg.AgentAddr == "" || cfg.AgentAddr == ":7443" {
		cfg.AgentAddr = "127.0.0.1:0"
	}
	cfg.AgentTLSCert, cfg.AgentTLSKey = certFile, keyFile
	agentBin, err := agentBinary()
	if err != nil {
		return err
	}
	agentErr := make(chan error, 1)
	agentOut := opts.AgentOut
	if agentOut == nil {
		agentOut = os.Stderr
	}
	cfg.AgentListening = func(addr string) {
		done, err := local.start(ctx, agentBin, addr, agentOut)
		if err != nil {
			agentErr <- err
			return
		}
		go func() {
			if err := <-done; err != nil {
				agentErr <- fmt.Errorf("the local agent (%s) exited: %w", agentBin, err)
			}
		}()
	}
	cfg.Ready = func(apiURL string) {
		fmt.Fprintf(opts.Out, `
Sajet Domains control plane (dev)
  Web UI:       %[1]s/ui/
  Sign in:      %[1]s/ui/signin#code=%[7]s
                (one-time link, valid %[8]s; afterwards sign in with the admin token)
  API:          %[1]s
  OpenAPI:      %[1]s/openapi.json
  Admin token:  %[2]s
  Database:     %[3]s
  State:        %[4]s
  Local agent:  renders %[5]s/config.yml for tunnel "dev-tunnel" (id %[6]d); cloudflared is not restarted in dev
  Emails:       %[9]s
                curl -s -H "Authorization: Bearer $SAJET_TOKEN" %[1]s/api/notifications

Try:
  export SAJET_TOKEN=%[2]s
  curl -s -H "Authorization: Bearer $SAJET_TOKEN" -H 'Content-Type: application/json' \
       -d '{"email":"ops@impulse-max.com","company_name":"ImpulseMax"}' %[1]s/api/customers
  curl -s -H "Authorization: Bearer $SAJET_TOKEN" -H 'Content-Type: application/json' \
       -d '{"customer_id":1,"name":"odoo","tunnel_id":%[6]d,"backend_url":"http://127.0.0.1:8069"}' %[1]s/api/tenant-deployments
  curl -s -H "Authorization: Bearer $SAJET_TOKEN" -H 'Content-Type: application/json' \
       -d '{"external_domain":"www.impulse-max.com","customer_id":1,"tenant_deployment_id":1}' %[1]s/api/domains
  cat %[5]s/config.yml    # the local agent's cloudflared config now routes both hostnames

Press Ctrl-C to stop (the private PostgreSQL stops too).
`, apiURL, token, dbURL, dir, local.dir, local.tunnelID, code, api.SigninCodeTTL, mailbox)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(ctx, cfg) }()
	select {
	case err := <-agentErr:
		cancel()
		<-runErr
		return err
	case err := <-runErr:
		return err
	}
}

// devWebhookKey reads the dev state's webhook secret key, creating it (mode 600) on first use.
func devWebhookKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "webhook-secret.key")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(path, []byte(webhooks.NewKey()+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("dev webhook key: %w", err)
		}
	}
	return webhooks.LoadKey(path)
}

// privateDir creates dir with mode, or narrows an existing one's mode to it.
func privateDir(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// prepare migrates the database and issues this run's admin token.
func prepare(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (string, int64, error) {
	if _, err := migrations.Apply(ctx, pool, logger); err != nil {
		return "", 0, err
	}
	st := store.New(pool)
	if err := st.RevokeAPITokensNamed(ctx, "dev", devTokenName); err != nil {
		return "", 0, err
	}
	secret, hash := api.NewToken()
	t, err := st.CreateAPIToken(ctx, "dev", hash, api.RoleAdmin, nil, devTokenName)
	if err != nil {
		return "", 0, err
	}
	return secret, t.ID, nil
}
