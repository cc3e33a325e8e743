package domains

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/internal/i18n"
)

// Health is the policy of the checks that never stop (docs/AUTOMATION.md, "Cadences" and
// "States"): how often each kind of domain is checked, and when a verified domain whose DNS
// stopped pointing at us is misconfigured and then deactivated. Zero fields take the defaults
// in the comments.
type Health struct {
	// VerifiedEvery: a healthy verified domain, ±Jitter (6h, 0.2): spread, so 100,000 domains
	// verified together are not re-checked together.
	VerifiedEvery time.Duration
	Jitter        float64
	// SuspectEvery: a verified domain with wrong answers not yet misconfigured, or whose
	// resolvers fail or disagree (10m): often enough that WrongChecks answers span WrongFor soon.
	SuspectEvery time.Duration
	// MisconfiguredEvery (15m): recovery is noticed quickly; DeactivatedEvery (1h).
	MisconfiguredEvery time.Duration
	DeactivatedEvery   time.Duration
	// A domain never verified: PendingFirst (1m) for the first PendingFastChecks (10) automatic
	// checks, then ×PendingFactor (1.5) per check up to PendingMax (1h), until it verifies or
	// its registration expires.
	PendingFirst      time.Duration
	PendingFastChecks int
	PendingFactor     float64
	PendingMax        time.Duration
	// Misconfigured after WrongChecks (3) consecutive wrong answers spanning at least WrongFor
	// (30m); one good answer recovers it. Timeouts and SERVFAIL never count.
	WrongChecks int
	WrongFor    time.Duration
	// Grace (7 days): a misconfigured domain keeps serving this long, then is deactivated.
	Grace time.Duration
	// DNSErrorAlert (1h) and DisagreeAlert (24h): how long no resolver answers, or they disagree,
	// before the dns_propagation_error alert opens (the alert evaluation decides it).
	DNSErrorAlert time.Duration
	DisagreeAlert time.Duration
}

// DefaultHealth returns the defaults.
func DefaultHealth() Health { return Health{}.withDefaults() }

func (h Health) withDefaults() Health {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&h.VerifiedEvery, 6*time.Hour)
	def(&h.SuspectEvery, 10*time.Minute)
	def(&h.MisconfiguredEvery, 15*time.Minute)
	def(&h.DeactivatedEvery, time.Hour)
	def(&h.PendingFirst, time.Minute)
	def(&h.PendingMax, time.Hour)
	def(&h.WrongFor, 30*time.Minute)
	def(&h.Grace, 7*24*time.Hour)
	def(&h.DNSErrorAlert, time.Hour)
	def(&h.DisagreeAlert, 24*time.Hour)
	if h.Jitter <= 0 || h.Jitter >= 1 {
		h.Jitter = 0.2
	}
	if h.PendingFastChecks <= 0 {
		h.PendingFastChecks = 10
	}
	if h.PendingFactor <= 1 {
		h.PendingFactor = 1.5
	}
	if h.WrongChecks <= 0 {
		h.WrongChecks = 3
	}
	return h
}

// classify says what a check found, for the health rules.
func classify(res dnsverify.Result) string {
	switch {
	case res.Verified:
		return store.CheckOK
	case inconclusive(res.Reason):
		return store.CheckError
	case res.Reason == dnsverify.ReasonDisagree:
		return store.CheckDisagree
	}
	return store.CheckWrong
}

