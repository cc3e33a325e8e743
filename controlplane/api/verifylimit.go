package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// VerifyLimits bound the DNS checks one customer can cause, so that no customer slows everyone's
// verification (the verifier's resolvers and query slots are shared). They apply per customer of
// the domain, whoever asks: an admin verifying a customer's domains spends that customer's budget.
type VerifyLimits struct {
	// Concurrent is how many verifications of one customer's domains may run at once; default 2.
	Concurrent int
	// DomainBurst checks of one domain, then one per DomainInterval; default 5, then one per 6s.
	DomainBurst    int
	DomainInterval time.Duration
	// CustomerBurst checks of one customer's domains, then one per CustomerInterval; default 30,
	// then one per 2s.
	CustomerBurst    int
	CustomerInterval time.Duration
}

func (l VerifyLimits) withDefaults() VerifyLimits {
	if l.Concurrent <= 0 {
		l.Concurrent = 2
	}
	if l.DomainBurst <= 0 {
		l.DomainBurst = 5
	}
	if l.DomainInterval <= 0 {
		l.DomainInterval = 6 * time.Second
	}
	if l.CustomerBurst <= 0 {
		l.CustomerBurst = 30
	}
	if l.CustomerInterval <= 0 {
		l.CustomerInterval = 2 * time.Second
	}
	return l
}

// verifyGate enforces VerifyLimits on this replica.
type verifyGate struct {
	limits      VerifyLimits
	perDomain   *authlimit.Limiter
	perCustomer *authlimit.Limiter

	mu      sync.Mutex
	running map[int64]int // customer id → verifications in flight (entries at 0 are deleted)
}

func newVerifyGate(l VerifyLimits) *verifyGate {
	l = l.withDefaults()
	return &verifyGate{limits: l, running: make(map[int64]int),
		perDomain:   authlimit.NewSized(l.DomainBurst, l.DomainInterval, 1<<16),
		perCustomer: authlimit.NewSized(l.CustomerBurst, l.CustomerInterval, 1<<14)}
}

// enter admits a verification of domain (of customer) or refuses it with 429
// verify_rate_limited and Retry-After; release must be called when the check is done.
func (g *verifyGate) enter(customerID, domainID int64, domain string, now time.Time) (release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running[customerID] >= g.limits.Concurrent {
		return nil, verifyLimited(time.Second, i18n.F(
			"ya hay %d verificaciones de los dominios de este cliente en curso; vuelva a intentarlo cuando terminen",
			"%d verifications of this customer's domains are already running; retry when they finish", g.limits.Concurrent))
	}
	ck, dk := "c:"+strconv.FormatInt(customerID, 10), "d:"+strconv.FormatInt(domainID, 10)
	if wait := g.perCustomer.Blocked(ck, now); wait > 0 {
		return nil, verifyLimited(wait, i18n.T("los dominios de este cliente se verificaron demasiadas veces; vuelva a intentarlo más tarde",
			"this customer's domains were verified too often; retry later"))
	}
	if wait := g.perDomain.Take(dk, now); wait > 0 {
		return nil, verifyLimited(wait, i18n.F("%s se verificó demasiadas veces; vuelva a intentarlo más tarde (los cambios de DNS tardan en verse de todos modos)",
			"%s was verified too often; retry later (DNS changes take time to appear anyway)", domain))
	}
	g.perCustomer.Take(ck, now)
	g.running[customerID]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.running[customerID]--; g.running[customerID] <= 0 {
			delete(g.running, customerID)
		}
	}, nil
}

func verifyLimited(wait time.Duration, msg i18n.Text) *Problem {
	p := problem(http.StatusTooManyRequests, "verify_rate_limited", msg)
	p.headers = http.Header{"Retry-After": {retryAfterSeconds(max(wait, time.Second))}}
	return p
}
