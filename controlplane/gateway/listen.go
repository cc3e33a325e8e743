package gateway

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/backoff"
)

// Changes receives what the Listener learns. Tunnel is called with one tunnel id whose desired
// ingress changed; All is called when any tunnel may have changed (after a reconnect, or on the
// periodic reconcile). Both must return quickly.
type Changes interface {
	Tunnel(id int64)
	All()
}

// AgentChanges is implemented by a Changes that also wants to know about agents (the gateway
// Server): Agent is called with the id sent on store.AgentChannel when an agent was enrolled,
// revoked or its token rotated. It must return quickly.
type AgentChanges interface {
	Agent(id int64)
}

// Listener follows the sajet_tunnel channel (and sajet_agent, when changes implements
// AgentChanges) on a dedicated connection.
type Listener struct {
	ConnConfig        *pgx.ConnConfig // a copy of the pool's config is fine; this connection is not pooled
	ReconcileInterval time.Duration   // default 30s
	Logger            *slog.Logger

	connected atomic.Bool // a LISTEN connection is up (Ready)
}

// Run listens until ctx ends, reconnecting with capped, jittered backoff.
func (l *Listener) Run(ctx context.Context, changes Changes) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	interval := l.ReconcileInterval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	retry := backoff.New(200*time.Millisecond, 10*time.Second)
	for {
		start := time.Now()
		err := l.session(ctx, changes, interval)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			retry.Reset()
		}
		logger.Warn("listener connection lost; reconnecting", "err", err, "in", retry.Peek())
		if !backoff.Sleep(ctx, retry.Next()) {
			return nil
		}
	}
}

// session holds one LISTEN connection. The order matters (PostgreSQL's documented pattern):
// LISTEN first, then tell the caller to re-read everything, then trust notifications.
func (l *Listener) session(ctx context.Context, changes Changes, interval time.Duration) error {
	conn, err := pgx.ConnectConfig(ctx, l.ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+store.TunnelChannel); err != nil {
		return err
	}
	agents, _ := changes.(AgentChanges)
	if agents != nil {
		if _, err := conn.Exec(ctx, "LISTEN "+store.AgentChannel); err != nil {
			return err
		}
	}
	changes.All()
	l.connected.Store(true)
	defer l.connected.Store(false)
	next := time.Now().Add(interval)
	for {
		waitCtx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			id, perr := strconv.ParseInt(n.Payload, 10, 64)
			if perr != nil || id <= 0 {
				continue
			}
			if n.Channel == store.AgentChannel {
				agents.Agent(id)
			} else {
				changes.Tunnel(id)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			changes.All()
			next = time.Now().Add(interval)
		default:
			return err
		}
	}
}
