package domains

import (
	"context"

	"github.com/jeturing/sajet-domains/controlplane/dnsverify"
	"github.com/jeturing/sajet-domains/controlplane/store"
	"github.com/jeturing/sajet-domains/shared/hostname"

	"github.com/jeturing/sajet-domains/internal/i18n"
)

// VerifyOutcome is a DNS check and the domain as stored after it.
type VerifyOutcome struct {
	Domain   store.Domain
	Result   dnsverify.Result
	NextStep i18n.Text
}

// Verify checks the customer's DNS for d against every configured resolver and records the
// outcome, through the same health rules as the automatic checks (so a good answer recovers a
// misconfigured or deactivated domain at once). A failed check is not an error: the outcome says
// what was found and what to create.
func (s *Service) Verify(ctx context.Context, actor string, d store.Domain) (VerifyOutcome, error) {
	if d.DeletingAt != nil {
		return VerifyOutcome{}, &Error{Kind: Conflict, Code: "domain_deleting", Message: msgDeleting}
	}
	out, err := s.check(ctx, actor, d, false)
	if err != nil {
		return VerifyOutcome{}, err
	}
	s.logger.InfoContext(ctx, "domain verified", "domain", d.ExternalDomain, "verified", out.Result.Verified, "method", out.Result.Method)
	return out, nil
}

// verifyRequest is the DNS check of d.
func verifyRequest(d store.Domain) dnsverify.Request {
	req := dnsverify.Request{
		Hostname:   d.ExternalDomain,
		Expected:   d.SajetFullDomain,
		TXTName:    TXTName(d.ExternalDomain),
		TXTToken:   d.VerificationToken,
		RequireTXT: d.RequireTXT,
		Apex:       hostname.IsApex(d.ExternalDomain),
	}
	if d.TunnelUUID != nil {
		req.TunnelTarget = *d.TunnelUUID + ".cfargotunnel.com"
	}
	return req
}

// inconclusive reports whether a check failed for want of answers (the resolvers), not because of
// what the customer's DNS holds.
func inconclusive(reason string) bool {
	switch reason {
	case dnsverify.ReasonServFail, dnsverify.ReasonRcode, dnsverify.ReasonTimeout, dnsverify.ReasonResolverError:
		return true
	}
	return false
}

// nextStep is the sentence the verify response carries in next_step (docs/API.md), made true for the
// domain's real state instead of always claiming it works.
func (s *Service) nextStep(d store.Domain) i18n.Text {
	switch s.State(d) {
	case StateActive:
		return i18n.T("El dominio está activo y funcionando", "The domain is active and working")
	case StateReady:
		return i18n.F("Active el dominio: POST /api/domains/%s/activate", "Activate the domain: POST /api/domains/%s/activate", d.ExternalDomain)
	case StateProvisioning:
		for _, st := range s.Steps(d) {
			if st.Status != StepDone && st.Status != StepSkipped {
				return st.Detail
			}
		}
	}
	return i18n.T("Verifique de nuevo cuando el registro DNS esté publicado", "Verify again once the DNS record is published")
}

// Activate puts a verified, provisioned domain in service. It refuses, with the list of steps and
// their status, when something is not done yet.
func (s *Service) Activate(ctx context.Context, actor string, d store.Domain) (store.Domain, []Step, error) {
	steps := s.Steps(d)
	if d.DeletingAt != nil {
		return d, steps, &Error{Kind: Conflict, Code: "domain_deleting", Message: msgDeleting}
	}
	if d.IsActive {
		return d, steps, nil
	}
	for _, st := range steps {
		if st.Status != StepDone && st.Status != StepSkipped {
			return d, steps, &Error{Kind: Conflict, Code: "not_ready",
				Message: i18n.F("aún no se puede activar: el paso %s está %s (%s)", "cannot activate yet: %s is %s (%s)",
					st.Name, stepStatusWord(st.Status), st.Detail)}
		}
	}
	out, err := s.store.Activate(ctx, actor, d.ID, s.cfg.ProviderEnabled)
	if err != nil {
		return d, steps, fromStore(err)
	}
	return out, s.Steps(out), nil
}

var msgDeleting = i18n.T("el dominio se está eliminando", "the domain is being deleted")

// stepStatusWord names a step's status in a sentence.
func stepStatusWord(status string) i18n.Text {
	switch status {
	case StepPending:
		return i18n.T("pendiente", "pending")
	case StepFailed:
		return i18n.T("con error", "failed")
	case StepSkipped:
		return i18n.T("omitido", "skipped")
	}
	return i18n.T("hecho", "done")
}
