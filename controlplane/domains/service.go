package domains

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/secret"
	"github.com/jeturing/sajet-domains/shared/hostname"
	"github.com/jeturing/sajet-domains/shared/ingress"

	"github.com/jeturing/sajet-domains/internal/clock"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// DefaultPlanQuota is the number of live domains each plan allows (docs/API.md).
var DefaultPlanQuota = map[string]int{"basic": 10, "enterprise": 50}

// TXTLabel is the label under which customers publish the verification token.
const TXTLabel = "_jeturing-verify"

// Config is the domain rules' configuration.
type Config struct {
	Zone          string         // platform zone, ASCII, e.g. "sajet.us"
	ExtraBlocked  []string       // the zone's own operational names
	PlanQuota     map[string]int // nil → DefaultPlanQuota
	UnverifiedTTL time.Duration  // 0 → 7 days
	// ProviderEnabled says whether Cloudflare records are created; when false, activation reports
	// the Cloudflare step as skipped instead of pretending it happened.
	ProviderEnabled bool
	// SaaSMode says whether a Cloudflare for SaaS custom hostname is created for each external
	// domain; without it Cloudflare refuses a customer's CNAME into our zone (1014/1001).
	SaaSMode bool
	// Health is the policy of the checks that never stop (health.go); zero fields take defaults.
	Health Health
	// Clock is the time checks are recorded at and decided by; nil is the real clock.
	Clock clock.Clock
}

// Verifier checks DNS; *dnsverify.Verifier is the real one.
type Verifier interface {
	Verify(ctx context.Context, req dnsverify.Request) dnsverify.Result
}

// Service applies the domain rules on top of the store.
type Service struct {
	store    *store.Store
	rules    hostname.Rules
	verifier Verifier
	cfg      Config
	logger   *slog.Logger
}

// New returns a Service.
func New(st *store.Store, v Verifier, cfg Config, logger *slog.Logger) *Service {
	if cfg.PlanQuota == nil {
		cfg.PlanQuota = DefaultPlanQuota
	}
	if cfg.UnverifiedTTL == 0 {
		cfg.UnverifiedTTL = 7 * 24 * time.Hour
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Health = cfg.Health.withDefaults()
	if cfg.Clock == nil {
		cfg.Clock = clock.System
	}
	return &Service{store: st, rules: hostname.Rules{Zone: cfg.Zone, ExtraBlocked: cfg.ExtraBlocked}, verifier: v, cfg: cfg, logger: logger}
}

// Zone returns the platform zone.
func (s *Service) Zone() string { return s.cfg.Zone }

// PlanQuota returns the number of live domains a plan allows (a customer's domain_quota
// overrides it).
func (s *Service) PlanQuota(plan string) int { return s.cfg.PlanQuota[plan] }

// PlanQuotas returns every plan's quota.
func (s *Service) PlanQuotas() map[string]int { return s.cfg.PlanQuota }

// ProviderEnabled reports whether Cloudflare provisioning is on.
func (s *Service) ProviderEnabled() bool { return s.cfg.ProviderEnabled }

// Kind says which HTTP family an Error belongs to; the API maps it to a status.
type Kind int

// Kinds of Error.
const (
	Invalid  Kind = iota + 1 // 422: the input can be fixed by the caller
	Conflict                 // 409: the input is fine but the current state forbids it
	NotFound                 // 404
)

// Error is a rule the caller broke, with a stable Code and a message saying what to do.
type Error struct {
	Kind    Kind
	Code    string
	Message i18n.Text
	// Suggestion is what to type instead, when the input can be fixed by one (hostname errors).
	Suggestion string
	// Claim is set on a domain_taken conflict that can be won by publishing a TXT record.
	Claim *Claim
}

func (e *Error) Error() string { return e.Message.EN }

// Claim tells a customer how to take over a hostname another customer registered but never proved.
type Claim struct {
	Type   string
	Record string
	Value  string
	Note   i18n.Text
}

func fromStore(err error) error {
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		return &Error{Kind: Conflict, Code: ce.Code, Message: ce.Message}
	}
	var me *store.MissingError
	if errors.As(err, &me) {
		return &Error{Kind: NotFound, Code: me.Code, Message: me.Message}
	}
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Kind: NotFound, Code: "not_found", Message: msgNotFound}
	}
	return err
}