// decide applies the rules to a domain's health before a check and what the check found, at now.
// It is pure (jitter comes from rnd, in [0, 1)), so every transition is a table test.
func (h Health) decide(st store.HealthState, res dnsverify.Result, automatic bool, now time.Time, rnd func() float64) store.HealthChange {
	c := store.HealthChange{
		Result: classify(res), PendingChecks: st.PendingChecks, WrongStreak: st.WrongStreak, WrongSince: st.WrongSince,
		DNSErrorSince: st.DNSErrorSince, DisagreeSince: st.DisagreeSince, MisconfiguredAt: st.MisconfiguredAt,
		GraceUntil: st.GraceUntil, NegativeTTL: res.NegativeTTL, Reason: res.Reason,
		Problem: problemOf(res), Fix: res.Instructions,
	}
	since := func(t *time.Time) *time.Time {
		if t != nil {
			return t
		}
		return &now
	}
	switch c.Result {
	case store.CheckOK:
		c.WrongStreak, c.WrongSince, c.DNSErrorSince, c.DisagreeSince = 0, nil, nil, nil
	case store.CheckWrong:
		c.WrongStreak++
		c.WrongSince = since(st.WrongSince)
		c.DNSErrorSince, c.DisagreeSince = nil, nil
	case store.CheckError:
		c.DNSErrorSince = since(st.DNSErrorSince)
	case store.CheckDisagree:
		c.DisagreeSince = since(st.DisagreeSince)
		c.DNSErrorSince = nil
	}
	negative := time.Duration(res.NegativeTTL) * time.Second

	if st.VerifiedAt == nil {
		// Never verified: back off until it verifies or its registration expires.
		if c.Result == store.CheckOK {
			c.Transition = store.TransitionVerified
			c.PendingChecks = 0
			c.NextCheckAt = h.verifiedNext(now, rnd)
			c.Alerts = []store.AlertChange{{Kind: store.AlertDomainUnverified}}
			return c
		}
		if automatic {
			c.PendingChecks++
		}
		next := now.Add(max(h.pendingInterval(c.PendingChecks), negative))
		if st.ExpiresAt != nil && st.ExpiresAt.Before(next) {
			next = *st.ExpiresAt // the sweep notices the expiry then
		}
		c.NextCheckAt = next
		return c
	}

	switch {
	case c.Result == store.CheckOK:
		if st.MisconfiguredAt != nil || st.DeactivatedAt != nil {
			c.Transition = store.TransitionRecovered
			c.MisconfiguredAt, c.GraceUntil = nil, nil
			c.Alerts = []store.AlertChange{{Kind: store.AlertDomainMisconfigured}}
		}
		c.NextCheckAt = h.verifiedNext(now, rnd)
	case st.DeactivatedAt != nil:
		c.NextCheckAt = now.Add(max(h.DeactivatedEvery, negative))
	case st.MisconfiguredAt != nil:
		if c.Result == store.CheckWrong && st.GraceUntil != nil && !now.Before(*st.GraceUntil) {
			c.Transition = store.TransitionDeactivated
			c.NextCheckAt = now.Add(max(h.DeactivatedEvery, negative))
			c.Alerts = []store.AlertChange{{Kind: store.AlertDomainMisconfigured, Open: true, Severity: store.SeverityCritical,
				Message: i18n.F("%s ya no apunta a la plataforma desde %s y se desactivó al terminar el periodo de gracia: %s",
					"%s has not pointed to the platform since %s and was deactivated when the grace period ended: %s",
					st.Hostname, st.MisconfiguredAt.UTC().Format(time.DateTime), c.Problem)}}
			return c
		}
		c.NextCheckAt = h.capAt(now.Add(max(h.MisconfiguredEvery, negative)), st.GraceUntil)
	case c.Result == store.CheckWrong && c.WrongStreak >= h.WrongChecks && now.Sub(*c.WrongSince) >= h.WrongFor:
		c.Transition = store.TransitionMisconfigured
		grace := now.Add(h.Grace)
		c.MisconfiguredAt, c.GraceUntil = &now, &grace
		c.NextCheckAt = h.capAt(now.Add(max(h.MisconfiguredEvery, negative)), &grace)
		c.Alerts = []store.AlertChange{{Kind: store.AlertDomainMisconfigured, Open: true, Severity: store.SeverityWarning,
			Message: i18n.F("%s ya no apunta a la plataforma (%s); sigue sirviendo hasta %s y después se desactivará",
				"%s no longer points to the platform (%s); it keeps serving until %s and is deactivated after that",
				st.Hostname, c.Problem, grace.UTC().Format(time.DateTime))}}
	default:
		// A run of wrong answers that is not long enough yet, or resolvers failing or disagreeing:
		// look again soon.
		c.NextCheckAt = now.Add(max(h.SuspectEvery, negative))
	}
	return c
}

// pendingInterval is the wait after the n-th automatic check of a domain never verified.
func (h Health) pendingInterval(n int) time.Duration {
	if n <= h.PendingFastChecks {
		return h.PendingFirst
	}
	d := float64(h.PendingFirst) * math.Pow(h.PendingFactor, float64(n-h.PendingFastChecks))
	if d >= float64(h.PendingMax) {
		return h.PendingMax
	}
	return time.Duration(d)
}

func (h Health) verifiedNext(now time.Time, rnd func() float64) time.Time {
	f := 1 + h.Jitter*(2*rnd()-1)
	return now.Add(time.Duration(float64(h.VerifiedEvery) * f))
}

// capAt returns t, or limit when it comes first: the check at the end of a grace period.
func (h Health) capAt(t time.Time, limit *time.Time) time.Time {
	if limit != nil && limit.Before(t) {
		return *limit
	}
	return t
}

