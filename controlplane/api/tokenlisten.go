package api

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	crand "crypto/rand"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/backoff"
)

// DefaultTokenReload is how often FollowTokens reloads every valid token (notifications can be
// lost without the session noticing, e.g. on a proxy between us and PostgreSQL).
const DefaultTokenReload = time.Minute

// barrierInterval paces the barriers of requests from blocked addresses (see authenticator).
const barrierInterval = 50 * time.Millisecond

// barrierTimeout bounds the wait for a barrier's notification to come back.
const barrierTimeout = 2 * time.Second

// FollowTokens keeps this server's set of valid API tokens current from store.APITokenChannel on
// a connection of its own (cc: a copy of the pool's config is fine), until ctx ends. Every session
// LISTENs first and then loads every valid token (PostgreSQL's documented order: nothing committed
// after the load can be missed), reloads every reload interval (0: DefaultTokenReload), and
// reconnects with capped, jittered backoff when the connection is lost. Start it once per Server.
func (s *Server) FollowTokens(ctx context.Context, cc *pgx.ConnConfig, reload time.Duration) {
	if reload <= 0 {
		reload = DefaultTokenReload
	}
	a := s.auth
	go a.barriers.run(ctx, a)
	retry := backoff.New(200*time.Millisecond, 10*time.Second)
	for {
		start := time.Now()
		err := a.session(ctx, cc, reload)
		a.lost(time.Now())
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			retry.Reset()
		}
		a.logger.Warn("api token listener lost its connection; until it is back, tokens are confirmed by lookups every "+a.cacheTTL.String(),
			"err", err, "retry_in", retry.Peek())
		if !backoff.Sleep(ctx, retry.Next()) {
			return
		}
	}
}

// session holds one LISTEN connection.
func (a *authenticator) session(ctx context.Context, cc *pgx.ConnConfig, reload time.Duration) error {
	conn, err := pgx.ConnectConfig(ctx, cc.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+store.APITokenChannel); err != nil {
		return err
	}
	if err := a.reload(ctx); err != nil {
		return err
	}
	a.metrics.sessions.Inc()
	next := time.Now().Add(reload)
	for {
		waitCtx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			if err := a.notified(ctx, n.Payload); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if err := a.reload(ctx); err != nil {
				return err
			}
			next = time.Now().Add(reload)
		default:
			return err
		}
	}
}

func (a *authenticator) reload(ctx context.Context) error {
	started := time.Now()
	ts, err := a.store.LiveAPITokens(ctx)
	if err != nil {
		return err
	}
	a.replace(ts, started, time.Now())
	return nil
}

// notified handles one payload: a token id to read again, or a barrier.
func (a *authenticator) notified(ctx context.Context, payload string) error {
	if rest, ok := strings.CutPrefix(payload, "sync:"); ok {
		a.barriers.arrived(rest)
		return nil
	}
	id, err := strconv.ParseInt(payload, 10, 64)
	if err != nil {
		a.logger.Warn("unexpected payload on "+store.APITokenChannel, "payload", payload)
		return nil
	}
	t, err := a.store.LiveAPITokenByID(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.forget(id)
	case err != nil:
		return err // the session restarts and reloads everything
	default:
		a.learn(t, time.Now())
	}
	return nil
}

// barriers runs the barriers of requests that wait for every token committed before they arrived
// (see authenticator). Requests join the next barrier not yet sent; one goroutine sends them one
// after another, at most one per barrierInterval.
type barriers struct {
	nonce string // tells our barriers from other replicas'

	mu         sync.Mutex
	running    bool          // run is active (a LISTEN loop was started)
	next       *barrier      // the barrier requests join; nil: none yet
	seq        uint64        // of the last barrier created
	arrivedSeq uint64        // of the last barrier whose notification came back
	arrivedCh  chan struct{} // closed (and replaced) whenever one comes back
	kick       chan struct{}
	store      *store.Store
	waiters    atomic.Int64 // requests waiting in await (tests watch it)
}