var msgNotFound = i18n.T("dominio no encontrado", "domain not found")

// RegisterInput is a registration request after JSON decoding.
type RegisterInput struct {
	ExternalDomain     string
	CustomerID         int64
	TenantDeploymentID *int64
	Subdomain          string // optional explicit sajet_subdomain
	IsPrimary          bool
	// Claim asks to take the hostname over from another customer's unproven registration, after
	// publishing the claim token returned by the earlier domain_taken conflict.
	Claim bool
}

// Register validates and stores a new domain registration.
func (s *Service) Register(ctx context.Context, actor string, in RegisterInput) (store.Domain, error) {
	name, err := s.rules.NormalizeExternal(in.ExternalDomain)
	if err != nil {
		return store.Domain{}, invalid(err)
	}
	// The agent's own check, so nothing stored here can be refused at the tunnel later
	// (shared/hostname is stricter; this is the guarantee, not a second opinion).
	if err := checkRoutable(name); err != nil {
		return store.Domain{}, err
	}
	nd := store.NewDomain{
		CustomerID:         in.CustomerID,
		TenantDeploymentID: in.TenantDeploymentID,
		ExternalDomain:     name,
		Zone:               s.cfg.Zone,
		IsPrimary:          in.IsPrimary,
		CreatedBy:          actor,
		PlanQuota:          s.cfg.PlanQuota,
	}
	expires := time.Now().Add(s.cfg.UnverifiedTTL)
	nd.ExpiresAt = &expires
	if in.Subdomain != "" {
		if err := s.rules.ValidateSubdomain(in.Subdomain); err != nil {
			return store.Domain{}, invalid(err)
		}
		if err := checkRoutable(in.Subdomain + "." + s.cfg.Zone); err != nil {
			return store.Domain{}, err
		}
		nd.Subdomains, nd.Explicit = []string{in.Subdomain}, true
	} else {
		nd.Subdomains = s.candidates(hostname.SubdomainBase(name))
	}
	if in.Claim {
		token, err := s.store.GetClaim(ctx, in.CustomerID, name)
		if errors.Is(err, store.ErrNotFound) {
			return store.Domain{}, &Error{Kind: Conflict, Code: "no_claim",
				Message: i18n.T("todavía no hay una reclamación para este nombre: regístrelo primero sin claim para recibir el token de reclamación",
					"there is no claim for this hostname yet: register it without claim first to receive the claim token")}
		}
		if err != nil {
			return store.Domain{}, err
		}
		if !s.txtPresent(ctx, name, token) {
			c := s.claimInstructions(name, token)
			return store.Domain{}, &Error{Kind: Conflict, Code: "claim_not_proven", Claim: &c,
				Message: i18n.F("no se encontró el registro TXT %s con el valor %s; publíquelo y vuelva a intentarlo",
					"TXT record %s with value %s was not found; publish it and retry", c.Record, token)}
		}
		nd.Token, nd.ClaimProven = token, true
	} else {
		nd.Token = NewToken()
	}

	d, err := s.store.InsertDomain(ctx, nd)
	var taken *store.TakenError
	if errors.As(err, &taken) {
		return store.Domain{}, s.takenError(ctx, in.CustomerID, name, taken)
	}
	if err != nil {
		return store.Domain{}, fromStore(err)
	}
	s.logger.InfoContext(ctx, "domain registered", "domain", d.ExternalDomain, "id", d.ID, "subdomain", d.SajetSubdomain)
	return d, nil
}

func (s *Service) takenError(ctx context.Context, customerID int64, name string, taken *store.TakenError) error {
	if taken.HolderVerified {
		return &Error{Kind: Conflict, Code: "domain_taken",
			Message: i18n.F("%s está registrado y probado por otra cuenta; contacte con soporte si es suyo",
				"%s is registered and proven by another account; contact support if you own it", name)}
	}
	token, err := s.store.SaveClaim(ctx, customerID, name, "jeturing-claim-"+secret.Hex(16))
	if err != nil {
		return err
	}
	c := s.claimInstructions(name, token)
	return &Error{Kind: Conflict, Code: "domain_taken", Claim: &c, Message: i18n.F(
		"%s está registrado por otra cuenta que no ha probado que es suya. Para reclamarlo, publique el registro TXT %s con el valor %s y repita la solicitud con \"claim\": true",
		"%s is registered by another account that has not proven ownership. To claim it, publish the TXT record %s with value %s and repeat the request with \"claim\": true",
		name, c.Record, token)}
}

