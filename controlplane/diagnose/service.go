package diagnose

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/publicsuffix"

	"github.com/jeturing/sajet-domains/controlplane/authlimit"
	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/domains"
	"github.com/jeturing/sajet-domains/controlplane/gateway"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Defaults of Config.
const (
	DefaultAuthPort       = "53"
	DefaultQueryTimeout   = 2 * time.Second
	DefaultTimeout        = 15 * time.Second
	DefaultProbeTimeout   = 5 * time.Second
	DefaultSlowBackend    = 2 * time.Second
	DefaultDomainBurst    = 6
	DefaultDomainInterval = 10 * time.Second
	DefaultConcurrent     = 2
	defaultInFlight       = 256
)

// Config tunes a Service. Zero values take the defaults above.
type Config struct {
	// AuthPort is the port of authoritative name servers (the parent's and the zone's): 53 in
	// production; tests run their servers on loopback addresses at one port of their own.
	AuthPort string
	// SaaS: the control plane runs in Cloudflare for SaaS mode (custom hostnames).
	SaaS bool
	// QueryTimeout bounds each DNS question; Timeout the whole report.
	QueryTimeout time.Duration
	Timeout      time.Duration
	// ProbeTimeout bounds each agent's probe of the backend (within the protocol's limits);
	// an answer slower than SlowBackend is a warning.
	ProbeTimeout time.Duration
	SlowBackend  time.Duration
	// A domain's reports: DomainBurst, then one per DomainInterval (each costs DNS queries, up to
	// two Cloudflare API calls and a probe from every tunnel host). Concurrent bounds the reports
	// of one customer running at once. Negative DomainBurst: no per-domain limit (benchmarks).
	DomainBurst    int
	DomainInterval time.Duration
	Concurrent     int
}

// Verifier is the DNS verification the report starts from (*dnsverify.Verifier).
type Verifier interface {
	Verify(ctx context.Context, req dnsverify.Request) dnsverify.Result
	Resolvers() []string
}

// Service builds reports. It is safe for concurrent use; one serves the process.
type Service struct {
	store      *store.Store
	verifier   Verifier
	cloudflare Cloudflare // nil: provisioning is off
	prober     Prober     // nil: the agent gateway is off
	cfg        Config
	dns        *dnsClient
	perDomain  *authlimit.Limiter // nil: no per-domain limit

	mu      sync.Mutex
	running map[int64]int // customer id → reports running
}

// New returns a Service. cf and prober may be nil (provider or gateway off): pass an untyped
// nil, not a nil pointer in the interface.
func New(st *store.Store, v Verifier, cf Cloudflare, prober Prober, cfg Config) *Service {
	if cfg.AuthPort == "" {
		cfg.AuthPort = DefaultAuthPort
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	cfg.ProbeTimeout = min(max(cfg.ProbeTimeout, protocol.MinProbeTimeoutMS*time.Millisecond), protocol.MaxProbeTimeoutMS*time.Millisecond)
	if cfg.SlowBackend <= 0 {
		cfg.SlowBackend = DefaultSlowBackend
	}
	if cfg.DomainBurst == 0 {
		cfg.DomainBurst = DefaultDomainBurst
	}
	if cfg.DomainInterval <= 0 {
		cfg.DomainInterval = DefaultDomainInterval
	}
	if cfg.Concurrent <= 0 {
		cfg.Concurrent = DefaultConcurrent
	}
	s := &Service{store: st, verifier: v, cloudflare: cf, prober: prober, cfg: cfg,
		dns: newDNSClient(cfg.QueryTimeout, defaultInFlight), running: map[int64]int{}}
	if cfg.DomainBurst > 0 {
		s.perDomain = authlimit.NewSized(cfg.DomainBurst, cfg.DomainInterval, 1<<16)
	}
	return s
}

// RateLimitedError is a report refused because the domain was diagnosed too often, or the
// customer has too many reports running; retry after RetryAfter.
type RateLimitedError struct {
	RetryAfter time.Duration
	Reason     i18n.Text
}

func (e *RateLimitedError) Error() string { return e.Reason.EN }

// admit applies the per-domain rate and the per-customer concurrency.
func (s *Service) admit(d store.Domain) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[d.CustomerID] >= s.cfg.Concurrent {
		return nil, &RateLimitedError{RetryAfter: time.Second, Reason: msgCustomerBusy(s.cfg.Concurrent)}
	}
	if s.perDomain != nil {
		if wait := s.perDomain.Take("d:"+strconv.FormatInt(d.ID, 10), time.Now()); wait > 0 {
			return nil, &RateLimitedError{RetryAfter: max(wait, time.Second), Reason: msgDomainTooOften(d.ExternalDomain)}
		}
	}
	s.running[d.CustomerID]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.running[d.CustomerID]--; s.running[d.CustomerID] <= 0 {
			delete(s.running, d.CustomerID)
		}
	}, nil
}