// problemOf is what a failed check found, in a sentence: the message, and what the name resolves
// to instead when something was found.
func problemOf(res dnsverify.Result) i18n.Text {
	if res.Verified {
		return i18n.Text{}
	}
	if res.Found != nil && *res.Found != "" {
		return i18n.F("%s (hoy: %s)", "%s (today: %s)", res.Message, *res.Found)
	}
	return res.Message
}

// now is the Service's clock.
func (s *Service) now() time.Time {
	if s.cfg.Clock == nil {
		return time.Now()
	}
	return s.cfg.Clock.Now()
}

// Check is the automatic check of one domain (the check job): the same DNS check as Verify,
// recorded through the same health rules, without an audit row unless the domain's health
// changes. A domain being deleted is skipped; a registration that reached its expiry unverified
// is expired instead of checked. It returns the check's result (store.CheckOK, CheckFailed,
// CheckError), "expired" or "skipped", and reads only what the check needs: the sweep runs
// hundreds a second.
func (s *Service) Check(ctx context.Context, id int64) (string, error) {
	d, err := s.store.GetCheckTarget(ctx, id)
	if err != nil {
		return "", fromStore(err)
	}
	if d.DeletingAt != nil {
		return "skipped", nil
	}
	now := s.now()
	if d.VerifiedAt == nil && d.TXTVerifiedAt == nil && d.ExpiresAt != nil && !now.Before(*d.ExpiresAt) {
		if _, err := s.store.ExpireRegistration(ctx, id, now); err != nil {
			return "", err
		}
		return "expired", nil
	}
	out, err := s.check(ctx, "automation", d, true)
	if err != nil {
		return "", err
	}
	if out.Domain.LastCheckStatus == nil {
		return "", fmt.Errorf("check of domain %d: no result recorded", id)
	}
	return *out.Domain.LastCheckStatus, nil
}

// check runs the DNS check of d and records it with the health rules.
func (s *Service) check(ctx context.Context, actor string, d store.Domain, automatic bool) (VerifyOutcome, error) {
	res := s.verifier.Verify(ctx, verifyRequest(d))
	now := s.now()
	res.CheckedAt = now
	v := store.Verification{Verified: res.Verified, TXTFound: res.TXTFound, Check: res, CheckedAt: now,
		Inconclusive: inconclusive(res.Reason), Automatic: automatic,
		Decide: func(st store.HealthState) store.HealthChange {
			return s.cfg.Health.decide(st, res, automatic, now, rand.Float64)
		}}
	if !res.Verified {
		v.Error = i18n.Join(": ", res.Message, res.Instructions)
	}
	stored, err := s.store.RecordVerification(ctx, actor, d.ID, v)
	if err != nil {
		return VerifyOutcome{}, fromStore(err)
	}
	if automatic {
		return VerifyOutcome{Domain: stored, Result: res}, nil // stored holds the result only
	}
	return VerifyOutcome{Domain: stored, Result: res, NextStep: s.nextStep(stored)}, nil
}

// healthStep is the dns step of a verified domain whose DNS stopped pointing at us, or nil.
func healthStep(d store.Domain) *Step {
	problem := i18n.T("el DNS ya no apunta a la plataforma", "the DNS no longer points to the platform")
	if d.LastError != nil {
		problem = *d.LastError
	}
	switch {
	case d.DeactivatedAt != nil:
		return &Step{"dns", StepFailed, i18n.F("desactivado el %s porque el DNS dejó de apuntar a la plataforma: %s; corríjalo y verifique para reactivarlo",
			"deactivated on %s because the DNS stopped pointing to the platform: %s; fix it and verify to bring it back",
			d.DeactivatedAt.UTC().Format(time.DateTime), problem)}
	case d.MisconfiguredAt != nil && d.GraceUntil != nil:
		return &Step{"dns", StepFailed, i18n.F("mal configurado desde %s (sigue sirviendo hasta %s, después se desactiva): %s",
			"misconfigured since %s (it keeps serving until %s, then it is deactivated): %s",
			d.MisconfiguredAt.UTC().Format(time.DateTime), d.GraceUntil.UTC().Format(time.DateTime), problem)}
	}
	return nil
}

// negativeNote tells the customer how long resolvers may keep saying the record does not exist
// (the SOA negative TTL of the last negative answer), or nothing.
func negativeNote(d store.Domain) i18n.Text {
	if d.NegativeTTL == nil || *d.NegativeTTL <= 0 || d.VerifiedAt != nil {
		return i18n.Text{}
	}
	minutes := (*d.NegativeTTL + 59) / 60
	return i18n.F("sus resolvers pueden tardar hasta %d min en ver un registro recién publicado", "resolvers may take up to %d min to see a record you just published", minutes)
}
