package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
func NewToken() (token string, hash []byte) { return newSecret(tokenPrefix) }

// agentTokenPrefix marks agent tokens, which authenticate on the agent port, not the REST API.
const agentTokenPrefix = "sja_"

// NewAgentToken returns a new agent token and the hash to store.
func NewAgentToken() (token string, hash []byte) { return newSecret(agentTokenPrefix) }

func newSecret(prefix string) (string, []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	token := prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is the SHA-256 stored for a token. Tokens carry 256 bits of randomness, so a plain
// hash (no salt, no slow KDF) cannot be brute-forced and keeps lookups a single index probe.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// authenticator checks bearer tokens. Valid tokens are cached briefly so a request costs no
// database round trip for auth; a revoked token stops working within cacheTTL (at once on the
// replica that revoked it).
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

	mu    sync.Mutex
	cache map[[32]byte]cachedToken

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

type cachedToken struct {
	p       Principal
	expires time.Time
}

var (
	errNoToken  = errors.New("missing bearer token")
	errBadToken = errors.New("invalid or revoked token")
)

func newAuthenticator(st *store.Store, ttl time.Duration, limiter *authlimit.Limiter, logger *slog.Logger) *authenticator {
	return &authenticator{store: st, cacheTTL: ttl, limiter: limiter, logger: logger, cache: make(map[[32]byte]cachedToken),
		touched: make(map[int64]time.Time), touchSem: make(chan struct{}, touchWriters)}
}

// authenticate returns the principal for an Authorization header value.
func (a *authenticator) authenticate(ctx context.Context, header string) (Principal, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, errNoToken
	}
	token = strings.TrimSpace(token)
	if len(token) > 256 {
		return Principal{}, errBadToken
	}
	key := sha256.Sum256([]byte(token))
	now := time.Now()
	a.mu.Lock()
	c, hit := a.cache[key]
	a.mu.Unlock()
	if hit && now.Before(c.expires) {
		a.touch(c.p.TokenID, now)
		return c.p, nil
	}
	t, err := a.store.LookupAPIToken(ctx, key[:])
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, errBadToken
	}
	if err != nil {
		return Principal{}, err
	}
	p := Principal{TokenID: t.ID, Role: t.Role}
	if t.CustomerID != nil {
		p.CustomerID = *t.CustomerID
	}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		clear(a.cache) // bounded: a cache miss only costs one query
	}
	a.cache[key] = cachedToken{p: p, expires: now.Add(a.cacheTTL)}
	a.mu.Unlock()
	a.touch(p.TokenID, now)
	return p, nil
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

// forget drops cached principals of a token id (after revocation).
func (a *authenticator) forget(tokenID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range a.cache {
		if v.p.TokenID == tokenID {
			delete(a.cache, k)
		}
	}
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}
