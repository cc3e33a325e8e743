package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/secret"
)

// Roles of API tokens.
const (
	RoleAdmin    = "admin"
	RoleCustomer = "customer"
)

// Principal is who a request acts as.
type Principal struct {
	TokenID    int64
	Role       string
	CustomerID int64 // set for customer tokens
}

// Actor names the principal in audit rows and created_by.
func (p Principal) Actor() string {
	if p.Role == RoleAdmin {
		return fmt.Sprintf("admin:token:%d", p.TokenID)
	}
	return fmt.Sprintf("customer:%d:token:%d", p.CustomerID, p.TokenID)
}

// canSeeCustomer reports whether p may see data of customer id.
func (p Principal) canSeeCustomer(id int64) bool {
	return p.Role == RoleAdmin || p.CustomerID == id
}

type principalKey struct{}

func principalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// tokenPrefix makes our tokens recognisable to secret scanners and to humans.
const tokenPrefix = "sjt_"

// NewToken returns a new secret bearer token and the hash to store.
func NewToken() (token string, hash []byte) { return secret.Token(tokenPrefix) }

// agentTokenPrefix marks agent tokens, which authenticate on the agent port, not the REST API.
const agentTokenPrefix = "sja_"

// NewAgentToken returns a new agent token and the hash to store.
func NewAgentToken() (token string, hash []byte) { return secret.Token(agentTokenPrefix) }

// authenticator checks bearer tokens.
//
// It keeps the set of every valid API token (by SHA-256) in memory: loaded when its LISTEN session
// on store.APITokenChannel starts, kept current by the channel's notifications (a trigger sends a
// token's id whenever it is created, revoked or deleted, so a revocation on any replica reaches
// every replica at once), and reloaded periodically since notifications can be lost. While that
// session is up the set is authoritative, and a token in it is accepted without a database round
// trip and without asking the bad-token limiter: a valid token is never refused because its
// address is blocked.
//
// A token not in the set is either invalid or so new that its notification has not arrived yet.
// From an address the limiter does not block, it is looked up in the database (a failed lookup
// counts against the address). From a blocked address it is not looked up; instead the request
// waits for a barrier: this replica sends itself a notification on the channel and waits for it
// to come back. PostgreSQL delivers notifications in commit order, so by then every token committed
// before the request arrived is in the set. Barriers are shared by every request waiting at the
// same time and sent at most every barrierInterval, so a blocked address costs the database at
// most one NOTIFY per interval however fast it sends. A token still missing after the barrier is
// refused with 429.
//
// Without a live session (the listener is not started, or is reconnecting) the set is a cache: an
// entry is trusted for cacheTTL after it was last confirmed, or after the session was lost, and
// confirmed again by a lookup after that; a blocked address gets 429 for tokens not in it. On
// reconnect the set is replaced by a fresh load.
//
// Malformed tokens (not sjt_ + 43 base64url characters) are refused without a lookup and without
// counting against the address: they cost nothing, and counting them would let an anonymous loop
// behind a shared address block everyone else's unknown-token lookups sooner.
//
// It also records when each token was last used (api_tokens.last_used_at), cheaply: at most one
// write per token and minute on this replica (touched), guarded in SQL so that replicas together
// write it at most once a minute, done in the background by at most touchWriters goroutines.
// A request never waits for that write and never fails because of it.
type authenticator struct {
	store    *store.Store
	cacheTTL time.Duration
	limiter  *authlimit.Limiter
	logger   *slog.Logger
	metrics  *authMetrics

	mu      sync.RWMutex
	byHash  map[[32]byte]knownToken
	byID    map[int64][32]byte
	live    bool      // a LISTEN session is up and the set was loaded in it
	lostAt  time.Time // when the last session ended
	version uint64    // bumped by every change learnt (notification, reload, revocation here)
	// forgotten holds when tokens were dropped as revoked, so that a reload whose query started
	// before that does not bring them back; entries older than the last reload are pruned.
	forgotten map[int64]time.Time

	barriers barriers

	touchMu  sync.Mutex
	touched  map[int64]time.Time // token id → when this replica last wrote (or tried to write) its use
	touchSem chan struct{}       // a slot per write in flight
	touches  sync.WaitGroup      // writes in flight (tests wait for them)
}

