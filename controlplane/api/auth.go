package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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
type authenticator struct {
	store    *store.Store
	cacheTTL time.Duration
	limiter  *authlimit.Limiter

	mu    sync.Mutex
	cache map[[32]byte]cachedToken
}

type cachedToken struct {
	p       Principal
	expires time.Time
}

var (
	errNoToken  = errors.New("missing bearer token")
	errBadToken = errors.New("invalid or revoked token")
)

func newAuthenticator(st *store.Store, ttl time.Duration, limiter *authlimit.Limiter) *authenticator {
	return &authenticator{store: st, cacheTTL: ttl, limiter: limiter, cache: make(map[[32]byte]cachedToken)}
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
	return p, nil
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