// ErrDeleting is a report asked for a domain being deleted.
var ErrDeleting = errors.New("the domain is being deleted")

// Diagnose builds d's report with its sentences in l. Every part is
// looked at concurrently and the whole is bounded by Config.Timeout; a part that cannot be
// checked is reported unknown, never as an error. Errors: *RateLimitedError, ErrDeleting.
func (s *Service) Diagnose(ctx context.Context, d store.Domain, l i18n.Lang) (Report, error) {
	if d.DeletingAt != nil {
		return Report{}, ErrDeleting
	}
	release, err := s.admit(d)
	if err != nil {
		return Report{}, err
	}
	defer release()
	if l != i18n.EN {
		l = i18n.ES
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	facts := domainFacts{id: d.ID, customerID: d.CustomerID, host: norm(d.ExternalDomain), expected: norm(d.SajetFullDomain),
		apex: isApex(d.ExternalDomain)}
	if d.TunnelUUID != nil {
		facts.tunnelTarget = *d.TunnelUUID + ".cfargotunnel.com"
	}
	req := dnsverify.Request{Hostname: d.ExternalDomain, Expected: d.SajetFullDomain, TunnelTarget: facts.tunnelTarget,
		TXTName: domains.TXTName(d.ExternalDomain), TXTToken: d.VerificationToken, RequireTXT: d.RequireTXT, Apex: facts.apex}

	var (
		wg            sync.WaitGroup
		verified      dnsverify.Result
		views         []resolverView
		ad            *authData
		caaOwner      string
		caaSet        []*dns.CAA
		caaErr        error
		acme          acmeView
		expectedAddrs []string
		cf            cloudflareView
		tv            tunnelView
		outcomes      []gateway.ProbeOutcome
	)
	wg.Go(func() { verified = s.verifier.Verify(ctx, req) })
	wg.Go(func() { views = s.viewResolvers(ctx, facts.host) })
	wg.Go(func() { ad = s.walkAuthoritative(ctx, facts.host) })
	wg.Go(func() { caaOwner, caaSet, caaErr = s.lookupCAA(ctx, facts.host) })
	wg.Go(func() { acme = s.lookupACME(ctx, facts.host) })
	if facts.apex {
		wg.Go(func() { expectedAddrs = s.expectedAddresses(ctx, facts.expected) })
	}
	wg.Go(func() { cf = s.viewCloudflare(ctx, d) })
	wg.Go(func() {
		tv = s.viewTunnel(ctx, d)
		outcomes = s.probeBackend(ctx, facts, tv)
	})
	wg.Wait()

	rp, rev := recursivePart(facts, verified, views)
	rp.evidence = rev
	ap, aev := authoritativePart(facts, ad, rev, expectedAddrs)
	ap.evidence = aev
	dp, dev := dnssecPart(facts, ad, views, time.Now())
	dp.evidence = dev
	cp, cev := caaPart(facts, caaOwner, caaSet, caaErr)
	cp.evidence = cev
	xp, xev := conflictsPart(facts, ad, rev, expectedAddrs, acme, validationValues(d, cf))
	xp.evidence = xev
	fp, fev := s.cloudflarePart(facts, d, cf)
	fp.evidence = fev
	tp, tev := tunnelPart(facts, d, tv)
	tp.evidence = tev
	bp, bev := s.backendPart(facts, tv, outcomes)
	bp.evidence = bev

	r := Report{Domain: facts.host, DomainID: d.ID, Expected: facts.expected, Language: string(l), CheckedAt: start.UTC()}
	for _, p := range []part{rp, ap, dp, cp, xp, fp, tp, bp} {
		r.Parts = append(r.Parts, p.render(l))
	}
	r.finish(l)
	r.DurationMS = time.Since(start).Milliseconds()
	return r, nil
}

// isApex reports whether host is its own registrable domain (impulse-max.com), where a CNAME
// cannot go.
func isApex(host string) bool {
	reg, err := publicsuffix.EffectiveTLDPlusOne(norm(host))
	return err == nil && reg == norm(host)
}

// expectedAddresses are the platform name's addresses, sorted, for a flattened apex.
func (s *Service) expectedAddresses(ctx context.Context, name string) []string {
	var out []string
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := s.resolve(ctx, name, t)
		if err != nil {
			continue
		}
		for _, rr := range resp.Answer {
			switch r := rr.(type) {
			case *dns.A:
				out = append(out, r.A.String())
			case *dns.AAAA:
				out = append(out, r.AAAA.String())
			}
		}
	}
	slices.Sort(out)
	return out
}