// touchWriters bounds the last-use writes in flight; when all are busy a use is not recorded now
// but by a later request of the same token.
const touchWriters = 4

// touchTimeout bounds one last-use write.
const touchTimeout = 5 * time.Second

type knownToken struct {
	p       Principal
	checked time.Time // when the database last confirmed it
}

var (
	errNoToken  = errors.New("missing bearer token")
	errBadToken = errors.New("invalid or revoked token")
)

// rateLimited is the answer for an unknown token from a blocked address.
type rateLimited struct{ wait time.Duration }

func (e *rateLimited) Error() string {
	return "too many requests with invalid tokens from this address"
}

func newAuthenticator(st *store.Store, ttl time.Duration, limiter *authlimit.Limiter, logger *slog.Logger) *authenticator {
	a := &authenticator{store: st, cacheTTL: ttl, limiter: limiter, logger: logger, metrics: newAuthMetrics(),
		byHash: make(map[[32]byte]knownToken), byID: make(map[int64][32]byte), forgotten: make(map[int64]time.Time),
		touched: make(map[int64]time.Time), touchSem: make(chan struct{}, touchWriters)}
	a.barriers.init()
	a.metrics.known = func() float64 {
		a.mu.RLock()
		defer a.mu.RUnlock()
		return float64(len(a.byHash))
	}
	a.metrics.live = func() float64 {
		a.mu.RLock()
		defer a.mu.RUnlock()
		if a.live {
			return 1
		}
		return 0
	}
	return a
}

// wellFormed reports whether token could be one NewToken made.
func wellFormed(token string) bool { return secret.WellFormed(token, tokenPrefix) }

// authenticate returns the principal for an Authorization header value from the client whose
// limiter key is addr.
func (a *authenticator) authenticate(ctx context.Context, header, addr string) (Principal, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		a.metrics.refused("missing")
		return Principal{}, errNoToken
	}
	token = strings.TrimSpace(token)
	if !wellFormed(token) {
		a.metrics.refused("malformed")
		return Principal{}, errBadToken
	}
	key := secret.Sum(token)
	now := time.Now()
	if p, known, trusted := a.known(key, now); known {
		if trusted {
			a.touch(p.TokenID, now)
			return p, nil
		}
		// Ours, but not confirmed lately (no LISTEN session): confirm it, whatever the address —
		// the hash is one the database gave us, not a guess.
		return a.lookup(ctx, key, addr, now, false)
	}
	if wait := a.limiter.Blocked(addr, now); wait > 0 {
		if a.barriers.await(ctx) {
			if p, known, trusted := a.known(key, time.Now()); known && trusted {
				a.touch(p.TokenID, now)
				return p, nil
			}
		}
		a.metrics.refused("rate_limited")
		return Principal{}, &rateLimited{wait: wait}
	}
	return a.lookup(ctx, key, addr, now, true)
}

// known looks key up in the set; trusted says the entry needs no confirmation.
func (a *authenticator) known(key [32]byte, now time.Time) (p Principal, known, trusted bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	t, ok := a.byHash[key]
	if !ok {
		return Principal{}, false, false
	}
	since := t.checked
	if a.lostAt.After(since) {
		since = a.lostAt
	}
	return t.p, true, a.live || now.Sub(since) < a.cacheTTL
}

// lookup asks the database about key; unknown tokens count against addr when countFailure.
func (a *authenticator) lookup(ctx context.Context, key [32]byte, addr string, now time.Time, countFailure bool) (Principal, error) {
	a.mu.RLock()
	v := a.version
	a.mu.RUnlock()
	t, err := a.store.LookupAPIToken(ctx, key[:])
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.metrics.lookup("not_found")
		a.drop(key)
		if countFailure {
			a.limiter.Fail(addr, now)
			a.metrics.refused("unknown")
		} else {
			a.metrics.refused("revoked")
		}
		return Principal{}, errBadToken
	case err != nil:
		a.metrics.lookup("error")
		return Principal{}, err
	}
	a.metrics.lookup("found")
	p := principalOf(t.ID, t.Role, t.CustomerID)
	a.mu.Lock()
	// A change learnt while the query ran (its revocation, say) may be newer than what it read:
	// then the answer serves this request only, and the next one asks again.
	if a.version == v {
		a.put(t.ID, key, p, now)
	}
	a.mu.Unlock()
	a.touch(p.TokenID, now)
	return p, nil
}