type barrier struct {
	seq  uint64
	done chan struct{}
	ok   bool // set before done is closed
}

func (b *barriers) init() {
	b.nonce = crand.Text()
	b.arrivedCh = make(chan struct{})
	b.kick = make(chan struct{}, 1)
}

// await waits for the next barrier and reports whether it completed.
func (b *barriers) await(ctx context.Context) bool {
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return false
	}
	if b.next == nil {
		b.seq++
		b.next = &barrier{seq: b.seq, done: make(chan struct{})}
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	w := b.next
	b.mu.Unlock()
	b.waiters.Add(1)
	defer b.waiters.Add(-1)
	select {
	case <-w.done:
		return w.ok
	case <-ctx.Done():
		return false
	}
}

// arrived records a barrier notification (ours or another replica's).
func (b *barriers) arrived(payload string) {
	nonce, seqText, ok := strings.Cut(payload, ":")
	if !ok || nonce != b.nonce {
		return
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if seq > b.arrivedSeq {
		b.arrivedSeq = seq
		close(b.arrivedCh)
		b.arrivedCh = make(chan struct{})
	}
}

// run sends barriers until ctx ends.
func (b *barriers) run(ctx context.Context, a *authenticator) {
	b.mu.Lock()
	b.running, b.store = true, a.store
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running = false
		w := b.next
		b.next = nil
		b.mu.Unlock()
		if w != nil {
			close(w.done)
		}
	}()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		if d := time.Until(last.Add(barrierInterval)); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		b.mu.Lock()
		w := b.next
		b.next = nil
		b.mu.Unlock()
		if w == nil {
			continue
		}
		last = time.Now()
		w.ok = b.send(ctx, a, w.seq)
		a.metrics.barriers.WithLabelValues(strconv.FormatBool(w.ok)).Inc()
		close(w.done)
	}
}

// send notifies barrier seq and waits for it to come back on a live session.
func (b *barriers) send(ctx context.Context, a *authenticator, seq uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, barrierTimeout)
	defer cancel()
	if err := b.store.SyncAPITokenChannel(ctx, b.nonce+":"+strconv.FormatUint(seq, 10)); err != nil {
		a.logger.Warn("api token barrier", "err", err)
		return false
	}
	for {
		b.mu.Lock()
		done, ch := b.arrivedSeq >= seq, b.arrivedCh
		b.mu.Unlock()
		if done {
			a.mu.RLock()
			live := a.live
			a.mu.RUnlock()
			return live
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// authMetrics are the authenticator's Prometheus collectors.
type authMetrics struct {
	lookups  *prometheus.CounterVec
	refusals *prometheus.CounterVec
	barriers *prometheus.CounterVec
	sessions prometheus.Counter
	known    func() float64
	live     func() float64
}

func newAuthMetrics() *authMetrics {
	return &authMetrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_api_token_lookups_total",
			Help: "API token lookups in the database (tokens not in the in-memory set), by result.",
		}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_api_auth_refusals_total",
			Help: "Requests refused by authentication, by reason: missing, malformed (no lookup), unknown, revoked, rate_limited (no lookup).",
		}, []string{"reason"}),
		barriers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sajet_api_token_barriers_total",
			Help: "Barriers on the API token channel for unknown tokens from blocked addresses, by whether they completed.",
		}, []string{"ok"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sajet_api_token_listener_sessions_total",
			Help: "LISTEN sessions on the API token channel started (each loads every valid token).",
		}),
	}
}

func (m *authMetrics) lookup(result string)  { m.lookups.WithLabelValues(result).Inc() }
func (m *authMetrics) refused(reason string) { m.refusals.WithLabelValues(reason).Inc() }

func (m *authMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.lookups, m.refusals, m.barriers, m.sessions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sajet_api_tokens_known",
			Help: "Valid API tokens in this replica's in-memory set."}, func() float64 { return m.known() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sajet_api_token_listener_up",
			Help: "1 while the LISTEN session on the API token channel is up (revocations arrive at once)."}, func() float64 { return m.live() }),
	}
}