func (s *Service) claimInstructions(name, token string) Claim {
	return Claim{Type: "TXT", Record: TXTName(name), Value: token,
		Note: i18n.T("Publique este registro TXT y repita la solicitud con \"claim\": true para reclamar el dominio",
			"Publish this TXT record and repeat the request with \"claim\": true to claim the domain")}
}

func (s *Service) txtPresent(ctx context.Context, name, token string) bool {
	// Only the TXT answer matters here; Expected is required by the verifier and is given the zone.
	res := s.verifier.Verify(ctx, dnsverify.Request{Hostname: name, Expected: s.cfg.Zone, TXTName: TXTName(name), TXTToken: token})
	return res.TXTFound
}

// candidates lists the subdomains to try, in order, skipping blocklisted ones.
func (s *Service) candidates(base string) []string {
	const max = 20
	out := make([]string, 0, max)
	for n := 0; len(out) < max && n < 100; n++ {
		c := hostname.Candidate(base, n)
		if !s.rules.Blocked(c) {
			out = append(out, c)
		}
	}
	return out
}

// Resolve finds a domain by numeric id or by hostname (external or platform, any letter case, IDN).
func (s *Service) Resolve(ctx context.Context, key string) (store.Domain, error) {
	if id, err := strconv.ParseInt(key, 10, 64); err == nil && id > 0 {
		d, err := s.store.GetDomain(ctx, id)
		return d, fromStore(err)
	}
	name, err := idna.Lookup.ToASCII(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(key)), "."))
	if err != nil || name == "" {
		return store.Domain{}, &Error{Kind: NotFound, Code: "not_found", Message: msgNotFound}
	}
	d, err := s.store.GetDomainByHostname(ctx, name)
	return d, fromStore(err)
}

// Delete starts removal of a domain; see store.DeleteDomain.
func (s *Service) Delete(ctx context.Context, actor string, d store.Domain) error {
	return fromStore(s.store.DeleteDomain(ctx, actor, d.ID))
}

// UpdateRouting moves a domain to another tenant deployment of its customer (or detaches it)
// and/or changes is_primary; see store.UpdateDomainRouting.
func (s *Service) UpdateRouting(ctx context.Context, actor string, d store.Domain, p store.DomainPatch) (store.Domain, error) {
	out, err := s.store.UpdateDomainRouting(ctx, actor, d.ID, p)
	if err != nil {
		return store.Domain{}, fromStore(err)
	}
	return out, nil
}

// NewToken returns a fresh verification token.
func NewToken() string { return "jeturing-verify-" + secret.Hex(16) }

// TXTName is where the verification token for name is published.
func TXTName(name string) string {
	reg, err := hostname.Registrable(name)
	if err != nil {
		reg = name
	}
	return TXTLabel + "." + reg
}

// checkRoutable refuses a hostname the tunnel agent would refuse as a rule's hostname, with the
// agent's words.
func checkRoutable(name string) error {
	if err := ingress.CheckManagedHostname(name); err != nil {
		msg := err.Error()
		var re *ingress.RuleError
		if errors.As(err, &re) {
			msg = re.Msg
		}
		// The agent's own words, quoted: the guarantee that the tunnel would accept the name.
		return &Error{Kind: Invalid, Code: "invalid_hostname",
			Message: i18n.F("el túnel no aceptaría este nombre: %s", "the tunnel would not accept this name: %s", msg)}
	}
	return nil
}

func invalid(err error) error {
	var he *hostname.Error
	if errors.As(err, &he) {
		return &Error{Kind: Invalid, Code: he.Code, Message: he.Message, Suggestion: he.Suggestion}
	}
	return &Error{Kind: Invalid, Code: "invalid", Message: i18n.Same(err.Error())}
}