func principalOf(id int64, role string, customerID *int64) Principal {
	p := Principal{TokenID: id, Role: role}
	if customerID != nil {
		p.CustomerID = *customerID
	}
	return p
}

// put records a valid token; called with mu held.
func (a *authenticator) put(id int64, key [32]byte, p Principal, now time.Time) {
	if old, ok := a.byID[id]; ok && old != key {
		delete(a.byHash, old)
	}
	a.byHash[key] = knownToken{p: p, checked: now}
	a.byID[id] = key
}

// drop forgets a hash the database does not know (any more).
func (a *authenticator) drop(key [32]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.byHash[key]; ok {
		delete(a.byHash, key)
		delete(a.byID, t.p.TokenID)
		a.version++
	}
}

// forget drops token id (revoked here, or announced on the channel).
func (a *authenticator) forget(tokenID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if key, ok := a.byID[tokenID]; ok {
		delete(a.byHash, key)
		delete(a.byID, tokenID)
	}
	if len(a.forgotten) >= 100000 {
		clear(a.forgotten) // a bound for a replica without reloads (no listener); with one it is pruned every reload
	}
	a.forgotten[tokenID] = time.Now()
	a.version++
}

// learn records a token the channel announced as valid.
func (a *authenticator) learn(t store.LiveAPIToken, now time.Time) {
	key, ok := hashKey(t.Hash)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.version++
	if !ok {
		return
	}
	a.put(t.ID, key, principalOf(t.ID, t.Role, t.CustomerID), now)
}

// replace installs a complete load of the valid tokens, read by a query started at started, and
// marks the set live (a LISTEN session is up).
func (a *authenticator) replace(ts []store.LiveAPIToken, started, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	byHash := make(map[[32]byte]knownToken, len(ts))
	byID := make(map[int64][32]byte, len(ts))
	for _, t := range ts {
		if at, ok := a.forgotten[t.ID]; ok && !at.Before(started) {
			continue // revoked while the query ran; it may have read the row before
		}
		if key, ok := hashKey(t.Hash); ok {
			byHash[key] = knownToken{p: principalOf(t.ID, t.Role, t.CustomerID), checked: now}
			byID[t.ID] = key
		}
	}
	for id, at := range a.forgotten {
		if at.Before(started) {
			delete(a.forgotten, id)
		}
	}
	a.byHash, a.byID = byHash, byID
	a.live = true
	a.version++
}

// lost marks the set as no longer kept current (the LISTEN session ended).
func (a *authenticator) lost(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.live {
		a.live, a.lostAt = false, now
	}
	a.version++
}

func hashKey(b []byte) (k [32]byte, ok bool) {
	if len(b) != len(k) {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

// touch records in the background that token id authenticated a request, unless this replica
// did so less than store.TouchMinInterval ago. It never blocks: with every writer busy the use
// is left to a later request. A failed write is logged and tried again a minute later.
func (a *authenticator) touch(id int64, now time.Time) {
	a.touchMu.Lock()
	if last, ok := a.touched[id]; ok && now.Sub(last) < store.TouchMinInterval {
		a.touchMu.Unlock()
		return
	}
	select {
	case a.touchSem <- struct{}{}:
	default:
		a.touchMu.Unlock()
		return
	}
	if len(a.touched) > 10000 {
		clear(a.touched) // bounded: forgetting costs at most one guarded UPDATE per token
	}
	a.touched[id] = now
	a.touches.Add(1)
	a.touchMu.Unlock()
	go func() {
		defer a.touches.Done()
		defer func() { <-a.touchSem }()
		ctx, cancel := context.WithTimeout(context.Background(), touchTimeout)
		defer cancel()
		if _, err := a.store.TouchAPIToken(ctx, id); err != nil {
			a.logger.Warn("record api token use", "token_id", id, "err", err)
		}
	}()
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}
